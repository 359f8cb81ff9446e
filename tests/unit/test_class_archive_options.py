"""The class-data archive's JVM options: where the platform's Spark processes get them, and when
they get none."""

from __future__ import annotations

import pytest

from mlcycle import class_archive
from mlcycle.config import spark_conf


@pytest.fixture
def archive(tmp_path, monkeypatch):
    path = tmp_path / "spark-classes.jsa"
    monkeypatch.setattr(class_archive, "ARCHIVE", path)
    monkeypatch.delenv("MLCYCLE_CLASS_ARCHIVE", raising=False)
    monkeypatch.delenv("MLCYCLE_SPARK_CONF", raising=False)
    return path


def test_the_drivers_map_the_archive_and_say_nothing_when_they_cannot(archive):
    archive.write_bytes(b"made by make venv")
    options = class_archive.java_options()
    assert options.split() == [f"-XX:SharedArchiveFile={archive}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
    assert spark_conf()["spark.driver.extraJavaOptions"] == options
    assert class_archive.with_archive(" -XX:+UseSerialGC ") == f"-XX:+UseSerialGC {options}"
    # options that map it already (a JVM's JAVA_TOOL_OPTIONS handed on) get it once
    assert class_archive.with_archive(f"-XX:+UseSerialGC {options} ") == f"-XX:+UseSerialGC {options}"


def test_no_archive_or_switched_off_leaves_the_jvm_options_alone(archive, monkeypatch):
    assert class_archive.java_options() == "" and "spark.driver.extraJavaOptions" not in spark_conf()
    assert class_archive.with_archive("-XX:+UseSerialGC") == "-XX:+UseSerialGC"
    archive.write_bytes(b"made by make venv")
    monkeypatch.setenv("MLCYCLE_CLASS_ARCHIVE", "0")
    assert class_archive.java_options() == "" and "spark.driver.extraJavaOptions" not in spark_conf()


def test_a_cluster_overrides_the_drivers_options(archive, monkeypatch):
    archive.write_bytes(b"made by make venv")
    monkeypatch.setenv("MLCYCLE_SPARK_CONF", "spark.driver.extraJavaOptions=-Xss4m")
    assert spark_conf()["spark.driver.extraJavaOptions"] == "-Xss4m"
