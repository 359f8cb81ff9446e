"""Two promotions at once, and archival, on the embedded stack.

A training run and a rollback are approved at the same moment: both promotions wait together, the
one-slot pool ``model_promotion`` lets one through, the other waits for it, and exactly one champion
is left, the one promoted last. A version that a pending rollback targets is not archived; once
that rollback is rejected, it is."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from stack_state import MODEL, ROLLBACK, TRAINING, WINDOW, answer_at_once, mlflow_client, train, xcom
from stack_state import champion as champion_now
from stack_state import versions as all_versions

from mlcycle.registry import champion_history

pytestmark = pytest.mark.e2e

POOL = "model_promotion"


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_two_promotions_at_once_one_champion_then_archival(
    stack, admin, approver, approver2, former_champion, paused
):
    paused("air_time_monitoring")  # scoring runs (it holds what it loads); monitoring is not needed
    before = champion_now(stack)
    target = former_champion
    stints = [h for h in champion_history(stack["MLFLOW_TRACKING_URI"], MODEL) if h["version"] == target]
    train_run = train(admin)
    back_run = admin.trigger(ROLLBACK, conf={"version": target, "reason": "compare"})
    admin.wait_for_approval(TRAINING, train_run, "sign_off", timeout=900)
    admin.wait_for_approval(ROLLBACK, back_run, "sign_off", timeout=300)
    challenger = int(xcom(admin, TRAINING, train_run, "register")["version"])

    # Promotions are on hold while both approvals come in (the pool's slot taken away, as an
    # operator would for a maintenance window), so both promotions are ready at the same time.
    pool = admin.request("GET", f"pools/{POOL}")
    assert pool["slots"] == 1

    def slots(n: int) -> None:
        body = {"pool": POOL, "slots": n, "include_deferred": pool["include_deferred"]}
        assert (
            admin.request(
                "PATCH", f"pools/{POOL}", params={"update_mask": "slots"}, json=body, idempotent=True
            )["slots"]
            == n
        )

    slots(0)
    try:
        start = threading.Barrier(2, timeout=60)

        def approve(client, dag_id, run_id):
            start.wait()
            answer_at_once(client, dag_id, run_id, "Approve", comment=f"race {dag_id}")

        threads = [
            threading.Thread(target=approve, args=(approver, TRAINING, train_run), daemon=True),
            threading.Thread(target=approve, args=(approver2, ROLLBACK, back_run), daemon=True),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
        deadline = time.monotonic() + 300
        while [
            admin.task_state(d, r, "promote") for d, r in ((TRAINING, train_run), (ROLLBACK, back_run))
        ] != [
            "scheduled",
            "scheduled",
        ]:
            assert time.monotonic() < deadline, "the two promotions never waited together"
            time.sleep(0.5)
    finally:
        slots(1)
    assert admin.wait_for_run(TRAINING, train_run, timeout=600) == "success"
    assert admin.wait_for_run(ROLLBACK, back_run, timeout=600) == "success"

    promotions = sorted(
        [
            (admin.task_instances(TRAINING, train_run)["promote"], challenger),
            (admin.task_instances(ROLLBACK, back_run)["promote"], target),
        ],
        key=lambda p: p[0]["start_date"],
    )
    (earlier, loser), (later, winner) = promotions
    # Both were waiting before either ran; the pool let one run, and the other started only when
    # it had ended.
    assert _when(later["scheduled_when"]) < _when(earlier["start_date"])
    assert _when(earlier["end_date"]) <= _when(later["start_date"])
    assert champion_now(stack) == winner
    tags = all_versions(stack)
    assert [v for v, t in tags.items() if t.get("status") == "champion"] == [winner]
    assert tags[loser]["status"] == "retired" and tags[before]["status"] == "retired"
    assert (tags[challenger]["decision.by"], tags[target]["decision.by"]) == ("approver", "approver2")
    served = [h for h in champion_history(stack["MLFLOW_TRACKING_URI"], MODEL) if h["version"] == target]
    assert len(served) == len(stints) + 1  # brought back: one more stint as champion
    assert "challenger" not in mlflow_client(stack).get_registered_model(MODEL).aliases

    # Archival with no retention: a rollback waiting for its decision holds its target. The last
    # promotion announced a champion; the scoring it starts holds the versions it will load (a day
    # kept on the version that scored it), so it must have run before archival counts anything.
    promoted = _when(later["end_date"])
    deadline = time.monotonic() + 300
    while not [
        r
        for r in admin.dag_runs("air_time_scoring", order_by="-id", limit=5)
        if r.get("queued_at") and _when(r["queued_at"]) >= promoted
    ]:
        assert time.monotonic() < deadline, "the new champion started no scoring run"
        time.sleep(1)
    admin.wait_until_idle(["air_time_scoring"])
    held = loser
    pending = admin.trigger(ROLLBACK, conf={"version": held, "reason": "hold it"})
    admin.wait_for_approval(ROLLBACK, pending, "sign_off", timeout=300)
    retired = sorted(v for v, t in all_versions(stack).items() if t.get("status") == "retired")
    assert held in retired and before in retired

    archival = admin.trigger("air_time_archival", conf={"retention_days": 0})
    assert admin.wait_for_run("air_time_archival", archival, timeout=300) == "success"
    archived = xcom(admin, "air_time_archival", archival, "archive_retired")
    assert sorted(archived) == [v for v in retired if v != held]
    archive_root = Path(stack["MLCYCLE_DATA_ROOT"]) / "archive" / MODEL
    for version in archived:
        card = json.loads((archive_root / f"v{version}" / "model_card.json").read_text())
        assert card["version"] == version and card["approval"]["decision.by"] in ("approver", "approver2")
        assert card["data_window"]["start"] == WINDOW["train_start"] and "val_mae" in card["metrics"]
        assert (archive_root / f"v{version}" / "model" / "MLmodel").exists()
        assert all_versions(stack)[version]["status"] == "archived"
    assert all_versions(stack)[held]["status"] == "retired"
    assert not (archive_root / f"v{held}").exists()

    answer_at_once(approver, ROLLBACK, pending, "Reject", comment="keep the champion")
    assert admin.wait_for_run(ROLLBACK, pending, timeout=300) == "success"
    assert champion_now(stack) == winner
    assert all_versions(stack)[held]["rollback.decision"] == "rejected"

    again = admin.trigger("air_time_archival", conf={"retention_days": 0})
    assert admin.wait_for_run("air_time_archival", again, timeout=300) == "success"
    assert xcom(admin, "air_time_archival", again, "archive_retired") == [held]
    final = all_versions(stack)
    assert final[held]["status"] == "archived" and not [k for k in final[held] if k.startswith("in_use.")]
    assert final[winner]["status"] == "champion" and champion_now(stack) == winner
    once_more = admin.trigger("air_time_archival", conf={"retention_days": 0})
    assert admin.wait_for_run("air_time_archival", once_more, timeout=300) == "success"
    assert xcom(admin, "air_time_archival", once_more, "archive_retired") == []
