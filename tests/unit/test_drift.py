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
