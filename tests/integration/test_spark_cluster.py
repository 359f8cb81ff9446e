"""The jobs on a real Spark standalone cluster (a master and two workers on 127.0.0.1, from the
installed PySpark), submitted exactly as the DAGs submit them with only the master URL changed:
the data path of real days, training, and scoring, with every job's executors on the workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlcycle import registry
from mlcycle.landing import land_day, load_reference
from mlcycle.spark_cluster import StandaloneCluster

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
DAYS = ["2013-01-01", "2013-01-02"]  # the smallest window training takes: one day and its holdout
MODEL = "cluster_air_time"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with StandaloneCluster(tmp_path_factory.mktemp("spark-cluster"), workers=2, cores=1, memory="1g") as c:
        yield c


def submit(cluster, tracking_uri: str, script: str, *args: str) -> str:
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "MLFLOW_TRACKING_URI": tracking_uri,
    }
    started = time.monotonic()
    done = subprocess.run(
        [
            str(SPARK_SUBMIT),
            "--master",
            cluster.master_url,
            "--conf",
            "spark.executor.memory=1g",
            "--conf",
            "spark.sql.shuffle.partitions=4",
            f"spark_jobs/{script}",
            *args,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (
        f"{script} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    )
    print(f"{script} {' '.join(args)}: {time.monotonic() - started:.1f}s")
    return done.stdout


def test_data_training_and_scoring_run_on_the_workers(cluster, mlflow_server, tmp_path):
    import pandas as pd

    uri = mlflow_server
    root = tmp_path / "data"
    load_reference(str(root))
    for ds in DAYS:
        land_day(str(root), ds)
        submit(cluster, uri, "validate_raw.py", "--ds", ds, "--data-root", str(root))
        submit(cluster, uri, "build_features.py", "--ds", ds, "--data-root", str(root))
    assert all(any((root / "features" / f"ds={ds}").glob("*.parquet")) for ds in DAYS)

    out = submit(
        cluster,
        uri,
        "train.py",
        "--start",
        DAYS[0],
        "--end",
        DAYS[-1],
        "--holdout-days",
        "1",
        "--data-root",
        str(root),
        "--model-name",
        MODEL,
        "--airflow-run-id",
        "cluster__train",
    )
    run_id = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("mlflow_run_id="))
    version = registry.register_challenger(uri, MODEL, run_id, "cluster__train", "flights_training")

    submit(
        cluster,
        uri,
        "score.py",
        "--ds",
        DAYS[-1],
        "--data-root",
        str(root),
        "--model-uri",
        f"models:/{MODEL}/{version}",
        "--model-name",
        MODEL,
        "--model-version",
        str(version),
        "--airflow-run-id",
        "cluster__score",
    )
    predictions = pd.read_parquet(root / "predictions" / f"ds={DAYS[-1]}")
    features = pd.read_parquet(root / "features" / f"ds={DAYS[-1]}")
    assert len(predictions) == len(features)
    assert set(predictions["model_version"].astype(str)) == {str(version)}

    # Every job was an application of the master, and its executors ran on both workers.
    apps = {a["id"]: a["name"] for a in cluster.applications()}
    assert len(apps) == 2 * len(DAYS) + 2  # raw gate and features per day, training, scoring
    executors = cluster.executors_by_worker()
    assert set(executors) == {0, 1}
    for worker, ran in executors.items():
        assert {e["appid"] for e in ran} == set(apps), f"worker {worker} missed applications"
