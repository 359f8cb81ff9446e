"""The whole lifecycle on the embedded stack, driven through Airflow's REST API as people do:
backfill days, train, approve as the approver, see the champion move and score the next day;
then a second training that is rejected leaves the champion where it was."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
from stack_state import champion as _champion
from stack_state import mlflow_client as _mlflow
from stack_state import versions as _versions
from stack_state import xcom as _xcom

from mlcycle.cli import ALL_DAGS, run_data_window

pytestmark = pytest.mark.e2e

MODEL = "flights_air_time"
FIRST_DAY, DAYS = "2013-01-01", 3
WINDOW = {"train_start": "2013-01-01", "train_end": "2013-01-02", "holdout_days": 1}
SCORED_DAY = "2013-01-03"


def _train(admin, approver, option: str, comment: str) -> tuple[str, int]:
    # Margins of 60 min let any challenger reach a person: this test is about the sign-off.
    run_id = admin.trigger(
        "flights_training", conf={**WINDOW, "min_improvement": -60.0, "carrier_tolerance": 60.0}
    )
    admin.wait_for_approval("flights_training", run_id, "sign_off", timeout=900)
    detail = approver.request(
        "GET", f"dags/flights_training/dagRuns/{run_id}/taskInstances/sign_off/-1/hitlDetails"
    )
    assert "MAE" in detail["body"], detail["body"]
    assert [u["id"] for u in detail["assigned_users"]] == ["approver", "approver2"]
    approver.respond("flights_training", run_id, "sign_off", option, comment=comment)
    assert admin.wait_for_run("flights_training", run_id, timeout=600) == "success"
    version = admin.request(
        "GET", f"dags/flights_training/dagRuns/{run_id}/taskInstances/register/xcomEntries/return_value"
    )["value"]["version"]
    return run_id, int(version)


def _wait_for_partition(stack, dataset: str, day: str, timeout: float = 600):
    import pandas as pd

    path = Path(stack["MLCYCLE_DATA_ROOT"]) / dataset / f"ds={day}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_dir() and any(path.glob("*.parquet")):
            return pd.read_parquet(path)
        time.sleep(3)
    raise AssertionError(f"no {dataset} for {day} after {timeout:.0f} s")


def test_backfill_train_approve_score_then_reject(stack, admin, approver):
    admin.wait_for_dags(ALL_DAGS)
    for dag_id in ALL_DAGS:
        admin.unpause(dag_id)

    runs = run_data_window(admin, FIRST_DAY, DAYS)
    assert sorted(r["logical_date"][:10] for r in runs) == ["2013-01-01", "2013-01-02", "2013-01-03"]
    data_root = Path(stack["MLCYCLE_DATA_ROOT"])
    for day in ("2013-01-01", "2013-01-02", "2013-01-03"):
        assert any((data_root / "features" / f"ds={day}").glob("*.parquet"))
    assert _champion(stack) is None

    # Approve: the challenger becomes champion, and the next day is scored with it.
    _, first = _train(admin, approver, "Approve", comment="first model")
    assert _champion(stack) == first
    mv = _mlflow(stack).get_model_version(MODEL, str(first))
    assert mv.tags["status"] == "champion"
    assert mv.tags["decision"] == "approved"
    assert mv.tags["decision.by"] == "approver"
    assert mv.tags["decision.comment"] == "first model"

    import pandas as pd

    predictions = _wait_for_partition(stack, "predictions", SCORED_DAY)
    features = pd.read_parquet(data_root / "features" / f"ds={SCORED_DAY}")
    assert len(predictions) == len(features) > 500
    assert set(predictions["model_version"].astype(str)) == {str(first)}
    assert set(predictions["model_name"]) == {MODEL}
    assert predictions["prediction"].notna().all()

    # Monitoring follows the predictions: the day's MAE against the actual flight times.
    monitoring = _wait_for_partition(stack, "monitoring", SCORED_DAY)
    assert list(monitoring["model_version"].astype(str)) == [str(first)]
    assert 0 < float(monitoring["mae"].iloc[0]) < 60

    # Reject: a second challenger is recorded as rejected; champion does not move.
    _, second = _train(admin, approver, "Reject", comment="not convinced")
    assert second != first
    assert _champion(stack) == first
    mv2 = _mlflow(stack).get_model_version(MODEL, str(second))
    assert mv2.tags["status"] == "rejected"
    assert mv2.tags["decision.by"] == "approver"
    assert "champion" not in (mv2.aliases or [])


def test_no_answer_in_time_is_a_rejection(stack, admin):
    """Nobody answers within the run's approval time: the default (Reject) is taken, recorded as
    decided by the timeout, and the champion does not move."""
    before = _champion(stack)
    conf = {
        **WINDOW,
        "min_improvement": -60.0,
        "carrier_tolerance": 60.0,
        "approval_timeout_hours": 20 / 3600,
    }
    run_id = admin.trigger("flights_training", conf=conf)
    admin.wait_for_approval("flights_training", run_id, "sign_off", timeout=900)
    assert admin.wait_for_run("flights_training", run_id, timeout=600) == "success"
    states = {t: ti["state"] for t, ti in admin.task_instances("flights_training", run_id).items()}
    assert (states["sign_off"], states["promote"], states["record_decision"]) == (
        "success",
        "skipped",
        "success",
    )
    version = admin.request(
        "GET", f"dags/flights_training/dagRuns/{run_id}/taskInstances/register/xcomEntries/return_value"
    )["value"]["version"]
    mv = _mlflow(stack).get_model_version(MODEL, str(version))
    assert (mv.tags["status"], mv.tags["decision"]) == ("rejected", "rejected")
    assert mv.tags["decision.by"] == "timeout (default: Reject)"
    assert mv.tags["decision.airflow_run_id"] == run_id
    assert _champion(stack) == before


HELD_DAY = "2013-01-10"


def test_a_bad_drop_is_held_in_airflow_and_a_fixed_one_goes_through(stack, admin):
    """A drop with duplicated flights, delivered to landing/ by someone else: the raw gate holds
    the day at once (no retry), the tasks after it do not run, the log and the "Data quality" link
    say why; the days before are untouched. The fixed drop, after a Clear, goes through."""
    import json

    import requests

    from mlcycle.landing import land_day, landing_path

    admin.wait_for_dags(ALL_DAGS)
    admin.unpause("flights_data")
    data_root = Path(stack["MLCYCLE_DATA_ROOT"])
    before = {p.name: p.stat().st_mtime for p in (data_root / "validated" / "flights").glob("ds=*")}

    land_day(str(data_root), HELD_DAY)
    drop = Path(landing_path(str(data_root), "flights", HELD_DAY))
    good = drop.read_text()
    lines = good.splitlines()
    drop.write_text("\n".join(lines + lines[100:103]) + "\n")

    run_id = admin.trigger("flights_data", conf={"replay": False}, logical_date=f"{HELD_DAY}T00:00:00Z")
    assert admin.wait_for_run("flights_data", run_id, timeout=900) == "failed"
    tis = admin.task_instances("flights_data", run_id)
    assert {t: tis[t]["state"] for t in tis} == {
        "land": "success",
        "validate_raw": "failed",
        "build_features": "upstream_failed",
        "publish_features": "upstream_failed",
    }
    assert tis["validate_raw"]["try_number"] == 1  # retries=1, but a held day is not retried

    log = admin.task_log("flights_data", run_id, "validate_raw", 1)
    assert f"Data-quality gate held ds={HELD_DAY}" in log
    assert f"rejected raw_flights ds={HELD_DAY}" in log
    assert "expect_compound_columns_to_be_unique" in log and '"unexpected_count": 6' in log

    verdict = json.loads((data_root / "gates" / "raw_flights" / f"ds={HELD_DAY}.json").read_text())
    assert verdict["success"] is False and verdict["rows"] == len(lines) - 1 + 3
    assert not (data_root / "validated" / "flights" / f"ds={HELD_DAY}").exists()
    after = {p.name: p.stat().st_mtime for p in (data_root / "validated" / "flights").glob("ds=*")}
    assert after == before  # the other days were not touched

    link = admin.extra_links("flights_data", run_id, "validate_raw")["Data quality"]
    page = requests.get(link, headers=admin._headers(), timeout=30)
    assert page.status_code == 200
    assert "expect_compound_columns_to_be_unique" in page.text and HELD_DAY in page.text
    assert requests.get(link, timeout=30, allow_redirects=False).status_code in (401, 303)  # login first

    drop.write_text(good)  # the upstream delivers the day again, fixed
    assert "validate_raw" in admin.clear("flights_data", run_id, ["validate_raw"])
    assert admin.wait_for_run("flights_data", run_id, timeout=900) == "success"
    verdict = json.loads((data_root / "gates" / "raw_flights" / f"ds={HELD_DAY}.json").read_text())
    assert (verdict["success"], verdict["validated"], verdict["quarantined"]) == (True, len(lines) - 1, 0)
    assert any((data_root / "features" / f"ds={HELD_DAY}").glob("*.parquet"))


def test_a_clearly_worse_challenger_is_rejected_by_rule_and_a_retried_registration_finds_it(stack, admin):
    """With a margin no model can meet, the challenger is rejected before anyone is asked; the
    version records the rule. Clearing ``register`` (a retry) finds that version again."""
    before = _champion(stack)
    conf = {**WINDOW, "min_improvement": 60.0, "carrier_tolerance": 60.0}
    run_id = admin.trigger("flights_training", conf=conf)
    assert admin.wait_for_run("flights_training", run_id, timeout=900) == "success"
    states = {t: ti["state"] for t, ti in admin.task_instances("flights_training", run_id).items()}
    assert (states["evaluate"], states["sign_off"], states["promote"], states["record_decision"]) == (
        "success",
        "skipped",
        "skipped",
        "success",
    )
    version = int(_xcom(admin, "flights_training", run_id, "register")["version"])
    tags = _versions(stack)[version]
    assert (tags["status"], tags["decision"]) == ("rejected", "rejected")
    assert tags["decision.by"] == "rule:min_improvement"
    assert "min_improvement" in tags["decision.comment"] and tags["decision.airflow_run_id"] == run_id
    assert _champion(stack) == before
    assert "challenger" not in _mlflow(stack).get_registered_model(MODEL).aliases

    count = len(_versions(stack))
    assert admin.clear("flights_training", run_id, ["register"], include_downstream=False) == ["register"]
    assert admin.wait_for_run("flights_training", run_id, timeout=600) == "success"
    assert admin.task_instances("flights_training", run_id)["register"]["try_number"] == 2
    assert int(_xcom(admin, "flights_training", run_id, "register")["version"]) == version
    made_by_run = [v for v, t in _versions(stack).items() if t.get("airflow.run_id") == run_id]
    assert made_by_run == [version] and len(_versions(stack)) == count
    assert _versions(stack)[version]["status"] == "rejected"  # the retry did not revive it


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_promotions_race_rollback_and_archival(stack, admin, approver):
    """A training run and a rollback are approved at the same moment: their promotions run one
    after the other, and exactly one champion is left, the one promoted last. A version that a
    pending rollback targets is not archived; once that rollback is rejected, it is."""
    from mlcycle.registry import champion_history

    _, newer = _train(admin, approver, "Approve", comment="second champion")
    first = next(h["version"] for h in champion_history(stack["MLFLOW_TRACKING_URI"], MODEL))
    assert _champion(stack) == newer != first
    assert _versions(stack)[first]["status"] == "retired"

    # The race: a challenger and a rollback to the first champion, both approved at once.
    train_run = admin.trigger(
        "flights_training", conf={**WINDOW, "min_improvement": -60.0, "carrier_tolerance": 60.0}
    )
    back_run = admin.trigger("flights_rollback", conf={"version": first, "reason": "compare"})
    admin.wait_for_approval("flights_training", train_run, "sign_off", timeout=900)
    admin.wait_for_approval("flights_rollback", back_run, "sign_off", timeout=300)
    challenger = int(_xcom(admin, "flights_training", train_run, "register")["version"])
    approver.respond("flights_training", train_run, "sign_off", "Approve", comment="race a")
    approver.respond("flights_rollback", back_run, "sign_off", "Approve", comment="race b", settle=0)
    assert admin.wait_for_run("flights_training", train_run, timeout=600) == "success"
    assert admin.wait_for_run("flights_rollback", back_run, timeout=600) == "success"

    promotions = sorted(
        [
            (admin.task_instances("flights_training", train_run)["promote"], challenger),
            (admin.task_instances("flights_rollback", back_run)["promote"], first),
        ],
        key=lambda p: p[0]["end_date"],
    )
    (earlier, loser), (later, winner) = promotions
    assert earlier["end_date"] <= later["start_date"]  # one at a time (pool model_promotion)
    assert _champion(stack) == winner
    tags = _versions(stack)
    assert [v for v, t in tags.items() if t.get("status") == "champion"] == [winner]
    assert tags[loser]["status"] == "retired" and tags[newer]["status"] == "retired"
    assert tags[winner]["decision.by"] == tags[loser]["decision.by"] == "approver"
    served_twice = [h for h in champion_history(stack["MLFLOW_TRACKING_URI"], MODEL) if h["version"] == first]
    assert len(served_twice) == 2
    assert "challenger" not in _mlflow(stack).get_registered_model(MODEL).aliases

    # Archival with no retention: a rollback waiting for its decision holds its target. The last
    # promotion announced a champion; the scoring it starts holds the versions it will load (a day
    # kept on the version that scored it), so it must have run before archival counts anything.
    promoted = _when(later["end_date"])
    deadline = time.monotonic() + 300
    while not [
        r
        for r in admin.dag_runs("flights_scoring", order_by="-id", limit=5)
        if r.get("queued_at") and _when(r["queued_at"]) >= promoted
    ]:
        assert time.monotonic() < deadline, "the new champion started no scoring run"
        time.sleep(1)
    admin.wait_until_idle(["flights_scoring", "flights_monitoring"])
    held = newer
    pending = admin.trigger("flights_rollback", conf={"version": held, "reason": "hold it"})
    admin.wait_for_approval("flights_rollback", pending, "sign_off", timeout=300)
    retired = sorted(v for v, t in _versions(stack).items() if t.get("status") == "retired")
    assert held in retired and loser in retired

    archival = admin.trigger("flights_archival", conf={"retention_days": 0})
    assert admin.wait_for_run("flights_archival", archival, timeout=300) == "success"
    archived = _xcom(admin, "flights_archival", archival, "archive_retired")
    assert sorted(archived) == [v for v in retired if v != held]
    archive_root = Path(stack["MLCYCLE_DATA_ROOT"]) / "archive" / MODEL
    import json

    for version in archived:
        card = json.loads((archive_root / f"v{version}" / "model_card.json").read_text())
        assert card["version"] == version and card["approval"]["decision.by"] == "approver"
        assert card["data_window"]["start"] == WINDOW["train_start"] and "val_mae" in card["metrics"]
        assert (archive_root / f"v{version}" / "model" / "MLmodel").exists()
        assert _versions(stack)[version]["status"] == "archived"
    assert _versions(stack)[held]["status"] == "retired"
    assert not (archive_root / f"v{held}").exists()

    approver.respond("flights_rollback", pending, "sign_off", "Reject", comment="keep the champion")
    assert admin.wait_for_run("flights_rollback", pending, timeout=300) == "success"
    assert _champion(stack) == winner
    assert _versions(stack)[held]["rollback.decision"] == "rejected"

    again = admin.trigger("flights_archival", conf={"retention_days": 0})
    assert admin.wait_for_run("flights_archival", again, timeout=300) == "success"
    assert _xcom(admin, "flights_archival", again, "archive_retired") == [held]
    final = _versions(stack)
    assert final[held]["status"] == "archived" and not [k for k in final[held] if k.startswith("in_use.")]
    assert final[winner]["status"] == "champion" and _champion(stack) == winner
    once_more = admin.trigger("flights_archival", conf={"retention_days": 0})
    assert admin.wait_for_run("flights_archival", once_more, timeout=300) == "success"
    assert _xcom(admin, "flights_archival", once_more, "archive_retired") == []


def test_rescore_then_a_degraded_champion_starts_its_own_retraining(stack, admin, approver):
    """A past day is rescored with the current champion on request; monitoring, with a rule any
    model fails, triggers one training run on the recent window and records it; a second check
    does not trigger another; the new challenger goes to the usual sign-off."""
    import pandas as pd
    import requests

    champion_now = _champion(stack)
    data_root = Path(stack["MLCYCLE_DATA_ROOT"])
    admin.wait_until_idle(["flights_scoring", "flights_monitoring"])
    rescore = admin.trigger("flights_scoring", conf={"days": [SCORED_DAY], "rescore": True})
    assert admin.wait_for_run("flights_scoring", rescore, timeout=600) == "success"
    predictions = pd.read_parquet(data_root / "predictions" / f"ds={SCORED_DAY}")
    assert set(predictions["model_version"].astype(str)) == {str(champion_now)}
    assert set(predictions["airflow_run_id"]) == {rescore}
    admin.wait_until_idle(["flights_scoring", "flights_monitoring"])  # monitoring follows on its own
    monitored = pd.read_parquet(data_root / "monitoring" / f"ds={SCORED_DAY}")
    assert list(monitored["model_version"].astype(str)) == [str(champion_now)]

    rule = {
        "days": [SCORED_DAY],
        "retrain_tolerance": -100.0,  # any MAE is "over": this test is about what happens next
        "retrain_consecutive_days": 1,
        "rolling_days": 1,
        "cooling_off_days": 30,
        "retrain_window_days": 3,
        "retrain_holdout_days": 1,
    }
    run_id = admin.trigger("flights_monitoring", conf=rule)
    assert admin.wait_for_run("flights_monitoring", run_id, timeout=600) == "success"
    states = {t: ti["state"] for t, ti in admin.task_instances("flights_monitoring", run_id).items()}
    assert (states["check_retraining"], states["retrain"], states["record_retraining"]) == ("success",) * 3
    training_run = f"retrain__{run_id}"
    assert admin.dag_run("flights_training", training_run)["conf"] == {
        "train_start": "2013-01-01",
        "train_end": SCORED_DAY,
        "holdout_days": 1,
    }
    model_tags = _mlflow(stack).get_registered_model(MODEL).tags
    assert model_tags["retraining.last_triggered_for"] == SCORED_DAY
    assert model_tags["retraining.last_run_id"] == training_run

    # The chart of the live error: drawn by the run, linked from its tasks, attached in MLflow.
    assert states["chart"] == "success"
    link = admin.extra_links("flights_monitoring", run_id, "check_retraining")["MAE chart"]
    page = requests.get(link, headers=admin._headers(), timeout=30)
    assert page.status_code == 200 and "monitoring/chart.png" in page.text
    image = requests.get(link + "/chart.png", headers=admin._headers(), timeout=30)
    assert image.headers["content-type"] == "image/png"
    assert image.content == (data_root / "reports" / "monitoring_mae.png").read_bytes()
    assert requests.get(link + "/chart.png", timeout=30).status_code == 401  # login first
    client = _mlflow(stack)
    (monitoring_run,) = client.search_runs(
        [client.get_experiment_by_name(f"{MODEL}-monitoring").experiment_id],
        filter_string=f"tags.`monitoring.model_version` = '{champion_now}'",
    )
    assert "monitoring_mae.png" in [a.path for a in client.list_artifacts(monitoring_run.info.run_id)]

    again = admin.trigger("flights_monitoring", conf=rule)
    assert admin.wait_for_run("flights_monitoring", again, timeout=600) == "success"
    states = {t: ti["state"] for t, ti in admin.task_instances("flights_monitoring", again).items()}
    assert (states["check_retraining"], states["retrain"]) == ("success", "skipped")
    log = admin.task_log("flights_monitoring", again, "check_retraining", 1)
    assert "already queued or running" in log or "cooling off" in log
    assert [
        r["dag_run_id"] for r in admin.dag_runs("flights_training") if r["dag_run_id"].startswith("retrain__")
    ] == [training_run]

    # The challenger goes through the usual evaluation: a person or a rule decides.
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if admin.task_state("flights_training", training_run, "sign_off") == "awaiting_input":
            approver.respond("flights_training", training_run, "sign_off", "Reject", comment="not now")
            break
        if admin.dag_run("flights_training", training_run)["state"] in ("success", "failed"):
            break
        time.sleep(3)
    assert admin.wait_for_run("flights_training", training_run, timeout=600) == "success"
    version = int(_xcom(admin, "flights_training", training_run, "register")["version"])
    assert _versions(stack)[version]["status"] == "rejected"
    assert _champion(stack) == champion_now
