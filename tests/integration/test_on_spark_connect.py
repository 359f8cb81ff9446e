"""The same entry points on a long-lived Spark Connect server, as the embedded stack runs them
(``SPARK_REMOTE`` set, ``main`` called in a Python process with no JVM of its own): they write
exactly what the classic session writes, a held day is held the same way, and a model trained
there is logged as MLflow's Spark flavour, which a JVM session loads and which scores as the
training measured it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlcycle.quality.gates import GATE_FAILED_EXIT
from spark_jobs.flights.replay import land_day, load_reference

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DS = "2013-01-02"
SESSIONS = "sessions of the job: "

# ``main`` of each job as ``SparkJob`` runs it in a task (one after the other in one process, as
# long as each succeeds), and then what the process used: the module of each session the jobs
# asked for, and whether a JVM (py4j gateway) was ever started in it.
RUN_MAIN = f"""
import importlib, json, sys
import pyspark
from spark_jobs import common

jobs = [importlib.import_module("spark_jobs." + name) for name in {{jobs!r}}]
made = []
def recording(app_name):
    session = real(app_name)
    made.append(type(session).__module__)
    return session

real, common.get_spark = common.get_spark, recording
for job in jobs:
    if hasattr(job, "get_spark"):  # a job that imported it by name
        job.get_spark = recording
code = 0
for job in jobs:
    code = job.main(sys.argv[1:])
    if code:
        break
