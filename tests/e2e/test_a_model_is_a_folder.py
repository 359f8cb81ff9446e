"""A model is a folder: ``tests/e2e/models/arrival_delay`` (a regression of the arrival delay, its
own features, metric, slice, approver and predictions gate) was copied into the flights use case
of the stack's catalog before the stack started (``conftest.py``), and nothing else. It gets its
own DAGs, is trained, signed off by its own approver only, promoted, scores the day after its
window into its own records beside air_time's, and is monitored against the actual delays."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from stack_state import AT_ONCE, FIRST_DAY, xcom

from mlcycle.orchestration.client import AirflowError

pytestmark = pytest.mark.e2e

MODEL, REGISTERED = "arrival_delay", "flights_arrival_delay"
TRAINING, SCORING, MONITORING = (f"{MODEL}_{stage}" for stage in ("training", "scoring", "monitoring"))
DAY = "2013-01-03"  # the day after the training window: scored by the new champion


def _files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.parquet"))}


@pytest.fixture
def third_model_dags(admin):
    """Its DAGs unpaused for the test, paused again after it: the later tests' days are not its."""
    dags = (TRAINING, SCORING, MONITORING)
    for dag_id in dags:
        admin.unpause(dag_id)
    yield dags
    for dag_id in dags:
        admin.pause(dag_id)


def test_a_third_model_from_its_folder_is_trained_signed_off_scored_and_monitored(
    stack, admin, approver, data_days, third_model_dags
):
    import pandas as pd

    from mlcycle.devstack import stack as launcher
    from mlcycle.devstack.cli import all_dags
    from mlcycle.orchestration.client import AirflowClient
    from mlcycle.registry import champion

    assert {TRAINING, SCORING, MONITORING, f"{MODEL}_rollback", f"{MODEL}_archival"} <= set(all_dags())
    data_root = Path(stack["MLCYCLE_DATA_ROOT"])
    air_time = data_root / "models" / "air_time" / "predictions" / f"ds={DAY}"
    before = _files(air_time)

    run_id = admin.trigger(
        TRAINING, conf={"train_start": FIRST_DAY, "train_end": "2013-01-02", "holdout_days": 1}
    )
    owner = AirflowClient(
        stack["MLCYCLE_AIRFLOW_URL"], "delay_analyst", launcher.passwords()["delay_analyst"], poll=0.5
    )
    owner.wait_for_approval(TRAINING, run_id, "sign_off", timeout=900, poll=AT_ONCE)
    evidence = xcom(admin, TRAINING, run_id, "evaluate")
    assert (evidence["metric"], evidence["slice"], evidence["model_name"]) == ("rmse", "origin", REGISTERED)
    assert evidence["challenger_val_rmse"] > 0 and "validation RMSE (decides)" in evidence["markdown"]
    # air_time's approver is not this model's: Airflow refuses the answer
    hitl = f"dags/{TRAINING}/dagRuns/{run_id}/taskInstances/sign_off/-1/hitlDetails"
    with pytest.raises(AirflowError, match="403"):
        approver.request("PATCH", hitl, json={"chosen_options": ["Approve"], "params_input": {}})
    owner.respond(TRAINING, run_id, "sign_off", "Approve", comment="the third model", poll=AT_ONCE)
    assert admin.wait_for_run(TRAINING, run_id, timeout=600) == "success"
    version = int(xcom(admin, TRAINING, run_id, "register")["version"])
    assert champion(stack["MLFLOW_TRACKING_URI"], REGISTERED) == version

    # The promotion starts its scoring of the day after the window, then its monitoring.
    admin.wait_until_idle([SCORING, MONITORING], timeout=600)
    records = data_root / "models" / MODEL
    predictions = pd.read_parquet(records / "predictions" / f"ds={DAY}")
    features = pd.read_parquet(data_root / "features" / f"ds={DAY}")
    assert len(predictions) == len(features) > 500
    assert set(predictions["model_name"]) == {REGISTERED}
    assert set(predictions["model_version"].astype(str)) == {str(version)}
    assert "origin" in predictions.columns and "carrier" not in predictions.columns  # its own slices
    # its scoring wrote its own predictions only: air_time's of the same day are as they were
    assert _files(air_time) == before

    monitoring = pd.read_parquet(records / "monitoring" / f"ds={DAY}")
    assert list(monitoring["model_version"].astype(str)) == [str(version)]
    joined = predictions.merge(features[["flight_id", "arr_delay"]], on="flight_id").dropna(
        subset=["arr_delay"]
    )
    assert int(monitoring["n_actuals"].iloc[0]) == len(joined)
    assert float(monitoring["rmse"].iloc[0]) == pytest.approx(
        float(((joined["prediction"] - joined["arr_delay"]) ** 2).mean() ** 0.5), rel=1e-6
    )
    slices = pd.read_parquet(records / "monitoring_slices" / f"ds={DAY}")
    assert set(slices["slice"]) == {"origin"} and set(slices["value"]) == set(features["origin"])
    assert (records / "reports" / "monitoring.png").is_file()
