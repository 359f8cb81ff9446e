"""The command line takes the model and lists every model: ``mlcycle models`` and ``mlcycle history``
read each model of the catalog from the registry (here a SQLite MLflow store), and ``approve``,
``reject`` and ``rollback`` refuse a model the catalog does not have."""

from __future__ import annotations

import pytest

from mlcycle import registry
from mlcycle.devstack import cli


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri, "MLCYCLE_AIRFLOW_URL": "http://127.0.0.1:9"}
    monkeypatch.setattr(cli.stack, "stack_env", lambda: env)
    return uri


def _champion(uri: str, name: str, who: str) -> int:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    client.create_registered_model(name)
    version = int(client.create_model_version(name, "file:///nowhere/model").version)
    registry.promote(
        uri,
        name,
        version,
        decided_by=who,
        comment="",
        airflow_run_id="r",
        decided_at="2013-04-01T06:00:00+00:00",
    )
    return version


def test_history_and_models_list_every_model_each_with_its_own_champion(tracking, capsys):
    _champion(tracking, "flights_late_arrival", "delays_approver")

    assert cli.main(["history"]) == 0
    out = capsys.readouterr().out
    air, late = out.split("late_arrival (flights_late_arrival, classification)")
    assert air.startswith("air_time (flights_air_time, regression)") and "(no version has served" in air
    assert "2013-04-01T06:00:00+00:00" in late and "(champion)" in late and "delays_approver" in late

    assert cli.main(["history", "--model", "air_time"]) == 0
    assert "late_arrival" not in capsys.readouterr().out

    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "air_time: flights_air_time, regression of air_time, decided by mae" in out
    assert "late_arrival: flights_late_arrival, classification of late_arrival, decided by auc" in out
    assert "approvers  delays_approver" in out and "champion   1" in out and "champion   (none)" in out
    assert "late_arrival_training, late_arrival_scoring, late_arrival_monitoring" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["history", "--model", "nope"],
        ["rollback", "--model", "nope", "--to", "1"],
        ["approve", "--model", "nope"],
    ],
)
def test_a_model_the_catalog_does_not_have_is_refused_by_name(tracking, argv):
    with pytest.raises(SystemExit, match="no model named 'nope': one of air_time, late_arrival"):
        cli.main(argv)
