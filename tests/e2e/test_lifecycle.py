"""The whole lifecycle on the embedded stack, driven through Airflow's REST API as people do:
backfill days, train, approve at once, see the champion move and the next day scored and monitored
with it; a training triggered meanwhile waits its turn, is compared with the new champion, and
replaces it in turn; a bad drop is held and a fixed one goes through; a past day is rescored, and a
degraded champion starts its own retraining. (A challenger a person rejects: tests/e2e/test_faults.py.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from stack_state import DAYS, FIRST_DAY, MODEL, TRAINING, answer_at_once, train, xcom
from stack_state import champion as champion_now
from stack_state import mlflow_client as _mlflow
from stack_state import versions as all_versions

pytestmark = pytest.mark.e2e

NEXT_DAY = "2013-01-04"  # a day only this file lands: scored by the champion it approves
SCORED_DAY = "2013-01-03"  # the day after the training window


def _wait_for_partition(stack, dataset: str, day: str, timeout: float = 600):
    import pandas as pd

    path = Path(stack["MLCYCLE_DATA_ROOT"]) / "models" / "air_time" / dataset / f"ds={day}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_dir() and any(path.glob("*.parquet")):
            return pd.read_parquet(path)
        time.sleep(0.5)
    raise AssertionError(f"no {dataset} for {day} after {timeout:.0f} s")


def _sign_off_detail(client, run_id: str) -> dict:
    return client.request("GET", f"dags/{TRAINING}/dagRuns/{run_id}/taskInstances/sign_off/-1/hitlDetails")


def test_backfill_train_approve_score_then_a_second_champion(stack, admin, approver, approver2, data_days):
    import pandas as pd

    # The backfill: one run per day, each day gated and built.
    assert sorted(r["logical_date"][:10] for r in data_days) == [f"2013-01-0{d}" for d in range(1, DAYS + 1)]
    assert {r["state"] for r in data_days} == {"success"} and data_days[0]["logical_date"][:10] == FIRST_DAY
    data_root = Path(stack["MLCYCLE_DATA_ROOT"])
    for day in range(1, DAYS + 1):
        assert any((data_root / "features" / f"ds=2013-01-0{day}").glob("*.parquet"))
    # each day built on every day before it (the backfill's runs one at a time: a day started
    # beside the one before would be built before that day was validated)
    for day in range(1, DAYS + 1):
        verdict = json.loads((data_root / "gates" / "features" / f"ds=2013-01-0{day}.json").read_text())
        assert verdict["history_days"] == day - 1, verdict

    # A training waits for its sign-off; a second one triggered meanwhile waits its turn.
    first = train(admin)
    admin.wait_for_approval(TRAINING, first, "sign_off", timeout=900)
    second = train(admin)
    assert admin.dag_run(TRAINING, second)["state"] == "queued"
    assert all(ti["state"] is None for ti in admin.task_instances(TRAINING, second).values())
    detail = _sign_off_detail(approver, first)
    assert "MAE" in detail["body"]
    assert [u["id"] for u in detail["assigned_users"]] == ["approver", "approver2"]

    # The training ran on the stack's Spark Connect server, from the task's own process.
    assert "Running spark_jobs.training " in admin.task_log(TRAINING, first, "train")

    # Approve at once: the challenger becomes champion.
    answer_at_once(approver, TRAINING, first, "Approve", comment="first model")
    assert admin.wait_for_run(TRAINING, first, timeout=600) == "success"
    version = int(xcom(admin, TRAINING, first, "register")["version"])
    assert champion_now(stack) == version
    mv = _mlflow(stack).get_model_version(MODEL, str(version))
    assert (mv.tags["status"], mv.tags["decision"], mv.tags["decision.by"]) == (
        "champion",
        "approved",
        "approver",
    )
    assert mv.tags["decision.comment"] == "first model"

    # The next day lands and is scored with the new champion; monitoring compares with the actuals.
    day_run = admin.trigger("flights_data", logical_date=f"{NEXT_DAY}T00:00:00Z")
    assert admin.wait_for_run("flights_data", day_run, timeout=900) == "success"
    predictions = _wait_for_partition(stack, "predictions", NEXT_DAY)
    features = pd.read_parquet(data_root / "features" / f"ds={NEXT_DAY}")
    assert len(predictions) == len(features) > 500
    assert set(predictions["model_version"].astype(str)) == {str(version)}
    assert set(predictions["model_name"]) == {MODEL}
    assert predictions["prediction"].notna().all()
    monitoring = _wait_for_partition(stack, "monitoring", NEXT_DAY)
    assert list(monitoring["model_version"].astype(str)) == [str(version)]
    joined = predictions.merge(features[["flight_id", "air_time"]], on="flight_id").dropna(
        subset=["air_time"]
    )
    assert float(monitoring["mae"].iloc[0]) == pytest.approx(
        (joined["prediction"] - joined["air_time"]).abs().mean(), rel=1e-6
    )

    # The second training ran after the first ended, and was compared with the new champion.
    admin.wait_for_approval(TRAINING, second, "sign_off", timeout=900)
    started = min(
        ti["start_date"] for ti in admin.task_instances(TRAINING, second).values() if ti["start_date"]
    )
    assert started >= admin.dag_run(TRAINING, first)["end_date"]
    assert xcom(admin, TRAINING, second, "evaluate")["champion_version"] == version
    newer = int(xcom(admin, TRAINING, second, "register")["version"])

    # Approved in turn: it replaces the first, which is retired with its stint closed.
    answer_at_once(approver2, TRAINING, second, "Approve", comment="better on the newer days")
    assert admin.wait_for_run(TRAINING, second, timeout=600) == "success"
    assert newer != version and champion_now(stack) == newer
    tags = all_versions(stack)
    assert (tags[newer]["status"], tags[newer]["decision.by"]) == ("champion", "approver2")
    assert tags[version]["status"] == "retired" and tags[version]["retired_at"]
    assert [v for v, t in tags.items() if t.get("status") == "champion"] == [newer]
    assert "challenger" not in (_mlflow(stack).get_model_version(MODEL, str(newer)).aliases or [])


HELD_DAY = "2013-01-10"


def _validated(data_root: Path):
    """Every validated partition of both datasets, as rows."""
    import pandas as pd

    out = {}
    for dataset in ("flights", "weather"):
        for part in sorted((data_root / "validated" / dataset).glob("ds=*")):
            frame = pd.read_parquet(part)
            out[(dataset, part.name)] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return out


def test_a_bad_drop_is_held_in_airflow_and_a_fixed_one_goes_through(stack, admin, data_days):
    """A drop with duplicated flights, delivered to landing/ by someone else: the raw gate holds
    the day at once (no retry), the tasks after it do not run, the log and the "Data quality" link
    say why; the days before are untouched, row for row. The fixed drop, after a Clear, goes through."""
    import json

    import pandas as pd
    import requests

    from mlcycle.quality.landing import landing_path
    from spark_jobs.flights.replay import land_day

    data_root = Path(stack["MLCYCLE_DATA_ROOT"])
    before = _validated(data_root)
    assert {d for d, _ in before} == {"flights", "weather"} and len(before) >= 2 * DAYS

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
    after = _validated(data_root)
    assert after.keys() == before.keys()  # nothing added for the held day, nothing removed
    for key, frame in before.items():
        pd.testing.assert_frame_equal(after[key], frame, obj=f"{key}")

    link = admin.extra_links("flights_data", run_id, "validate_raw")["Data quality"]
    page = requests.get(link, headers=admin._headers(), timeout=30)
    assert page.status_code == 200
    assert "expect_compound_columns_to_be_unique" in page.text and HELD_DAY in page.text
    assert requests.get(link, timeout=30, allow_redirects=False).status_code == 401  # login first

    drop.write_text(good)  # the upstream delivers the day again, fixed
    assert "validate_raw" in admin.clear("flights_data", run_id, ["validate_raw"])
    assert admin.wait_for_run("flights_data", run_id, timeout=900) == "success"
    verdict = json.loads((data_root / "gates" / "raw_flights" / f"ds={HELD_DAY}.json").read_text())
    assert (verdict["success"], verdict["validated"], verdict["quarantined"]) == (True, len(lines) - 1, 0)
    assert any((data_root / "features" / f"ds={HELD_DAY}").glob("*.parquet"))


def test_rescore_then_a_degraded_champion_starts_its_own_retraining(stack, admin, champion, paused):
    """A past day is rescored with the current champion on request; monitoring, with a rule any
    model fails, triggers one training run on the recent window and records it; a check while that
    run is queued does not trigger another, nor one after it within the cooling-off time.

    Trainings are held (the DAG paused, as an operator would) so the retraining stays queued: the
    run it would make is the training DAG's own, tested in test_backfill_train_approve_..."""
    import pandas as pd
    import requests

    data_root = Path(stack["MLCYCLE_DATA_ROOT"])
    admin.wait_until_idle(["air_time_scoring", "air_time_monitoring"])
    monitored_before = admin.run_ids("air_time_monitoring")
    rescore = admin.trigger("air_time_scoring", conf={"days": [SCORED_DAY], "rescore": True})
    assert admin.wait_for_run("air_time_scoring", rescore, timeout=600) == "success"
    records = data_root / "models" / "air_time"
    predictions = pd.read_parquet(records / "predictions" / f"ds={SCORED_DAY}")
    assert set(predictions["model_version"].astype(str)) == {str(champion)}
    assert set(predictions["airflow_run_id"]) == {rescore}
    # monitoring follows on its own, started by the predictions the rescore published
    _, state = admin.wait_for_new_run("air_time_monitoring", monitored_before, timeout=600)
    assert state == "success"
    monitored = pd.read_parquet(records / "monitoring" / f"ds={SCORED_DAY}")
    assert list(monitored["model_version"].astype(str)) == [str(champion)]

    paused(TRAINING)
    rule = {
        "days": [SCORED_DAY],
        "retrain_tolerance": -100.0,  # any MAE is "over": this test is about what happens next
        "retrain_consecutive_days": 1,
        "rolling_days": 1,
        "cooling_off_days": 30,
        "retrain_window_days": 3,
        "retrain_holdout_days": 1,
    }
    run_id = admin.trigger("air_time_monitoring", conf=rule)
    assert admin.wait_for_run("air_time_monitoring", run_id, timeout=600) == "success"
    states = {t: ti["state"] for t, ti in admin.task_instances("air_time_monitoring", run_id).items()}
    assert (states["check_retraining"], states["retrain"], states["record_retraining"]) == ("success",) * 3
    training_run = f"retrain__{run_id}"
    assert admin.dag_run(TRAINING, training_run)["conf"] == {
        "train_start": "2013-01-01",
        "train_end": SCORED_DAY,
        "holdout_days": 1,
    }
    model_tags = _mlflow(stack).get_registered_model(MODEL).tags
    assert model_tags["retraining.last_triggered_for"] == SCORED_DAY
    assert model_tags["retraining.last_run_id"] == training_run

    # The chart of the live error: drawn by the run, linked from its tasks, attached in MLflow.
    assert states["chart"] == "success"
    link = admin.extra_links("air_time_monitoring", run_id, "check_retraining")["Monitoring chart"]
    page = requests.get(link, headers=admin._headers(), timeout=30)
    assert page.status_code == 200 and "monitoring/air_time/chart.png" in page.text
    image = requests.get(link + "/chart.png", headers=admin._headers(), timeout=30)
    assert image.headers["content-type"] == "image/png"
    assert image.content == (records / "reports" / "monitoring.png").read_bytes()
    assert requests.get(link + "/chart.png", timeout=30).status_code == 401  # login first
    # ... and inside Airflow's own UI: the menu's Model monitoring, a task instance's Data quality tab
    plugins = {p["name"]: p for p in admin.request("GET", "plugins", params={"limit": 100})["plugins"]}
    views = {v["name"]: v for v in plugins["mlcycle_quality"]["external_views"]}
    assert (views["Model monitoring"]["destination"], views["Data quality"]["destination"]) == (
        "nav",
        "task_instance",
    )
    index = requests.get(link.rsplit("/", 1)[0], headers=admin._headers(), timeout=30)
    assert "/mlcycle/monitoring/air_time" in index.text and "/mlcycle/monitoring/late_arrival" in index.text
    client = _mlflow(stack)
    (monitoring_run,) = client.search_runs(
        [client.get_experiment_by_name(f"{MODEL}-monitoring").experiment_id],
        filter_string=f"tags.`monitoring.model_version` = '{champion}'",
    )
    assert "monitoring.png" in [a.path for a in client.list_artifacts(monitoring_run.info.run_id)]

    def check_again(reason: str) -> None:
        again = admin.trigger("air_time_monitoring", conf=rule)
        assert admin.wait_for_run("air_time_monitoring", again, timeout=600) == "success"
        states = {t: ti["state"] for t, ti in admin.task_instances("air_time_monitoring", again).items()}
        assert (states["check_retraining"], states["retrain"]) == ("success", "skipped")
        assert reason in admin.task_log("air_time_monitoring", again, "check_retraining", 1)

    # While the retraining waits, a second check does not start another.
    assert admin.dag_run(TRAINING, training_run)["state"] == "queued"
    check_again("a training run is already queued or running")

    # Once it has ended (here: stopped by the operator), a check within the cooling-off time of
    # the last retraining still starts none.
    admin.request("PATCH", f"dags/{TRAINING}/dagRuns/{training_run}", json={"state": "failed"})
    check_again("cooling off: retraining was triggered for " + SCORED_DAY)
    assert [r["dag_run_id"] for r in admin.dag_runs(TRAINING) if r["dag_run_id"].startswith("retrain__")] == [
        training_run
    ]
