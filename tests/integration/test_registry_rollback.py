"""Rollback and the champion's history on a real MLflow server: each time a version serves is a
stint recorded on the version; bringing an earlier champion back goes through the same promotion
(one champion, the former one retired) and shows as a second stint."""

from __future__ import annotations

import pytest

from mlcycle import registry

pytestmark = pytest.mark.integration

MODEL = "flights_rollback_test"


def versions(uri: str, n: int) -> list[int]:
    """``n`` versions of MODEL, each from its own run (a small artifact stands for the model)."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(MODEL)
    client.create_registered_model(MODEL)
    made = []
    for i in range(n):
        with mlflow.start_run() as run:
            mlflow.log_metric("val_mae", 10.0 + i)
            mlflow.log_text("model", "model/MLmodel")
        mv = client.create_model_version(MODEL, f"runs:/{run.info.run_id}/model", run.info.run_id)
        made.append(int(mv.version))
    return made


def decide(uri: str, version: int, who: str, at: str, run: str) -> None:
    registry.promote(uri, MODEL, version, decided_by=who, comment="", airflow_run_id=run, decided_at=at)


def test_rollback_brings_an_earlier_champion_back_and_history_shows_each_stint(mlflow_server):
    uri = mlflow_server
    v1, v2, v3 = versions(uri, 3)

    with pytest.raises(ValueError, match="never served as champion"):
        registry.rollback_evidence(uri, MODEL, v1)

    decide(uri, v1, "alice", "2013-04-01T08:00:00+00:00", "manual__1")
    decide(uri, v2, "bob", "2013-05-01T08:00:00+00:00", "manual__2")
    decide(uri, v2, "bob", "2013-05-01T08:05:00+00:00", "manual__2")  # a retried task adds nothing
    with pytest.raises(ValueError, match="is the champion already"):
        registry.rollback_evidence(uri, MODEL, v2)
    with pytest.raises(ValueError, match="never served"):
        registry.rollback_evidence(uri, MODEL, v3)

    evidence = registry.rollback_evidence(uri, MODEL, v1, reason="v2 drifts on JetBlue")
    assert evidence["current_champion_version"] == v2
    assert "2013-04-01T08:00:00+00:00 .. 2013-05-01T08:00:00+00:00" in evidence["markdown"]
    assert "v2 drifts on JetBlue" in evidence["markdown"] and "10.000" in evidence["markdown"]

    decide(uri, v1, "carol", "2013-06-01T08:00:00+00:00", "manual__rollback")
    assert registry.champion(uri, MODEL) == v1
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert client.get_model_version(MODEL, str(v2)).tags["status"] == "retired"
    assert client.get_registered_model(MODEL).aliases == {"champion": str(v1)}

    # Full timestamps: the retried promotion of v2 (08:05) neither moved v2's start nor v1's end.
    history = [
        (h["version"], h["promoted_at"], h["retired_at"], h["decided_by"], h["airflow_run_id"])
        for h in registry.champion_history(uri, MODEL)
    ]
    assert history == [
        (v1, "2013-04-01T08:00:00+00:00", "2013-05-01T08:00:00+00:00", "alice", "manual__1"),
        (v2, "2013-05-01T08:00:00+00:00", "2013-06-01T08:00:00+00:00", "bob", "manual__2"),
        (v1, "2013-06-01T08:00:00+00:00", None, "carol", "manual__rollback"),
    ]


def test_an_approval_served_then_replaced_by_the_next_one_is_recorded_as_landed(mlflow_server):
    """Two approvals promoted one after the other (the pool serializes them): when the first run
    records its decision, the champion is already the second version. Its promotion did land."""
    from mlcycle.config import Settings
    from mlcycle.signoff.promotion import record_decision
    from mlcycle.signoff.rollback import record

    uri = mlflow_server
    model = f"{MODEL}_race"
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(model)
    client.create_registered_model(model)
    made = []
    for _ in range(3):
        with mlflow.start_run() as run:
            mlflow.log_text("model", "model/MLmodel")
        made.append(
            int(client.create_model_version(model, f"runs:/{run.info.run_id}/model", run.info.run_id).version)
        )
    v1, v2, v3 = made
    from types import SimpleNamespace

    # the settings of a model registered as ``model``, approved by "a"
    cfg = Settings(home=None, data_root="", tracking_uri=uri, airflow_url="").for_model(
        SimpleNamespace(name="rollback_test", registered_name=model, approvers=("a",), deciding="mae")
    )
    approve = {"chosen_options": ["Approve"], "responded_by_user": {"id": "a"}, "responded_at": "2013-04-01"}

    promote = dict(decided_by="a", comment="", decided_at="2013-04-01T08:00:00+00:00")
    registry.promote(uri, model, v1, airflow_run_id="train__1", **promote)
    registry.promote(uri, model, v2, airflow_run_id="train__2", **promote)  # a training run
    registry.promote(uri, model, v1, airflow_run_id="rollback__1", **promote)  # a rollback, right after
    assert registry.champion(uri, model) == v1
    assert record_decision(cfg, v2, approve, False, "train__2") == f"approved; since replaced by v{v1}"
    assert record(cfg, v1, approve, "rollback__1") == "rolled back"
    with pytest.raises(RuntimeError, match="was not promoted"):
        record_decision(cfg, v3, approve, False, "train__3")  # approved, but never promoted
