"""The metrics a model is judged by, against their definitions computed by hand."""

from __future__ import annotations

import math
import random

import pytest

from spark_jobs import metrics


def _auc(pairs) -> float:
    """Every positive against every negative: 1 when it is ranked above, 1/2 when tied."""
    pos = [p for p, y in pairs if y == 1]
    neg = [p for p, y in pairs if y == 0]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return wins / (len(pos) * len(neg))


@pytest.fixture(scope="module")
def rows():
    rng = random.Random(7)
    out = []
    for i in range(400):
        group = "AA" if i % 2 else "UA"
        p = round(rng.random(), 2)  # rounded: many ties
        y = 1.0 if rng.random() < (p if group == "AA" else 0.5) else 0.0
        out.append((group, p, y))
    return out


def test_classification_metrics_are_their_definitions_overall_and_per_group(spark, rows):
    scored = spark.createDataFrame(rows, "carrier string, probability double, late double")
    overall = metrics.classification(scored, "late")[()]
    per_carrier = metrics.classification(scored, "late", by=["carrier"])

    for key, subset in (
        (None, rows),
        ("AA", [r for r in rows if r[0] == "AA"]),
        ("UA", [r for r in rows if r[0] == "UA"]),
    ):
        got = overall if key is None else per_carrier[(key,)]
        pairs = [(p, y) for _, p, y in subset]
        assert got["rows"] == len(subset) and got["positives"] == sum(y for _, y in pairs)
        assert got["auc"] == pytest.approx(_auc(pairs), abs=1e-12)
        clipped = [(min(max(p, 1e-15), 1 - 1e-15), y) for p, y in pairs]
        loss = -sum(y * math.log(p) + (1 - y) * math.log(1 - p) for p, y in clipped) / len(pairs)
        assert got["log_loss"] == pytest.approx(loss, rel=1e-9)
        assert 0 <= got["calibration"] <= 1
    # AA's outcomes follow its probabilities; UA's are a coin: only AA ranks well.
    assert per_carrier[("AA",)]["auc"] > 0.7 > per_carrier[("UA",)]["auc"]


def test_calibration_is_the_weighted_gap_of_the_deciles(spark, rows):
    scored = spark.createDataFrame(rows, "carrier string, probability double, late double")
    table = metrics.calibration_table(scored, "late")
    assert [d["decile"] for d in table] == list(range(1, 11)) and sum(d["rows"] for d in table) == len(rows)
    assert [d["predicted"] for d in table] == sorted(d["predicted"] for d in table)
    expected = sum(d["rows"] * abs(d["predicted"] - d["observed"]) for d in table) / len(rows)
    assert metrics.classification(scored, "late")[()]["calibration"] == pytest.approx(expected, rel=1e-9)


def test_a_probability_vector_is_read_as_the_chance_of_class_one(spark):
    from pyspark.ml.linalg import Vectors

    scored = spark.createDataFrame(
        [
            (Vectors.dense([0.9, 0.1]), 0.0),
            (Vectors.dense([0.2, 0.8]), 1.0),
            (Vectors.dense([0.6, 0.4]), 1.0),
        ],
        ["probability", "late"],
    )
    assert metrics.classification(scored, "late")[()]["auc"] == 1.0


def test_a_group_of_one_class_has_no_auc(spark):
    scored = spark.createDataFrame(
        [("AA", 0.3, 1.0), ("AA", 0.6, 1.0), ("UA", 0.1, 0.0), ("UA", 0.9, 1.0)],
        "c string, probability double, y double",
    )
    got = metrics.classification(scored, "y", by=["c"])
    assert got[("AA",)]["auc"] is None and got[("UA",)]["auc"] == 1.0


def test_regression_metrics_are_their_definitions(spark):
    data = [(1.0, 2.0), (3.0, 1.0), (5.0, 5.5), (7.0, None)]
    scored = spark.createDataFrame(data, "air_time double, prediction double").where("prediction is not null")
    got = metrics.metrics("regression", scored, "air_time")[()]
    errors = [p - y for y, p in data[:3]]
    mean = sum(y for y, _ in data[:3]) / 3
    assert got["mae"] == pytest.approx(sum(abs(e) for e in errors) / 3)
    assert got["rmse"] == pytest.approx(math.sqrt(sum(e * e for e in errors) / 3))
    assert got["r2"] == pytest.approx(
        1 - sum(e * e for e in errors) / sum((y - mean) ** 2 for y, _ in data[:3])
    )
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        metrics.metrics("ranking", scored, "air_time")
