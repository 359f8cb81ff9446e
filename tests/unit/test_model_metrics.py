"""The daily monitoring metrics of spark_jobs/monitoring.py on frames small enough to check by hand,
for the regression (air time) and the classifier (late arrival) of the flights use case."""

from __future__ import annotations

import math
from datetime import date

import pytest

from mlcycle.specs import catalog
from spark_jobs.monitoring import day_metrics, monitoring_columns

pytestmark = pytest.mark.spark

DAY = date(2013, 7, 1)
MODELS = catalog().models
AIR_TIME, LATE = MODELS["air_time"], MODELS["late_arrival"]


def daily_metrics(predictions, features, model=AIR_TIME):
    from types import SimpleNamespace

    return SimpleNamespace(
        collect=lambda: [SimpleNamespace(ds=DAY, **r) for r in day_metrics(predictions, features, model)]
    )


def test_daily_metrics_per_model_version(spark):
    # Five flights that day; f5 did not fly (no actual air time).
    features = spark.createDataFrame(
        [("f1", DAY, 100.0), ("f2", DAY, 200.0), ("f3", DAY, 50.0), ("f4", DAY, 80.0), ("f5", DAY, None)],
        "flight_id string, ds date, air_time double",
    )
    predictions = spark.createDataFrame(
        [
            # v1 scored four flights: errors +10, -20, +4, and f5 without an actual.
            ("f1", DAY, 110.0, "m", "1"),
            ("f2", DAY, 180.0, "m", "1"),
            ("f3", DAY, 54.0, "m", "1"),
            ("f5", DAY, 70.0, "m", "1"),
            # v2 scored one flight: error +2.
            ("f4", DAY, 82.0, "m", "2"),
        ],
        "flight_id string, ds date, prediction double, model_name string, model_version string",
    )
    rows = {r.model_version: r for r in daily_metrics(predictions, features).collect()}
    assert set(rows) == {"1", "2"}
    assert monitoring_columns(AIR_TIME) == (
        "ds",
        "model_name",
        "model_version",
        "n_predictions",
        "n_actuals",
        "mae",
        "rmse",
        "bias",
        "coverage",
    )

    v1 = rows["1"]
    assert (v1.ds, v1.model_name, v1.n_predictions, v1.n_actuals) == (DAY, "m", 4, 3)
    assert v1.mae == pytest.approx((10 + 20 + 4) / 3)
    assert v1.bias == pytest.approx((10 - 20 + 4) / 3)
    assert v1.rmse == pytest.approx(((100 + 400 + 16) / 3) ** 0.5)
    assert v1.coverage == pytest.approx(4 / 5)

    v2 = rows["2"]
    assert (v2.n_predictions, v2.n_actuals) == (1, 1)
    assert (v2.mae, v2.bias, v2.rmse) == (2.0, 2.0, 2.0)
    assert v2.coverage == pytest.approx(1 / 5)


def test_daily_metrics_without_actuals_yet(spark):
    features = spark.createDataFrame(
        [("f1", DAY, None), ("f2", DAY, None)], "flight_id string, ds date, air_time double"
    )
    predictions = spark.createDataFrame(
        [("f1", DAY, 90.0, "m", "3"), ("f2", DAY, 95.0, "m", "3"), ("x9", DAY, 10.0, "m", "3")],
        "flight_id string, ds date, prediction double, model_name string, model_version string",
    )
    (row,) = daily_metrics(predictions, features).collect()
    assert (row.n_predictions, row.n_actuals) == (3, 0)
    assert row.mae is None and row.rmse is None and row.bias is None
    # A prediction for a flight that is not in the day's features does not count as coverage.
    assert row.coverage == 1.0


def test_the_classifier_is_judged_by_auc_log_loss_and_calibration_against_its_made_label(spark):
    # The label is made from arr_delay (> 15 minutes late); f5 has not arrived yet.
    features = spark.createDataFrame(
        [("f1", DAY, 40.0), ("f2", DAY, -5.0), ("f3", DAY, 20.0), ("f4", DAY, 0.0), ("f5", DAY, None)],
        "flight_id string, ds date, arr_delay double",
    )
    predictions = spark.createDataFrame(
        [
            ("f1", DAY, 0.9, "late", "1"),
            ("f2", DAY, 0.2, "late", "1"),
            ("f3", DAY, 0.3, "late", "1"),  # late, ranked below f2? no: above f2, below nobody late
            ("f4", DAY, 0.4, "late", "1"),  # on time, ranked above the late f3
            ("f5", DAY, 0.5, "late", "1"),
        ],
        "flight_id string, ds date, prediction double, model_name string, model_version string",
    )
    (row,) = day_metrics(predictions, features, LATE)
    assert (row["n_predictions"], row["n_actuals"]) == (5, 4)
    # pairs (late, on time): (f1,f2) (f1,f4) (f3,f2) won, (f3,f4) lost: 3 of 4
    assert row["auc"] == pytest.approx(0.75)
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.3) + math.log(0.6)) / 4
    assert row["log_loss"] == pytest.approx(expected)
    assert row["bias"] == pytest.approx((0.9 + 0.2 + 0.3 + 0.4) / 4 - 0.5)
    assert row["calibration"] is not None and 0 <= row["calibration"] <= 1
    assert row["coverage"] == 1.0
    assert monitoring_columns(LATE)[5:8] == ("auc", "log_loss", "calibration")


def test_many_days_in_one_pass_give_each_day_its_own_metrics(spark):
    """``all_metrics`` grouped by day (the range's monitoring) against each day alone (a day's
    run): per version and per slice value, the same counts, errors, bias and coverage; a flight
    with no actual yet and a day one version did not score included."""
    import random
    from datetime import timedelta

    from spark_jobs.monitoring import all_metrics

    model = AIR_TIME
    slices = list(model.monitoring["slices"])
    rng = random.Random(3)
    features, predictions = [], []
    for d in range(3):
        day = DAY + timedelta(days=d)
        for i in range(60):
            key = f"{day}-{i}"
            actual = None if i % 13 == 0 else 100.0 + rng.random() * 200
            features.append(
                (key, day, actual, *(rng.choice(["AA", "B6", "UA", "JFK", "LGA"]) for _ in slices))
            )
            if i % 7 == 3:
                continue  # a flight no version scored
            version = "2" if d > 0 and i % 2 else "1"
            predictions.append((key, day, (actual or 150.0) + rng.gauss(0, 10), "m", version))
    schema = ", ".join(["flight_id string", "ds date", "air_time double", *(f"{c} string" for c in slices)])
    features = spark.createDataFrame(features, schema)
    predictions = spark.createDataFrame(
        predictions, "flight_id string, ds date, prediction double, model_name string, model_version string"
    )
    scored = predictions.join(features.select("flight_id", *slices), "flight_id")
    overall, per_slice = all_metrics(scored, features, model, slices, by=["ds"])

    def keyed(rows, day):
        return {(r.get("ds", day), r["model_version"], r.get("slice"), r.get("value")): r for r in rows}

    together = {**keyed(overall, None), **keyed(per_slice, None)}
    alone = {}
    for d in range(3):
        day = DAY + timedelta(days=d)
        o, s = all_metrics(scored.where(scored.ds == day), features.where(features.ds == day), model, slices)
        alone.update(keyed(o, day))
        alone.update(keyed(s, day))
    assert set(together) == set(alone) and len(alone) > 20
    assert {k[1] for k in alone if k[0] == DAY} == {"1"}  # the first day: version 1 only
    for key, row in alone.items():
        got = {k: v for k, v in together[key].items() if k != "ds"}
        assert got == pytest.approx(row), key
