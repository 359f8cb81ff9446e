"""The same DAGs on a real Spark standalone cluster (a master and two workers on 127.0.0.1, from the
installed PySpark), by changing only Airflow connections through its REST API: ``spark_default``
points at the cluster's master, and ``spark_connect`` (the embedded stack's Connect server, which
runs in local mode) is removed, so every job is submitted. A day of data, a training run and the
scoring of the day run as applications of the cluster, with executors on both workers. Runs after
``test_lifecycle`` (a champion exists to score with)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcycle.spark_cluster import StandaloneCluster

DAY = "2013-01-05"
WINDOW = {"train_start": "2013-01-01", "train_end": "2013-01-02", "holdout_days": 1}


@pytest.fixture
def cluster(stack_home):
    with StandaloneCluster(Path(stack_home) / "spark-cluster", workers=2, cores=1, memory="1g") as c:
        yield c


@pytest.fixture
def on_the_cluster(admin, cluster):
    """Point ``spark_default`` at the cluster and remove ``spark_connect``, as a person would in
    Admin -> Connections; both are put back afterwards."""
    before = admin.request("GET", "connections/spark_default")
    connect = admin.request("GET", "connections/spark_connect")
    admin.request("DELETE", "connections/spark_connect")

    def point(host: str) -> dict:
        body = {k: before.get(k) for k in ("conn_type", "extra", "port", "schema", "login", "description")}
        return admin.request(
            "PATCH",
            "connections/spark_default",
            json={**body, "connection_id": "spark_default", "host": host},
        )

    assert point(cluster.master_url)["host"] == cluster.master_url
    try:
        yield cluster
    finally:
        point(before["host"])
        admin.request("POST", "connections", json=connect)


def test_the_dags_run_on_a_standalone_cluster_by_changing_the_connection(stack, admin, on_the_cluster):
    import pandas as pd

    cluster = on_the_cluster
    data_root = Path(stack["MLCYCLE_DATA_ROOT"])

    run_id = admin.trigger("flights_data", logical_date=f"{DAY}T00:00:00Z")
    assert admin.wait_for_run("flights_data", run_id, timeout=900) == "success"
    assert any((data_root / "features" / f"ds={DAY}").glob("*.parquet"))

    # A challenger no rule can accept: the training job runs, then the rules reject it.
    training = admin.trigger("flights_training", conf={**WINDOW, "min_improvement": 60.0})
    assert admin.wait_for_run("flights_training", training, timeout=900) == "success"

    scoring = admin.trigger("flights_scoring", conf={"days": [DAY], "rescore": True})
    assert admin.wait_for_run("flights_scoring", scoring, timeout=900) == "success"
    predictions = pd.read_parquet(data_root / "predictions" / f"ds={DAY}")
    assert set(predictions["airflow_run_id"]) == {scoring}
    assert len(predictions) == len(pd.read_parquet(data_root / "features" / f"ds={DAY}"))

    # Scoring and monitoring also follow the new features on their own: let them finish there too.
    admin.wait_until_idle(["flights_data", "flights_scoring", "flights_monitoring"])
    apps = {a["id"]: a["name"] for a in cluster.applications()}
    names = set(apps.values())
    assert {f"validate_raw ds={DAY}", f"build_features ds={DAY}", f"score-flights_air_time ds={DAY}"} <= names
    assert any(name.startswith("train-") for name in names), names
    for worker, ran in cluster.executors_by_worker().items():
        assert {e["appid"] for e in ran} == set(apps), f"worker {worker} ran no executor of some application"
