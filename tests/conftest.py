"""Fixtures shared by every test tier."""

from __future__ import annotations

import logging
import os
import sys

import pytest

# py4j says goodbye at interpreter exit, after pytest has closed the streams it logs to.
logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def spark():
    """One small local session for the whole run: Spark code is tested on frames built in the
    test, with the session settings the jobs use (UTC, dynamic partition overwrite)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("mlcycle-tests")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    yield session
    session.stop()
