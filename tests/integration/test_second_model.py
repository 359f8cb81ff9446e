"""The second model of the flights use case, late_arrival, on real Spark and a real MLflow server:
a classifier of "arrives more than 15 minutes late" made from ``arr_delay``, trained, registered,
compared with its own champion in its own metric (AUC), scored into its own records beside
air_time's, and monitored against the actual arrivals (AUC, log loss, calibration)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from test_model_path import (  # noqa: F401
    AT,
    DAYS,
    ROWS_PER_DAY,
    assert_served_as_scored,
    data_root,
    feature_rows,
    run_job,
)

from mlcycle import registry
from mlcycle.evaluation import Rules
from mlcycle.evaluation import evidence as evidence_of

pytestmark = pytest.mark.integration

MODEL = "flights_late_arrival_test"


def _auc(pairs: list[tuple[float, float]]) -> float:
    """Mann-Whitney: the share of (late, on time) pairs the late flight ranks above, ties half."""
    late = [p for p, y in pairs if y == 1.0]
    on_time = [p for p, y in pairs if y == 0.0]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in late for b in on_time)
    return wins / (len(late) * len(on_time))


def test_the_late_arrival_classifier_lives_beside_air_time(
    spark,
    data_root,  # noqa: F811  (the fixture of test_model_path)
    mlflow_server,
    tmp_path,
    monkeypatch,
    capsys,
    usecases_copy,  # noqa: F811
):
    from mlflow import MlflowClient

    from mlcycle.specs import find_model

    uri = mlflow_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLCYCLE_USECASES", str(usecases_copy(tmp_path / "catalog", {"late_arrival": MODEL})))
    model = find_model("late_arrival")
    client = MlflowClient(tracking_uri=uri)
    window = ["--start", DAYS[0], "--end", DAYS[-1], "--holdout-days", "1", "--data-root", data_root]

    def train(run: str) -> str:
        out = run_job(
            capsys,
            "training.py",
            *window,
            "--grid",
            "smallest",
            "--model",
            "late_arrival",
            "--airflow-run-id",
            run,
        )
        return out.strip().splitlines()[-1].removeprefix("mlflow_run_id=")

    # 1. Trained on its own label and judged by its own metrics.
    run_1 = train("manual__late_1")
    data = client.get_run(run_1).data
    assert data.params["task"] == "classification" and data.params["label"] == "late_arrival"
    assert data.params["tuning_metric"] == "auc"
    assert 0.0 <= data.metrics["val_auc"] <= 1.0 and data.metrics["val_log_loss"] > 0
    assert 0.0 <= data.metrics["val_calibration"] <= 1.0
    assert "val_mae" not in data.metrics
    evaluation = json.loads(
        Path(client.download_artifacts(run_1, "evaluation.json", str(tmp_path))).read_text()
    )
    assert (evaluation["metric"], evaluation["higher_is_better"], evaluation["slice"]) == (
        "auc",
        True,
        "carrier",
    )
    labelled = [
        r for r in feature_rows() if r[AT["ds"]].isoformat() == DAYS[-1] and r[AT["arr_delay"]] is not None
    ]
    assert sum(row["rows"] for row in evaluation["per_slice"]) == len(labelled) == data.metrics["val_rows"]

    v1 = registry.register_challenger(uri, MODEL, run_1, "manual__late_1", "late_arrival_training")
    registry.promote(
        uri,
        MODEL,
        v1,
        decided_by="delays_approver",
        comment="",
        airflow_run_id="manual__late_1",
        decided_at="2013-01-05T06:00:00+00:00",
    )

    # 2. A second training is compared with that champion in AUC, by the model's own rules.
    run_2 = train("manual__late_2")
    v2 = registry.register_challenger(uri, MODEL, run_2, "manual__late_2", "late_arrival_training")
    rules = Rules.of(model)
    assert (rules.metric, rules.higher_is_better, rules.min_improvement) == ("auc", True, -0.01)
    ev = evidence_of(uri, MODEL, v2, rules=rules, metrics=model.metrics)
    assert ev["champion_version"] == v1 and ev["metric"] == "auc"
    assert ev["delta"] == pytest.approx(ev["challenger_val_auc"] - ev["champion_val_auc"])
    assert ev["improvement"] == pytest.approx(ev["delta"])  # for AUC, more is better
    assert "validation AUC (decides)" in ev["markdown"] and "validation log loss" in ev["markdown"]
    demanding = evidence_of(uri, MODEL, v2, rules=replace(rules, min_improvement=0.5))
    assert demanding["auto_reject"] and demanding["reasons"][0].startswith("min_improvement: overall AUC")

    # 3. Scored into its own records; air_time's predictions of the day are not touched.
    day = DAYS[-1]
    other = Path(data_root) / "models" / "air_time" / "predictions" / f"ds={day}"
    other.mkdir(parents=True, exist_ok=True)
    (other / "part-0.parquet").write_bytes(b"air_time's own file")
    run_job(
        capsys,
        "scoring.py",
        "--ds",
        day,
        "--data-root",
        data_root,
        "--model",
        "late_arrival",
        "--model-uri",
        f"models:/{MODEL}/{v1}",
        "--model-version",
        str(v1),
        "--airflow-run-id",
        "manual__score",
    )
    records = Path(data_root) / "models" / "late_arrival"
    predictions = spark.read.parquet(str(records / "predictions" / f"ds={day}")).collect()
    assert len(predictions) == ROWS_PER_DAY
    assert (
        all(0.0 <= p.prediction <= 1.0 for p in predictions) and len({p.prediction for p in predictions}) > 1
    )
    assert {p.model_name for p in predictions} == {MODEL}
    verdict = json.loads((records / "gates" / "predictions" / f"ds={day}.json").read_text())
    assert verdict["success"] is True and verdict["model"] == "late_arrival"
    assert (other / "part-0.parquet").read_bytes() == b"air_time's own file"
    # the serving engine answers every flight with the chance of a late arrival the batch gave
    assert_served_as_scored(uri, MODEL, v1, data_root, day, records, tmp_path)

    # 4. Monitored against the actual arrivals: AUC and log loss, recomputed here.
    run_job(capsys, "monitoring.py", "--ds", day, "--data-root", data_root, "--model", "late_arrival")
    (row,) = spark.read.parquet(str(records / "monitoring" / f"ds={day}")).collect()
    actual = {r[AT["flight_id"]]: float(r[AT["arr_delay"]] > 15) for r in labelled}
    pairs = [(p.prediction, actual[p.flight_id]) for p in predictions if p.flight_id in actual]
    assert row.n_actuals == len(pairs) and row.n_predictions == ROWS_PER_DAY
    assert row.auc == pytest.approx(_auc(pairs))
    clip = lambda p: min(max(p, 1e-15), 1 - 1e-15)  # noqa: E731
    assert row.log_loss == pytest.approx(
        -sum(y * math.log(clip(p)) + (1 - y) * math.log(1 - clip(p)) for p, y in pairs) / len(pairs)
    )
    assert 0.0 <= row.calibration <= 1.0
    logged = client.get_run(
        client.search_runs([client.get_experiment_by_name(f"{MODEL}-monitoring").experiment_id])[
            0
        ].info.run_id
    ).data.metrics
    assert logged["auc"] == pytest.approx(row.auc) and any(k.startswith("auc.carrier.") for k in logged)
