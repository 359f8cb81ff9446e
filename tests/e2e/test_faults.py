"""Faults met where they happen, on the embedded stack:

- the model registry refuses a write in the middle of a registration (the version is created, its
  alias cannot be set): the task fails at once with the registry's answer, no version exists
  without the run that made it, the retry finds the version and finishes it, one version per
  Airflow run, the champion untouched; the challenger then goes to the sign-off as usual and a
  person rejects it at once;
- the Spark engine killed while a job writes a partition (the JVM of the stack's Spark Connect
  server, as an out-of-memory kill would): the previous partition is intact, the server is started
  again by its supervisor, and the task's retry completes;
- a reader holding Airflow's database in a transaction (a slow request of the api-server, a
  person's query): a write through the API still goes through at once (the stack's SQLite keeps a
  write-ahead log; otherwise the writer's commit would wait 20 s for the reader, and fail).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from stack_state import MODEL, TRAINING, answer_at_once, mlflow_client, train, xcom
from stack_state import champion as champion_now
from stack_state import versions as all_versions

pytestmark = pytest.mark.e2e

# The registry's database refuses to point an alias anywhere, as one gone read-only for that table
# would: MLflow answers the client with the database's error. Versions and their tags still write.
REFUSE_ALIASES = """
CREATE TRIGGER refuse_alias_insert BEFORE INSERT ON registered_model_aliases
BEGIN SELECT RAISE(ABORT, 'the registry refuses to move aliases'); END;
CREATE TRIGGER refuse_alias_update BEFORE UPDATE ON registered_model_aliases
BEGIN SELECT RAISE(ABORT, 'the registry refuses to move aliases'); END;
"""
ACCEPT_ALIASES = "DROP TRIGGER refuse_alias_insert; DROP TRIGGER refuse_alias_update;"


def _registry_db(stack_home) -> sqlite3.Connection:
    return sqlite3.connect(Path(stack_home) / "mlflow" / "mlflow.db", timeout=30)


def test_a_registry_refusing_mid_registration_leaves_one_whole_version(
    stack, stack_home, admin, approver, data_days, paused
):
    paused("air_time_scoring", "air_time_monitoring")
    champion_before = champion_now(stack)
    run_id = train(admin)
    with closing(_registry_db(stack_home)) as db:
        db.executescript(REFUSE_ALIASES)
    try:
        # The first try registers the version, then meets the refusal when it points the alias.
        deadline = time.monotonic() + 900
        while not (ti := admin.task_instances(TRAINING, run_id).get("register")) or ti["try_number"] < 2:
            assert time.monotonic() < deadline, "register never failed and retried"
            assert admin.dag_run(TRAINING, run_id)["state"] in ("queued", "running")
            time.sleep(admin.poll)
        log = admin.task_log(TRAINING, run_id, "register", try_number=1)
        assert "the registry refuses to move aliases" in log, log[-2000:]
        made = [v for v, tags in all_versions(stack).items() if tags.get("airflow.run_id") == run_id]
        assert len(made) == 1, made  # created together with its run tag
        assert "challenger" not in (mlflow_client(stack).get_model_version(MODEL, str(made[0])).aliases or [])
    finally:
        with closing(_registry_db(stack_home)) as db:
            db.executescript(ACCEPT_ALIASES)

    # A retry finds the version its run made and finishes it; the sign-off follows as usual.
    admin.wait_for_approval(TRAINING, run_id, "sign_off", timeout=600)
    tries = admin.task_instances(TRAINING, run_id)["register"]["try_number"]
    assert tries >= 2
    finishing = admin.task_log(TRAINING, run_id, "register", try_number=tries)
    assert f"{MODEL} v{made[0]} was registered by {run_id} already: finishing it" in finishing
    assert int(xcom(admin, TRAINING, run_id, "register")["version"]) == made[0]
    assert mlflow_client(stack).get_registered_model(MODEL).aliases["challenger"] == str(made[0])
    answer_at_once(approver, TRAINING, run_id, "Reject", comment="registered through a fault")
    assert admin.wait_for_run(TRAINING, run_id, timeout=600) == "success"
    rejected = mlflow_client(stack).get_model_version(MODEL, str(made[0]))
    assert (rejected.tags["status"], rejected.tags["decision"], rejected.tags["decision.by"]) == (
        "rejected",
        "rejected",
        "approver",
    )
    assert rejected.tags["decision.comment"] == "registered through a fault"
    assert rejected.tags["decision.airflow_run_id"] == run_id
    assert not rejected.aliases  # neither challenger nor champion

    registry = all_versions(stack)
    assert [v for v, tags in registry.items() if tags.get("airflow.run_id") == run_id] == made
    assert all("airflow.run_id" in tags for tags in registry.values())  # no version without its run
    by_run = [tags["airflow.run_id"] for tags in registry.values()]
    assert len(by_run) == len(set(by_run))  # one version per Airflow run, over the whole registry
    assert champion_now(stack) == champion_before


def _connect_server_jvm(port: str) -> int | None:
    """The pid of the JVM of the stack's Spark Connect server (listening on ``port``), if any."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = [w.decode(errors="replace") for w in (entry / "cmdline").read_bytes().split(b"\0")]
        except OSError:
            continue
        if (
            "org.apache.spark.deploy.SparkSubmit" in words
            and "org.apache.spark.sql.connect.service.SparkConnectServer" in words
            and f"spark.connect.grpc.binding.port={port}" in words
        ):
            return int(entry.name)
    return None


