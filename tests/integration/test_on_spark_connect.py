"""The same entry points on a long-lived Spark Connect server, as the embedded stack runs them
(``SPARK_REMOTE`` set, ``main`` called in a Python process with no JVM of its own): they write
exactly what the classic session writes, and a held day is held the same way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlcycle.gates import GATE_FAILED_EXIT
from mlcycle.landing import land_day, load_reference
from spark_jobs import build_features, validate_raw

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DS = "2013-01-02"


def on_connect(url: str, job: str, ds: str, data_root: Path) -> subprocess.CompletedProcess:
    """``main`` of an entry point with ``SPARK_REMOTE`` set, as ``SparkJob`` runs it in a task."""
    code = f"import sys; from spark_jobs import {job}; sys.exit({job}.main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, "--ds", ds, "--data-root", str(data_root)],
        cwd=REPO,
        env={**os.environ, "SPARK_REMOTE": url},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """Two data roots with the same landed day: one for Spark Connect, one for a classic session."""
    out = {}
    for name in ("connect", "classic"):
        root = tmp_path_factory.mktemp(name)
        load_reference(str(root))
        land_day(str(root), DS)
        out[name] = root
    return out


def _rows(spark, root: Path, dataset: str, ds: str):
    return spark.read.parquet(str(root / dataset / f"ds={ds}"))


def test_a_day_on_spark_connect_writes_what_the_classic_session_writes(connect_url, roots, spark):
    for job in ("validate_raw", "build_features"):
        done = on_connect(connect_url, job, DS, roots["connect"])
        assert done.returncode == 0, done.stderr[-5000:]
    validate_raw.validate_day(spark, str(roots["classic"]), DS)
    build_features.main(["--ds", DS, "--data-root", str(roots["classic"])])

    for dataset in ("validated/flights", "validated/weather", "features"):
        on_connect_rows = _rows(spark, roots["connect"], dataset, DS)
        classic_rows = _rows(spark, roots["classic"], dataset, DS)
        assert on_connect_rows.count() == classic_rows.count() > 0, dataset
        assert on_connect_rows.exceptAll(classic_rows).count() == 0, dataset
        assert classic_rows.exceptAll(on_connect_rows).count() == 0, dataset
    for gate in ("raw_flights", "raw_weather", "features"):
        assert (roots["connect"] / "gates" / gate / f"ds={DS}.json").is_file()


def test_a_held_day_on_spark_connect_exits_as_held_and_writes_nothing(connect_url, roots):
    wrong = "2013-01-03"  # the drop of the 2nd delivered again as the 3rd
    root = roots["connect"]
    for dataset in ("flights", "weather"):
        target = root / "landing" / dataset / f"ds={wrong}"
        target.mkdir(parents=True)
        (target / f"{dataset}.csv").write_bytes(
            (root / "landing" / dataset / f"ds={DS}" / f"{dataset}.csv").read_bytes()
        )

    held = on_connect(connect_url, "validate_raw", wrong, root)

    assert held.returncode == GATE_FAILED_EXIT, held.stderr[-5000:]
    assert f"rejected raw_flights ds={wrong}" in held.stderr
    assert not (root / "validated" / "flights" / f"ds={wrong}").exists()
    # the day of the 2nd, written by the first test, is untouched
    assert (root / "validated" / "flights" / f"ds={DS}").is_dir()
