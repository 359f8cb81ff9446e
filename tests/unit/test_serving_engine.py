"""The serving engine answers what Spark answers: each kind of tree model the platform's pipelines
may end in, fitted by Spark on rows with unseen categories, missing numbers and missing
categories, saved as Spark saves it, read back without a JVM, and compared with
``PipelineModel.transform`` row by row."""

from __future__ import annotations

import random

import numpy as np
import pytest

from mlcycle.serving.engine import Pipeline, Trees, UnsupportedModel
from spark_jobs.pipelines import tabular_stages

pytestmark = pytest.mark.spark

CATEGORICAL = ("carrier", "origin")
NUMERIC = ("distance", "hour", "temp")


def _rows(n: int, seed: int, carriers=("AA", "B6", "UA", "DL")) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        carrier = rng.choice(carriers)
        distance = rng.choice([187.0, 762.0, 1089.0, 2475.0])
        temp = None if rng.random() < 0.15 else rng.uniform(-5, 30)
        hour = rng.randint(5, 23)
        minutes = distance / 8 + 15 + (12 if carrier == "B6" else 0) + (hour > 17) * 6 + rng.uniform(-3, 3)
        rows.append(
            {
                "carrier": carrier,
                "origin": None if rng.random() < 0.05 else rng.choice(["EWR", "JFK", "LGA"]),
                "distance": distance,
                "hour": hour,
                "temp": temp,
                "minutes": minutes,
                "late": float(minutes > distance / 8 + 22),
            }
        )
    return rows


def _estimator(kind: str):
    from pyspark.ml import classification, regression

    common = {"featuresCol": "features", "maxBins": 16, "seed": 3}
    return {
        "tree_regression": lambda: regression.DecisionTreeRegressor(labelCol="minutes", maxDepth=5, **common),
        "forest_regression": lambda: regression.RandomForestRegressor(
            labelCol="minutes", numTrees=7, maxDepth=5, **common
        ),
        "boosted_regression": lambda: regression.GBTRegressor(
            labelCol="minutes", maxIter=6, maxDepth=3, **common
        ),
        "tree_classification": lambda: classification.DecisionTreeClassifier(
            labelCol="late", maxDepth=5, **common
        ),
        "forest_classification": lambda: classification.RandomForestClassifier(
            labelCol="late", numTrees=7, maxDepth=5, **common
        ),
        "boosted_classification": lambda: classification.GBTClassifier(
            labelCol="late", maxIter=6, maxDepth=3, **common
        ),
    }[kind]()


@pytest.mark.parametrize(
    "kind",
    [
        "tree_regression",
        "forest_regression",
        "boosted_regression",
        "tree_classification",
        "forest_classification",
        "boosted_classification",
    ],
)
def test_the_engine_predicts_what_spark_predicts(spark, tmp_path, kind):
    from pyspark.ml import Pipeline as SparkPipeline
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    train = spark.createDataFrame(_rows(600, seed=1))
    fitted = SparkPipeline(stages=[*tabular_stages(CATEGORICAL, NUMERIC), _estimator(kind)]).fit(train)
    fitted.write().save(str(tmp_path / "model"))

    # scored rows include a carrier the fit never saw and missing values of every kind
    scored_rows = _rows(300, seed=2, carriers=("AA", "B6", "UA", "DL", "ZZ"))
    scored = fitted.transform(spark.createDataFrame(scored_rows))
    if "classification" in kind:
        scored = scored.withColumn("prediction", vector_to_array(F.col("probability"))[1])
    expected = np.array([r.prediction for r in scored.select("prediction").collect()])

    engine = Pipeline.load(tmp_path / "model")
    assert engine.columns == [*CATEGORICAL, *NUMERIC]
    got = engine.predict(scored_rows)
    assert len(got) == len(expected) == 300
    assert np.max(np.abs(got - expected)) < 1e-9
    assert len(set(np.round(expected, 6))) > 3  # not a constant model: the test could fail
    # a frame as pandas reads the features table (nulls as NaN or None) gives the same answers
    import pandas as pd

    assert np.max(np.abs(engine.predict(pd.DataFrame(scored_rows)) - expected)) < 1e-9
    # one row at a time too, and a handful at once: the rows then walk the trees one by one
    one_by_one = np.array([engine.predict([row])[0] for row in scored_rows])
    assert np.max(np.abs(one_by_one - expected)) < 1e-9
    few = Trees.FEW_ROWS
    assert np.max(np.abs(engine.predict(scored_rows[:few]) - expected[:few])) < 1e-9


def test_a_stage_the_engine_does_not_evaluate_is_refused_when_loaded(spark, tmp_path):
    from pyspark.ml import Pipeline as SparkPipeline
    from pyspark.ml.regression import LinearRegression

    train = spark.createDataFrame(_rows(100, seed=1))
    stages = [*tabular_stages(CATEGORICAL, NUMERIC), LinearRegression(labelCol="minutes")]
    SparkPipeline(stages=stages).fit(train).write().save(str(tmp_path / "linear"))
    with pytest.raises(UnsupportedModel, match="LinearRegressionModel"):
        Pipeline.load(tmp_path / "linear")