def test_a_spark_job_killed_while_writing_keeps_the_previous_partition(stack, admin, data_days):
    import pandas as pd

    day = "2013-01-02"
    data_root = Path(stack["MLCYCLE_DATA_ROOT"])
    features = data_root / "features"
    partition = features / f"ds={day}"
    before = pd.read_parquet(partition).sort_values("flight_id").reset_index(drop=True)
    files_before = sorted(p.name for p in partition.glob("*.parquet"))
    assert len(before) > 500

    # Re-run the day's features, as a person clears the task in the UI; kill the job as it writes.
    run_id = next(r["dag_run_id"] for r in data_days if r["logical_date"][:10] == day)
    tries_before = admin.task_instances("flights_data", run_id)["build_features"]["try_number"]
    stale = set(features.glob(".spark-staging-*"))
    # (Only the task: the day's features are announced already, so scoring need not run again.)
    assert admin.clear("flights_data", run_id, ["build_features"], include_downstream=False) == [
        "build_features"
    ]
    port = stack["MLCYCLE_SPARK_CONNECT_PORT"]
    engine = _connect_server_jvm(port)
    assert engine is not None, "the stack's Spark Connect server is not running"
    killed = None
    deadline = time.monotonic() + 900
    while killed is None and time.monotonic() < deadline:
        # A write with dynamic partition overwrite stages under <dataset>/.spark-staging-<job>
        # from its start until the job commits and moves ds=<day> into place.
        staging = [d for d in features.glob(".spark-staging-*") if d not in stale]
        if staging:
            os.kill(engine, signal.SIGKILL)
            killed = (engine, staging[0])
            break
        time.sleep(0.02)
    assert killed is not None, "never saw the features job writing"

    # While the job is dead, before any retry: the published partition is the previous one, whole.
    now = pd.read_parquet(partition).sort_values("flight_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(now, before)
    assert sorted(p.name for p in partition.glob("*.parquet")) == files_before

    assert admin.wait_for_run("flights_data", run_id, timeout=900) == "success"
    ti = admin.task_instances("flights_data", run_id)["build_features"]
    assert ti["try_number"] == tries_before + 2, ti  # the killed try, then the retry
    after = pd.read_parquet(partition).sort_values("flight_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(after, before, check_like=True)
    # The supervisor started the engine again: a new JVM serves the same port.
    restarted = _connect_server_jvm(port)
    assert restarted is not None and restarted != engine


def test_a_reader_holding_airflows_database_does_not_hold_off_a_write(stack, admin, dags):
    from mlcycle.devstack import stack as launcher

    with closing(sqlite3.connect(launcher.airflow_db(), isolation_level=None)) as reader:
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM dag").fetchone()[0] > 0  # the read lock is held
        began = time.monotonic()
        admin.pause("air_time_rollback")  # a write of the api-server's, committed while the reader reads
        admin.unpause("air_time_rollback")
        took = time.monotonic() - began
        reader.execute("COMMIT")
    assert took < 5, f"two writes took {took:.1f} s beside a reader"
    assert not admin.request("GET", "dags/air_time_rollback")["is_paused"]
