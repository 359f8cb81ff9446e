"""Population stability index of a day's features against a training profile."""

from __future__ import annotations

import math
import random

import pytest

from spark_jobs.drift import profile, psi, psi_value

pytestmark = pytest.mark.spark


def _frame(spark, n: int, mean: float, carriers: list[str], seed: int, missing_every: int = 0):
    rng = random.Random(seed)
    rows = [
        (
            None if missing_every and i % missing_every == 0 else rng.gauss(mean, 10.0),
            rng.choice(carriers),
        )
        for i in range(n)
    ]
    return spark.createDataFrame(rows, "temp double, carrier string")


def test_psi_value_by_hand():
    assert psi_value({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}) == 0.0
    expected = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert psi_value({"a": 0.5, "b": 0.5}, {"a": 0.8, "b": 0.2}) == pytest.approx(expected)


def test_the_same_distribution_is_stable_and_a_shifted_one_is_not(spark):
    train = _frame(spark, 4000, 40.0, ["AA", "B6", "UA"], seed=1)
    reference = profile(train, ["temp"], ["carrier"])
    assert len(reference["numeric"]["temp"]["edges"]) == 9
    assert sum(reference["numeric"]["temp"]["shares"].values()) == pytest.approx(1.0)
    same = psi(reference, _frame(spark, 2000, 40.0, ["AA", "B6", "UA"], seed=2))
    assert same["temp"] < 0.05 and same["carrier"] < 0.05
    # summer: 25 degrees warmer; and a carrier the training never saw takes all the flights
    summer = psi(reference, _frame(spark, 2000, 65.0, ["WN"], seed=3))
    assert summer["temp"] > 1.0 and summer["carrier"] > 1.0


def test_missing_values_have_a_bin_of_their_own(spark):
    reference = profile(_frame(spark, 2000, 40.0, ["AA"], seed=4), ["temp"], ["carrier"])
    assert "-1" not in reference["numeric"]["temp"]["shares"]
    day = psi(reference, _frame(spark, 1000, 40.0, ["AA"], seed=5, missing_every=2))
    assert day["temp"] > 1.0  # half the readings missing is a large shift


def test_many_days_in_one_pass_give_each_day_its_own_psi(spark):
    """``psi_by_day`` over the rows of three days: each day's PSI as ``psi`` of that day alone
    (a usual day, a warm one with a carrier never seen, a day with half its readings missing)."""
    from datetime import date

    from pyspark.sql import functions as F

    from spark_jobs.drift import psi_by_day

    reference = profile(_frame(spark, 3000, 40.0, ["AA", "B6", "UA"], seed=6), ["temp"], ["carrier"])
    days = {
        date(2013, 7, 1): _frame(spark, 800, 41.0, ["AA", "B6", "UA"], seed=7),
        date(2013, 7, 2): _frame(spark, 500, 60.0, ["AA", "WN"], seed=8),
        date(2013, 7, 3): _frame(spark, 300, 40.0, ["UA"], seed=9, missing_every=2),
    }
    together = None
    for day, frame in days.items():
        dated = frame.withColumn("ds", F.lit(day))
        together = dated if together is None else together.unionByName(dated)
    by_day = psi_by_day(reference, together)
    assert set(by_day) == {day.isoformat() for day in days}
    for day, frame in days.items():
        alone = psi(reference, frame)
        assert by_day[day.isoformat()] == pytest.approx(alone, rel=1e-12), day
    assert by_day["2013-07-02"]["temp"] > 1.0 and by_day["2013-07-01"]["temp"] < 0.1
