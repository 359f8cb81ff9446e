"""Whether a window can be trained on, and the data-quality record a training run keeps: every day
needs passed raw_flights, raw_weather and features verdicts under ``gates/<gate>/ds=D.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcycle.config import days_between
from mlcycle.quality.gates import GATE_FAILED_EXIT, GateResult, result_path, write_result
from mlcycle.training import (
    TrainingInputError,
    check_training_inputs,
    data_quality_summary,
    training_gates,
)

WINDOW = days_between("2013-01-01", "2013-01-05")


def _verdict(root: Path, gate: str, ds: str, **fields) -> Path:
    path = Path(result_path(str(root), gate, ds))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"ds": ds, "gate": gate, **fields}))
    return path


def _day(root: Path, ds: str, *, flights: int = 100, quarantined: int = 2) -> None:
    """A day the data path got through: three passed verdicts and the features partition."""
    validated = flights - quarantined
    _verdict(
        root,
        "raw_flights",
        ds,
        success=True,
        rows=flights,
        validated=validated,
        quarantined=quarantined,
        reconciled=True,
        failed=[],
        quarantine=f"{root}/quarantine/flights/ds={ds}" if quarantined else None,
    )
    _verdict(root, "raw_weather", ds, success=True, rows=24, validated=24, quarantined=0, reconciled=True)
    _verdict(root, "features", ds, success=True, rows=validated, failed=[], docs="data_docs/index.html")
    (root / "features" / f"ds={ds}").mkdir(parents=True, exist_ok=True)


@pytest.fixture
def root(tmp_path) -> Path:
    for ds in WINDOW:
        _day(tmp_path, ds)
    return tmp_path


def test_a_window_whose_gates_all_passed_is_trained_on(root):
    assert check_training_inputs(str(root), "2013-01-01", "2013-01-05", 1) == WINDOW


def test_summary_lists_every_day_and_gate_with_totals_of_the_flights(root):
    summary = data_quality_summary(str(root), WINDOW)
    json.dumps(summary)  # goes to MLflow as data_quality.json
    assert summary["gates"] == list(training_gates()) == ["raw_flights", "raw_weather", "features"]
    assert summary["window"] == {"start": "2013-01-01", "end": "2013-01-05"}
    assert list(summary["days"]) == WINDOW
    assert summary["days"]["2013-01-02"] == {
        "raw_flights": {"success": True, "rows": 100, "validated": 98, "quarantined": 2},
        "raw_weather": {"success": True, "rows": 24, "validated": 24, "quarantined": 0},
        "features": {"success": True, "rows": 98, "validated": 98, "quarantined": 0},
    }
    totals = summary["totals"]
    assert totals["days"] == 5 and totals["all_passed"] is True
    assert (totals["rows"], totals["validated"], totals["quarantined"]) == (500, 490, 10)
    assert totals["by_gate"]["raw_weather"] == {"rows": 120, "validated": 120, "quarantined": 0}
    assert totals["by_gate"]["features"]["rows"] == 490


def test_a_failed_features_gate_refuses_the_window_and_points_at_its_verdict(root):
    verdict = _verdict(root, "features", "2013-01-03", success=False, rows=98, failed=[{"expectation": "x"}])
    with pytest.raises(TrainingInputError) as refused:
        check_training_inputs(str(root), "2013-01-01", "2013-01-05", 1)
    message = str(refused.value)
    assert message.startswith("cannot train on 2013-01-01..2013-01-05:")
    assert f"features gate failed for 2013-01-03 (see {verdict})" in message
    assert "The data of 2013-01-03 was rejected" in message and "Data Docs" in message
    assert "Backfill flights_data over" not in message  # running it again fixes nothing

    summary = data_quality_summary(str(root), WINDOW)
    assert summary["days"]["2013-01-03"]["features"]["success"] is False
    assert summary["totals"]["all_passed"] is False


def test_a_missing_raw_gate_refuses_the_window_with_the_days_to_backfill(root):
    Path(result_path(str(root), "raw_flights", "2013-01-05")).unlink()
    with pytest.raises(TrainingInputError, match="raw_flights gate missing for 2013-01-05") as refused:
        check_training_inputs(str(root), "2013-01-01", "2013-01-05", 1)
    assert "Backfill flights_data over 2013-01-05 first." in str(refused.value)

    entry = data_quality_summary(str(root), WINDOW)["days"]["2013-01-05"]["raw_flights"]
    assert entry == {"success": False, "missing": True, "rows": None, "validated": None, "quarantined": None}


def test_one_error_names_every_problem_of_the_window(root):
    _verdict(root, "raw_weather", "2013-01-02", success=False, rows=24)
    for ds in ("2013-01-04", "2013-01-05"):
        Path(result_path(str(root), "features", ds)).unlink()
    with pytest.raises(TrainingInputError) as refused:
        check_training_inputs(str(root), "2013-01-01", "2013-01-07", 1)
    lines = str(refused.value).splitlines()
    assert lines[0] == "cannot train on 2013-01-01..2013-01-07:"
    assert "  - raw_flights gate missing for 2013-01-06..2013-01-07" in lines
    assert any(line.startswith("  - raw_weather gate failed for 2013-01-02 (see ") for line in lines)
    assert "  - features gate missing for 2013-01-04..2013-01-07" in lines
    assert lines[-1].startswith(
        "Backfill flights_data over 2013-01-04..2013-01-07 first. The data of 2013-01-02"
    )


def test_a_window_no_longer_than_the_holdout_is_refused(root):
    with pytest.raises(TrainingInputError, match="has 3 days: it needs more than holdout_days=3"):
        check_training_inputs(str(root), "2013-01-01", "2013-01-03", 3)


def test_passed_verdicts_without_the_features_partition_are_refused(root):
    (root / "features" / "ds=2013-01-04").rmdir()
    with pytest.raises(TrainingInputError, match="no features partition for 2013-01-04") as refused:
        check_training_inputs(str(root), "2013-01-01", "2013-01-05", 1)
    assert "Backfill flights_data over 2013-01-04 first." in str(refused.value)


def test_an_unreadable_verdict_counts_as_not_passed(root):
    Path(result_path(str(root), "raw_weather", "2013-01-02")).write_text("{")
    with pytest.raises(TrainingInputError, match="raw_weather verdict of 2013-01-02 unreadable"):
        check_training_inputs(str(root), "2013-01-01", "2013-01-05", 1)
    entry = data_quality_summary(str(root), WINDOW)["days"]["2013-01-02"]["raw_weather"]
    assert entry["success"] is False and "JSONDecodeError" in entry["unreadable"]


def test_verdicts_as_the_gates_write_them_with_only_the_rows_read(tmp_path):
    """``write_result`` of a passed gate that did not split its rows: all of them were kept."""
    for ds in WINDOW[:2]:
        for gate in training_gates():
            result = GateResult(success=True, suite=gate, name=gate, evaluated=3)
            write_result(result, result_path(str(tmp_path), gate, ds), ds=ds, rows=10)
        (tmp_path / "features" / f"ds={ds}").mkdir(parents=True)
    assert check_training_inputs(str(tmp_path), WINDOW[0], WINDOW[1], 1) == WINDOW[:2]
    summary = data_quality_summary(str(tmp_path), WINDOW[:2])
    assert summary["days"][WINDOW[0]]["raw_flights"] == {
        "success": True,
        "rows": 10,
        "validated": 10,
        "quarantined": 0,
    }
    assert (summary["totals"]["rows"], summary["totals"]["validated"], summary["totals"]["quarantined"]) == (
        20,
        20,
        0,
    )


def test_a_long_gap_is_named_by_its_ranges(tmp_path):
    days = days_between("2013-01-01", "2013-03-31")
    for ds in days[:-30]:
        _day(tmp_path, ds)
    with pytest.raises(TrainingInputError) as refused:
        check_training_inputs(str(tmp_path), days[0], days[-1], 7)
    assert "raw_flights gate missing for 2013-03-02..2013-03-31" in str(refused.value)


def test_the_training_run_records_the_partitions_and_their_gates(root):
    from spark_jobs.training import data_quality_record

    params, tags, metrics = data_quality_record(data_quality_summary(str(root), WINDOW))
    assert params == {
        "data.partitions": "2013-01-01..2013-01-05",
        "data.days": 5,
        "data.gates": "raw_flights,raw_weather,features",
    }
    assert tags == {"data.gates_passed": "true"}
    assert metrics == {"data.rows_validated": 490, "data.rows_quarantined": 10}


def test_the_training_job_refuses_a_window_that_did_not_pass(root, capsys, monkeypatch):
    """Submitted outside Airflow, the job stops before Spark and MLflow with the same message."""
    import mlflow

    from spark_jobs import training as train

    def touched(what):
        def fail(*args, **kwargs):
            raise AssertionError(f"{what} used by a refused training job")

        return fail

    # as the job reaches them: a Spark session through its own import, MLflow through the module
    monkeypatch.setattr(train, "get_spark", touched("get_spark"))
    for name in ("MlflowClient", "set_experiment", "start_run"):
        monkeypatch.setattr(mlflow, name, touched(f"mlflow.{name}"))
    _verdict(root, "features", "2013-01-03", success=False, rows=98)
    args = ["--start", "2013-01-01", "--end", "2013-01-05", "--holdout-days", "1", "--data-root", str(root)]
    code = train.main([*args, "--model", "air_time", "--airflow-run-id", "manual"])
    assert code == GATE_FAILED_EXIT == 3
    err = capsys.readouterr().err
    assert err.startswith("train refused: cannot train on 2013-01-01..2013-01-05:")
    assert "features gate failed for 2013-01-03" in err
