"""The same DAGs on a real Spark standalone cluster (a master and two workers on 127.0.0.1, from the
installed PySpark), arranged as the compose stack arranges it, by changing only Airflow connections
through its REST API: ``spark_default`` points at the cluster's master, and ``spark_connect`` at a
Spark Connect server that drives that cluster. A training runs on the cluster while a day is
scored there (the day's data jobs run the same way, as ``SparkJob`` tasks on Connect): the
server's application has executors on both workers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from stack_state import MODEL, TRAINING, mlflow_client, train, xcom
from stack_state import champion as champion_now
from stack_state import versions as all_versions

from mlcycle.config import spark_conf
from mlcycle.devstack.spark_cluster import StandaloneCluster
from mlcycle.devstack.stack import CONNECT_SERVER

pytestmark = pytest.mark.e2e

DAY = "2013-01-02"  # a day of the backfill every e2e test starts from
CONNECT_APP = "mlcycle-spark-connect on the cluster"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(stack_home):
    # Two cores a worker: one for the Connect server's executor, one spare.
    with StandaloneCluster(Path(stack_home) / "spark-cluster", workers=2, cores=2, memory="2g") as c:
        yield c


@pytest.fixture
def connect_on_the_cluster(cluster, stack):
    """A Spark Connect server whose master is the cluster (the compose service ``spark-connect``),
    one executor of one core on each worker; its ``sc://`` address."""
    port = _free_port()
    log = cluster.home / "spark-connect.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "spark-submit"),
                "--class",
                CONNECT_SERVER,
                "--name",
                CONNECT_APP,
                "--master",
                cluster.master_url,
                "--conf",
                "spark.executor.cores=1",
                "--conf",
                "spark.cores.max=2",
                "--conf",
                "spark.connect.grpc.binding.address=127.0.0.1",
                "--conf",
                f"spark.connect.grpc.binding.port={port}",
                *(arg for key, value in spark_conf().items() for arg in ("--conf", f"{key}={value}")),
                "spark-internal",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**stack, "SPARK_LOCAL_IP": "127.0.0.1"},
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"Connect server exited:\n{log.read_text()[-3000:]}"
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, f"Connect server not listening:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def on_the_cluster(admin, cluster, connect_on_the_cluster):
    """Point ``spark_default`` at the cluster's master and ``spark_connect`` at the Connect server
    that drives it, as a person would in Admin -> Connections; both are put back afterwards."""
    default = admin.request("GET", "connections/spark_default")
    connect = admin.request("GET", "connections/spark_connect")

    def point(before: dict, **changes) -> dict:
        keys = ("conn_type", "extra", "host", "port", "schema", "login", "description")
        body = {**{k: before.get(k) for k in keys}, "connection_id": before["connection_id"], **changes}
        return admin.request("PATCH", f"connections/{before['connection_id']}", json=body, idempotent=True)

    assert point(default, host=cluster.master_url)["host"] == cluster.master_url
    assert point(connect, host="127.0.0.1", port=connect_on_the_cluster)["port"] == connect_on_the_cluster
    try:
        yield cluster
    finally:
        point(default)
        point(connect)


def test_the_dags_run_on_a_standalone_cluster_by_changing_the_connection(
    stack, admin, champion, data_days, paused, on_the_cluster, connect_on_the_cluster
):
    import pandas as pd

    cluster = on_the_cluster
    data_root = Path(stack["MLCYCLE_DATA_ROOT"])
    paused("air_time_monitoring")  # not what this test is about
    admin.wait_until_idle(["air_time_scoring"])

    # A training and a scoring at the same time, as the cluster would see them. The challenger is
    # one no rule can accept: the training job runs, then the rules reject it, before anyone is
    # asked.
    training = train(admin, min_improvement=60.0)
    scoring = admin.trigger("air_time_scoring", conf={"days": [DAY], "rescore": True})
    assert admin.wait_for_run("air_time_scoring", scoring, timeout=900) == "success"
    predictions = pd.read_parquet(data_root / "models" / "air_time" / "predictions" / f"ds={DAY}")
    assert set(predictions["airflow_run_id"]) == {scoring}
    assert set(predictions["model_version"].astype(str)) == {str(champion)}
    assert len(predictions) == len(pd.read_parquet(data_root / "features" / f"ds={DAY}")) > 500

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

    # The scoring and the training ran on the Connect server of the cluster, from their tasks'
    # processes; its application had an executor on each worker, and nothing else was submitted.
    port = connect_on_the_cluster
    log = admin.task_log(
        "air_time_scoring", scoring, "score", map_index=0
    )  # mapped: up to a month of days each
    assert f"on the Spark Connect server at sc://127.0.0.1:{port}" in log, log[-2000:]
    log = admin.task_log(TRAINING, training, "train")
    assert f"on the Spark Connect server at sc://127.0.0.1:{port}" in log, log[-2000:]
    apps = {a["id"]: a["name"] for a in cluster.applications()}
    assert list(apps.values()) == [CONNECT_APP], apps
    for worker, ran in cluster.executors_by_worker().items():
        assert {e["appid"] for e in ran} == set(apps), f"worker {worker} ran no executor of the server"
