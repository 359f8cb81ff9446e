"""The same DAGs on a real Spark standalone cluster (a master and two workers on 127.0.0.1, from the
installed PySpark), by changing only Airflow connections through its REST API: ``spark_default``
points at the cluster's master, and ``spark_connect`` (the embedded stack's Connect server, which
runs in local mode) is removed, so every job is submitted. A day of data, a training run and the
scoring of the day run as applications of the cluster, with executors on both workers."""

from __future__ import annotations

from pathlib import Path

import pytest
from stack_state import MODEL, TRAINING, mlflow_client, train, xcom
from stack_state import champion as champion_now
from stack_state import versions as all_versions

from mlcycle.spark_cluster import StandaloneCluster

pytestmark = pytest.mark.e2e

DAY = "2013-01-05"


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


def test_the_dags_run_on_a_standalone_cluster_by_changing_the_connection(
    stack, admin, champion, paused, on_the_cluster
):
    import pandas as pd

    cluster = on_the_cluster
    data_root = Path(stack["MLCYCLE_DATA_ROOT"])
    paused("flights_monitoring")  # not what this test is about: its jobs would queue on the cluster
    scoring_before = {r["dag_run_id"] for r in admin.dag_runs("flights_scoring")}

    # A day of data and a training at the same time, as the cluster would see them. The challenger
    # is one no rule can accept: the training job runs, then the rules reject it, before anyone
    # is asked.
    run_id = admin.trigger("flights_data", logical_date=f"{DAY}T00:00:00Z")
    training = train(admin, min_improvement=60.0)
    assert admin.wait_for_run("flights_data", run_id, timeout=900) == "success"
    assert any((data_root / "features" / f"ds={DAY}").glob("*.parquet"))
    assert admin.wait_for_run(TRAINING, training, timeout=900) == "success"
    states = {t: ti["state"] for t, ti in admin.task_instances(TRAINING, training).items()}
    assert (states["evaluate"], states["sign_off"], states["promote"], states["record_decision"]) == (
        "success",
        "skipped",
        "skipped",
        "success",
    )
    version = int(xcom(admin, TRAINING, training, "register")["version"])
    tags = all_versions(stack)[version]
    assert (tags["status"], tags["decision"], tags["decision.by"]) == (
        "rejected",
        "rejected",
        "rule:min_improvement",
    )
    assert "min_improvement" in tags["decision.comment"] and tags["decision.airflow_run_id"] == training
    assert champion_now(stack) == champion
    assert "challenger" not in mlflow_client(stack).get_registered_model(MODEL).aliases

    # The new features were announced: scoring followed on its own and scored the day there.
    admin.wait_until_idle(["flights_data", "flights_scoring"])
    predictions = pd.read_parquet(data_root / "predictions" / f"ds={DAY}")
    (scoring,) = set(predictions["airflow_run_id"])
    assert scoring not in scoring_before and admin.dag_run("flights_scoring", scoring)["state"] == "success"
    assert set(predictions["model_version"].astype(str)) == {str(champion)}
    assert len(predictions) == len(pd.read_parquet(data_root / "features" / f"ds={DAY}"))

    apps = {a["id"]: a["name"] for a in cluster.applications()}
    names = set(apps.values())
    assert {f"validate_raw ds={DAY}", f"build_features ds={DAY}", f"score-{MODEL} ds={DAY}"} <= names
    assert any(name.startswith("train-") for name in names), names
    for worker, ran in cluster.executors_by_worker().items():
        assert {e["appid"] for e in ran} == set(apps), f"worker {worker} ran no executor of some application"
