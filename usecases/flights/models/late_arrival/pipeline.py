"""The late-arrival classifier: the probability that a flight arrives more than 15 minutes late.

The same preparation as the air time model (the use case's categorical and numeric columns, the
missing readings kept apart), then a random forest classifier; ``probability`` holds the chance of
each class, ``prediction`` the likelier one.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

SEED = 2013
GRIDS = ("full", "smallest")


def _air_time_pipeline():
    path = Path(__file__).parents[1] / "air_time" / "pipeline.py"
    spec = importlib.util.spec_from_file_location("flights_air_time_pipeline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_pipeline(model):
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import RandomForestClassifier

    shared = _air_time_pipeline()
    classifier = RandomForestClassifier(
        featuresCol="features",
        labelCol=model.label,
        predictionCol="prediction",
        probabilityCol="probability",
        numTrees=20,
        maxBins=shared.MAX_BINS,
        seed=SEED,
    )
    return Pipeline(stages=[*shared._prepare(model), classifier])


def param_grid(pipeline_stages, size: str = "full"):
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.tuning import ParamGridBuilder

    if size not in GRIDS:
        raise ValueError(f"unknown grid {size!r}: one of {', '.join(GRIDS)}")
    forest = next(s for s in pipeline_stages if isinstance(s, RandomForestClassifier))
    grid = ParamGridBuilder().addGrid(forest.minInstancesPerNode, [5])
    if size == "smallest":
        return grid.addGrid(forest.numTrees, [5]).addGrid(forest.maxDepth, [4]).build()
    return grid.addGrid(forest.maxDepth, [6, 10]).build()
