"""The daily monitoring metrics of spark_jobs/monitor.py on a frame small enough to check by hand."""

from __future__ import annotations

from datetime import date

import pytest

from spark_jobs.monitor import MONITORING_COLUMNS, daily_metrics

pytestmark = pytest.mark.spark

DAY = date(2013, 7, 1)


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
    assert tuple(daily_metrics(predictions, features).columns) == MONITORING_COLUMNS

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