print({SESSIONS!r} + json.dumps({{{{"modules": made, "jvm": pyspark.SparkContext._gateway is not None}}}}))
sys.exit(code)
"""


def on_connect(url: str, job: str, ds: str | None, data_root: Path, *args: str, then=(), env=None):
    """``main`` of an entry point (and of the ones ``then`` names, with the same arguments, while
    each succeeds) with ``SPARK_REMOTE`` set, as ``SparkJob`` runs it in a task; fails the test
    unless every session of the jobs was a Connect one and no JVM was started."""
    day = ["--ds", ds] if ds else []
    jobs = [job, *then]
    done = subprocess.run(
        [sys.executable, "-c", RUN_MAIN.format(jobs=jobs), *day, "--data-root", str(data_root), *args],
        cwd=REPO,
        env={**os.environ, **(env or {}), "SPARK_REMOTE": url},
        capture_output=True,
        text=True,
        timeout=600,
    )
    reports = [line for line in done.stdout.splitlines() if line.startswith(SESSIONS)]
    assert len(reports) == 1, (
        f"{jobs} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    )
    used = json.loads(reports[0].removeprefix(SESSIONS))
    assert used["modules"] and all(m.startswith("pyspark.sql.connect.") for m in used["modules"]), used
    assert used["jvm"] is False, f"{jobs} started a JVM in its own process"
    return done


@pytest.fixture(scope="module")
def roots(tmp_path_factory, real_day):
    """The day landed in a data root for Spark Connect, and built by the classic session
    (``real_day``, the data path's)."""
    assert real_day.ds == DS and real_day.validate_code == real_day.features_code == 0
    root = tmp_path_factory.mktemp("connect")
    load_reference(str(root))
    land_day(str(root), DS)
    return {"connect": root, "classic": real_day.root}


@pytest.fixture(scope="module")
def connect_day(connect_url, roots):
    """The day gated and built on the Connect server (the connect root's ds=DS partitions)."""
    done = on_connect(connect_url, "quality", DS, roots["connect"], then=["features"])
    assert done.returncode == 0, done.stderr[-5000:]
    assert "build_features ds=" in done.stderr + done.stdout, done.stderr[-3000:]
    return roots["connect"]


def _rows(spark, root: Path, dataset: str, ds: str):
    return spark.read.parquet(str(root / dataset / f"ds={ds}"))


def _files(partition: Path) -> dict[str, tuple[int, str]]:
    """Each file of a partition: its modification time (ns) and the digest of its content."""
    return {
        str(p.relative_to(partition)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(partition.rglob("*"))
        if p.is_file()
    }


def test_a_day_on_spark_connect_writes_what_the_classic_session_writes(connect_day, roots, spark):
    for dataset in ("validated/flights", "validated/weather", "feature_views", "features"):
        on_connect_rows = _rows(spark, connect_day, dataset, DS)
        classic_rows = _rows(spark, roots["classic"], dataset, DS)
        assert on_connect_rows.count() == classic_rows.count() > 0, dataset
        assert on_connect_rows.exceptAll(classic_rows).count() == 0, dataset
        assert classic_rows.exceptAll(on_connect_rows).count() == 0, dataset
    for gate in ("raw_flights", "raw_weather", "features"):
        assert (connect_day / "gates" / gate / f"ds={DS}.json").is_file()


def test_a_held_day_on_spark_connect_exits_as_held_and_writes_nothing(connect_url, connect_day):
    wrong = "2013-01-03"  # the drop of the 2nd delivered again as the 3rd
    root = connect_day
    for dataset in ("flights", "weather"):
        target = root / "landing" / dataset / f"ds={wrong}"
        target.mkdir(parents=True)
        (target / f"{dataset}.csv").write_bytes(
            (root / "landing" / dataset / f"ds={DS}" / f"{dataset}.csv").read_bytes()
        )
    second = {d: root / d / f"ds={DS}" for d in ("validated/flights", "validated/weather", "features")}
    before = {d: _files(p) for d, p in second.items()}
    assert all(before.values()), before  # the 2nd is there to be left alone

    held = on_connect(connect_url, "quality", wrong, root)

    assert held.returncode == GATE_FAILED_EXIT, held.stderr[-5000:]
    assert f"rejected raw_flights ds={wrong}" in held.stderr
    for dataset in ("validated/flights", "validated/weather", "features"):
        assert not (root / dataset / f"ds={wrong}").exists(), dataset
    verdict = json.loads((root / "gates" / "raw_flights" / f"ds={wrong}.json").read_text())
    assert verdict["success"] is False  # the held day's verdict is what it does write
    # the day of the 2nd is untouched: the same files, neither rewritten nor changed
    assert {d: _files(p) for d, p in second.items()} == before


def test_a_model_trained_on_spark_connect_is_the_spark_flavour_a_jvm_session_loads(
    connect_url, spark, mlflow_server, tmp_path, usecases_copy
):
    import mlflow
    from mlflow import MlflowClient
    from pyspark.ml.evaluation import RegressionEvaluator
    from test_model_path import DAYS, FEATURE_SCHEMA, feature_rows, write_verdicts

    from spark_jobs.common import overwrite_partitions
    from spark_jobs.flights import model as project_model
    from spark_jobs.flights import project

    root = tmp_path / "data"
    overwrite_partitions(spark.createDataFrame(feature_rows(), FEATURE_SCHEMA), str(root), "features")
    write_verdicts(str(root), DAYS)
    window = ["--start", DAYS[0], "--end", DAYS[-1], "--holdout-days", "1", "--grid", "smallest"]
    done = on_connect(
        connect_url,
        "training",
        None,
        root,
        *window,
        "--model",
        "air_time",
        "--airflow-run-id",
        "manual__on_connect",
        env={
            "MLFLOW_TRACKING_URI": mlflow_server,
            "MLCYCLE_USECASES": str(usecases_copy(tmp_path / "catalog", {"air_time": "trained_on_connect"})),
        },
    )
    assert done.returncode == 0, done.stderr[-5000:]
    (run_id,) = [
        line.removeprefix("mlflow_run_id=") for line in done.stdout.splitlines() if "mlflow_run_id=" in line
    ]

    # MLflow's Spark flavour, as mlflow.spark.log_model writes it: loaded here through the JVM.
    client = MlflowClient(mlflow_server)
    files = {a.path for a in client.list_artifacts(run_id, "model")}
    assert {"model/MLmodel", "model/sparkml", "model/requirements.txt"} <= files, files
    mlflow.set_tracking_uri(mlflow_server)
    info = mlflow.models.get_model_info(f"runs:/{run_id}/model")
    assert set(info.flavors) == {"spark", "python_function"}
    assert info.signature.inputs.input_names() == project_model.feature_columns()
    model = mlflow.spark.load_model(f"runs:/{run_id}/model")

    # It is the model the training judged: on the holdout day it scores the MAE the run logged.
    holdout = spark.read.parquet(str(root / "features")).where(
        f"ds = '{DAYS[-1]}' and {project.LABEL} is not null"
    )
    mae = RegressionEvaluator(labelCol=project.LABEL, metricName="mae").evaluate(model.transform(holdout))
    assert mae == pytest.approx(client.get_run(run_id).data.metrics["val_mae"], rel=1e-9)
