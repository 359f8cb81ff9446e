"""People and faults on the embedded stack, through Airflow's REST API and UI as they happen:

- only the configured approvers may answer a sign-off; two answering at once record one decision;
- the scheduler killed while a sign-off is pending: after restart the approval still works;
- a training triggered while another waits for its sign-off waits its turn, is compared with the
  champion of that moment, and is approved by a person in a real browser: one champion;
- MLflow down when a version is registered: a clear failure, a retry, exactly one version;
- the Spark engine killed while a job writes a partition (the JVM of the stack's Spark Connect
  server, as an out-of-memory kill would): the previous partition is intact, the server is
  started again by its supervisor, and the task's retry completes.

Runs after ``test_lifecycle`` (days of data and a champion exist)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from stack_state import champion as _champion
from stack_state import versions as _versions
from stack_state import xcom as _xcom

from mlcycle.airflow_api import AirflowError

pytestmark = pytest.mark.e2e

MODEL = "flights_air_time"
TRAINING = "flights_training"
WINDOW = {"train_start": "2013-01-01", "train_end": "2013-01-02", "holdout_days": 1}
LET_THROUGH = {"min_improvement": -60.0, "carrier_tolerance": 60.0}  # any challenger reaches a person


def _hitl(client, run_id: str) -> str:
    return f"dags/{TRAINING}/dagRuns/{run_id}/taskInstances/sign_off/-1/hitlDetails"


def _refused(client, run_id: str) -> int:
    """The status Airflow answers when this client tries to approve."""
    try:
        client.request(
            "PATCH", _hitl(client, run_id), json={"chosen_options": ["Approve"], "params_input": {}}
        )
    except AirflowError as exc:
        return int(str(exc).split(": ", 1)[1][:3])
    return 200


def _one_champion(stack) -> int:
    champions = [v for v, tags in _versions(stack).items() if tags.get("status") == "champion"]
    assert len(champions) == 1, f"versions tagged champion: {champions}"
    assert _champion(stack) == champions[0]
    return champions[0]


def test_sign_off_takes_one_answer_from_approvers_only_survives_the_scheduler_and_a_browser(
    stack, stack_home, admin, approver, approver2, analyst
):
    from ui_browser import answer_in_ui, browser_page, log_in

    from mlcycle import stack as launcher

    before = _champion(stack)
    assert before is not None, "runs after test_lifecycle, with a champion"
    first = admin.trigger(TRAINING, conf={**WINDOW, **LET_THROUGH})
    admin.wait_for_approval(TRAINING, first, "sign_off", timeout=900)

    # A second training while the first waits for its sign-off: it waits its turn (one run at a time).
    second = admin.trigger(TRAINING, conf={**WINDOW, **LET_THROUGH})
    time.sleep(10)
    assert admin.dag_run(TRAINING, second)["state"] == "queued"

    # Only the configured approvers may answer: a colleague with the same role and the admin are refused.
    detail = approver.request("GET", _hitl(approver, first))
    assert [u["id"] for u in detail["assigned_users"]] == ["approver", "approver2"]
    assert _refused(analyst, first) == 403
    assert _refused(admin, first) == 403
    assert admin.task_state(TRAINING, first, "sign_off") == "awaiting_input"

    # The scheduler dies (kill -9, supervisor included) while the sign-off is pending, and comes back.
    launcher.kill("scheduler")
    assert launcher.status()["scheduler"] == "stopped"
    time.sleep(5)
    assert admin.task_state(TRAINING, first, "sign_off") == "awaiting_input"
    launcher.start()
    assert launcher.status()["scheduler"].startswith("up")

    # Two approvers answer at the same moment: one answer is taken, the other is refused.
    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def answer(client, option):
        client.wait_for_approval(TRAINING, first, "sign_off")
        time.sleep(15)  # let the restarted scheduler settle, as a person reading the evidence would
        start.wait()
        try:
            outcomes[client.username] = client.request(
                "PATCH",
                _hitl(client, first),
                json={
                    "chosen_options": [option],
                    "params_input": {"comment": f"{option} by {client.username}"},
                },
            )
        except AirflowError as exc:
            outcomes[client.username] = exc

    threads = [
        threading.Thread(target=answer, args=(approver, "Approve")),
        threading.Thread(target=answer, args=(approver2, "Reject")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    taken = [user for user, out in outcomes.items() if isinstance(out, dict)]
    assert len(taken) == 1, outcomes
    winner = taken[0]
    loser = ({"approver", "approver2"} - {winner}).pop()
    assert "409" in str(outcomes[loser]) or "already" in str(outcomes[loser]), outcomes[loser]
    assert admin.wait_for_run(TRAINING, first, timeout=900) == "success"

    version_1 = int(_xcom(admin, TRAINING, first, "register")["version"])
    tags = _versions(stack)[version_1]
    assert tags["decision.by"] == winner
    assert tags["decision.airflow_run_id"] == first
    approved = winner == "approver"
    assert tags["decision"] == ("approved" if approved else "rejected")
    assert tags["decision.comment"] == f"{'Approve' if approved else 'Reject'} by {winner}"
    responded = admin.request("GET", _hitl(admin, first))
    assert responded["responded_by_user"]["id"] == winner
    expected = version_1 if approved else before
    assert _one_champion(stack) == expected

    # The queued training now runs, compared with the champion of this moment, and a person
    # approves it in the Airflow UI, in a real browser.
    admin.wait_for_approval(TRAINING, second, "sign_off", timeout=900)
    evidence = _xcom(admin, TRAINING, second, "evaluate")
    assert evidence["champion_version"] == expected
    version_2 = int(_xcom(admin, TRAINING, second, "register")["version"])
    time.sleep(15)
    with browser_page() as page:
        log_in(page, stack["MLCYCLE_AIRFLOW_URL"], "approver", launcher.passwords()["approver"])
        subject = f"Promote v{version_2} of {MODEL} to champion?"
        seen = answer_in_ui(page, stack["MLCYCLE_AIRFLOW_URL"], subject, "Approve", comment="seen in the UI")
    assert subject in seen and f"champion v{expected}" in seen and "validation MAE" in seen
    assert admin.wait_for_run(TRAINING, second, timeout=900) == "success"
    assert _champion(stack) == version_2
    tags = _versions(stack)
    assert tags[version_2]["decision.by"] == "approver" and tags[version_2]["decision"] == "approved"
    assert tags[version_2]["decision.comment"] == "seen in the UI"
    assert tags[expected]["status"] == "retired"
    assert _one_champion(stack) == version_2


def test_mlflow_down_at_registration_fails_clearly_then_one_version(stack, admin):
    from mlcycle import stack as launcher

    runs = admin.dag_runs(TRAINING, state=["success"], order_by="-end_date", limit=1)
    run_id = runs[0]["dag_run_id"]
    version = int(_xcom(admin, TRAINING, run_id, "register")["version"])
    count = len(_versions(stack))
    tries_before = admin.task_instances(TRAINING, run_id)["register"]["try_number"]

    launcher.kill("mlflow")
    try:
        assert admin.clear(TRAINING, run_id, ["register"], include_downstream=False) == ["register"]
        deadline = time.monotonic() + 300
        while admin.task_state(TRAINING, run_id, "register") != "up_for_retry":
            assert time.monotonic() < deadline, admin.task_instances(TRAINING, run_id)["register"]
            assert admin.task_state(TRAINING, run_id, "register") != "success"
            time.sleep(2)
        log = admin.task_log(TRAINING, run_id, "register", try_number=tries_before + 1)
        assert "MLflow tracking server" in log and "is not answering" in log, log[-2000:]
        assert "Nothing was registered" in log
    finally:
        launcher.start()

    assert admin.wait_for_run(TRAINING, run_id, timeout=600) == "success"
    assert admin.task_instances(TRAINING, run_id)["register"]["try_number"] >= tries_before + 2
    assert int(_xcom(admin, TRAINING, run_id, "register")["version"]) == version
    made_by_run = [v for v, t in _versions(stack).items() if t.get("airflow.run_id") == run_id]
    assert made_by_run == [version] and len(_versions(stack)) == count


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


def test_a_spark_job_killed_while_writing_keeps_the_previous_partition(stack, admin):
    import pandas as pd

    day = "2013-01-02"
    data_root = Path(stack["MLCYCLE_DATA_ROOT"])
    features = data_root / "features"
    partition = features / f"ds={day}"
    before = pd.read_parquet(partition).sort_values("flight_id").reset_index(drop=True)
    files_before = sorted(p.name for p in partition.glob("*.parquet"))
    assert len(before) > 500

    # Re-run the day's features, as a person clears the task in the UI; kill the job as it writes.
    run_id = next(
        r["dag_run_id"]
        for r in admin.dag_runs("flights_data", limit=100)
        if (r["logical_date"] or "")[:10] == day
    )
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
