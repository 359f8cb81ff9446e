"""The sign-off as people use it, on the embedded stack, through Airflow's REST API and UI. Every
case goes through ``air_time_rollback``: the same sign-off task and the same promotion as a training
run, without training a model first.

- an answer given the moment the task is parked is taken, ten times in a row, Approve and Reject;
- only the configured approvers may answer; two answering at once get one decision and a 409;
- the scheduler and the triggerer killed while a sign-off is pending (together, and the triggerer
  alone): the answer is still taken;
- no answer in time is a Reject, recorded as decided by the timeout;
- a person answers in a real browser, on the Required Actions page, as soon as it shows the task.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from stack_state import AT_ONCE, MODEL, ROLLBACK, answer_at_once, former_champions
from stack_state import champion as champion_now
from stack_state import versions as all_versions

from mlcycle.orchestration.client import AirflowError

pytestmark = pytest.mark.e2e


def _hitl(run_id: str) -> str:
    return f"dags/{ROLLBACK}/dagRuns/{run_id}/taskInstances/sign_off/-1/hitlDetails"


def _answer(client, run_id: str, option: str, comment: str = "") -> int:
    """The HTTP status Airflow answers to this client's answer."""
    try:
        client.request(
            "PATCH", _hitl(run_id), json={"chosen_options": [option], "params_input": {"comment": comment}}
        )
    except AirflowError as exc:
        return int(str(exc).split(": ", 1)[1][:3])
    return 200


def _ask(admin, target: int, **conf) -> str:
    """A rollback to ``target``, parked at its sign-off."""
    run_id = admin.trigger(ROLLBACK, conf={"version": target, "reason": "sign-off test", **conf})
    admin.wait_for_approval(ROLLBACK, run_id, "sign_off", timeout=600, poll=AT_ONCE)
    return run_id


def _decided(stack, admin, run_id: str, target: int, before: int, option: str, by: str) -> None:
    """The run ended as answered: Approve moved ``champion`` to the target, Reject changed nothing
    and was written on the target."""
    assert admin.wait_for_run(ROLLBACK, run_id, timeout=600) == "success"
    states = {t: ti["state"] for t, ti in admin.task_instances(ROLLBACK, run_id).items()}
    assert states["sign_off"] == "success", states
    tags = all_versions(stack)[target]
    if option == "Approve":
        assert states["promote"] == "success"
        assert champion_now(stack) == target
        assert (tags["status"], tags["decision.by"], tags["decision.airflow_run_id"]) == (
            "champion",
            by,
            run_id,
        )
        assert all_versions(stack)[before]["status"] == "retired"
    else:
        assert states["promote"] == "skipped"
        assert champion_now(stack) == before
        assert (tags["rollback.decision"], tags["rollback.by"]) == ("rejected", by)
        assert tags["rollback.airflow_run_id"] == run_id


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_an_answer_given_the_moment_it_is_asked_is_taken_ten_times(
    stack, stack_home, admin, approver, former_champion, paused
):
    paused("air_time_scoring", "air_time_monitoring")
    runs = []
    for i in range(10):
        option = "Approve" if i % 2 == 0 else "Reject"
        before = champion_now(stack)
        target = former_champions(stack)[-1]
        run_id = admin.trigger(ROLLBACK, conf={"version": target, "reason": f"answer {i} at once"})
        assert answer_at_once(approver, ROLLBACK, run_id, option, comment=f"{option} {i}")[
            "chosen_options"
        ] == [option]
        _decided(stack, admin, run_id, target, before, option, by="approver")
        detail = admin.request("GET", _hitl(run_id))
        assert _when(detail["responded_at"]) - _when(detail["created_at"]) < timedelta(seconds=5)
        runs.append(run_id)
    # The answers came while the scheduler had yet to read the end of the parked task's process,
    # the moment that failed such runs before: the stack's executor held the resumed task back.
    log = (Path(stack_home) / "logs" / "scheduler.log").read_text(errors="replace").splitlines()
    holding = [line for line in log if "Holding TaskInstanceKey(dag_id='air_time_rollback'" in line]
    held = [r for r in runs if any(f"task_id='sign_off', run_id='{r}'" in line for line in holding)]
    assert held, "no answer of the ten came before the scheduler had read the parked process's end"


def test_only_approvers_answer_and_two_at_once_get_one_decision(
    stack, admin, approver, approver2, analyst, former_champion, paused
):
    paused("air_time_scoring", "air_time_monitoring")
    before, target = champion_now(stack), former_champion
    run_id = _ask(admin, target)
    detail = approver.request("GET", _hitl(run_id))
    assert [u["id"] for u in detail["assigned_users"]] == ["approver", "approver2"]
    assert f"Roll {MODEL} back to v{target}" in detail["subject"]
    # A colleague with the same role and the admin are not approvers: refused, nothing recorded.
    assert _answer(analyst, run_id, "Approve") == 403
    assert _answer(admin, run_id, "Approve") == 403
    assert admin.task_state(ROLLBACK, run_id, "sign_off") == "awaiting_input"

    # Both approvers click at the same moment, the moment the task is parked.
    start = threading.Barrier(2, timeout=60)
    statuses: dict[str, int] = {}

    def answer(client, option):
        start.wait()
        statuses[client.username] = _answer(client, run_id, option, comment=f"{option} by {client.username}")

    threads = [
        threading.Thread(target=answer, args=(approver, "Approve"), daemon=True),
        threading.Thread(target=answer, args=(approver2, "Reject"), daemon=True),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), statuses
    assert sorted(statuses.values()) == [200, 409], statuses
    winner = next(user for user, status in statuses.items() if status == 200)
    responded = admin.request("GET", _hitl(run_id))
    assert responded["responded_by_user"]["id"] == winner
    option = "Approve" if winner == "approver" else "Reject"
    assert responded["chosen_options"] == [option]
    _decided(stack, admin, run_id, target, before, option, by=winner)


@pytest.mark.parametrize("killed", [("scheduler", "triggerer"), ("triggerer",)], ids="+".join)
def test_the_answer_is_taken_when_components_were_killed_while_it_waited(
    stack, admin, approver, former_champion, paused, killed
):
    from mlcycle.devstack import stack as launcher

    paused("air_time_scoring", "air_time_monitoring")
    before, target = champion_now(stack), former_champion
    run_id = _ask(admin, target)
    for name in killed:  # kill -9, supervisor included, as a crash or an OOM kill would
        pid = launcher._pid(name)
        assert pid is not None, f"{name} is not running"
        launcher.kill(name)
        assert not Path(f"/proc/{pid}").exists(), f"{name} (pid {pid}) survived the kill"
    try:
        assert admin.task_state(ROLLBACK, run_id, "sign_off") == "awaiting_input"
        assert _answer(approver, run_id, "Approve", comment=f"with {'+'.join(killed)} down") == 200
        if "scheduler" not in killed:
            # The wait and the resume need no triggerer: the run finishes while it is still down.
            _decided(stack, admin, run_id, target, before, "Approve", by="approver")
            assert launcher.status()["triggerer"] == "stopped"
    finally:
        launcher.start()
    assert all(launcher.status()[name].startswith("up") for name in killed)
    _decided(stack, admin, run_id, target, before, "Approve", by="approver")


def test_no_answer_in_time_is_a_rejection(stack, admin, former_champion, paused):
    paused("air_time_scoring", "air_time_monitoring")
    before, target = champion_now(stack), former_champion
    run_id = _ask(admin, target, approval_timeout_hours=3 / 3600)
    assert admin.wait_for_run(ROLLBACK, run_id, timeout=600) == "success"
    states = {t: ti["state"] for t, ti in admin.task_instances(ROLLBACK, run_id).items()}
    assert (states["sign_off"], states["promote"], states["record_decision"]) == (
        "success",
        "skipped",
        "success",
    )
    tags = all_versions(stack)[target]
    assert (tags["rollback.decision"], tags["rollback.by"]) == ("rejected", "timeout (default: Reject)")
    assert champion_now(stack) == before


def test_a_person_answers_in_the_browser_as_soon_as_the_ui_shows_it(stack, admin, former_champion, paused):
    from ui_browser import answer_in_ui, browser_page, log_in

    from mlcycle.devstack import stack as launcher

    paused("air_time_scoring", "air_time_monitoring")
    before, target = champion_now(stack), former_champion
    url = stack["MLCYCLE_AIRFLOW_URL"]
    with browser_page() as page:
        log_in(page, url, "approver", launcher.passwords()["approver"])
        run_id = _ask(admin, target)  # the person is on the page when the task asks
        subject = f"Roll {MODEL} back to v{target}?"
        seen = answer_in_ui(page, url, subject, "Approve", comment="seen in the UI", run_id=run_id)
    assert subject in seen and f"v{target} served" in seen
    _decided(stack, admin, run_id, target, before, "Approve", by="approver")
    assert all_versions(stack)[target]["decision.comment"] == "seen in the UI"
