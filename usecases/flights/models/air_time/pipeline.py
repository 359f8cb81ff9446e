"""The air time estimator: the flights' features prepared inside the pipeline
(``spark_jobs.pipelines``), then a random forest regressor."""

from __future__ import annotations

from spark_jobs.pipelines import model_stages

# Above the number of distinct destinations (about 105 in 2013): trees treat the indexed
# categorical columns as categorical, which needs at least one bin per category.
MAX_BINS = 160
SEED = 2013
GRIDS = ("full", "smallest")


def make_pipeline(model):
    from pyspark.ml import Pipeline
    from pyspark.ml.regression import RandomForestRegressor

    regressor = RandomForestRegressor(
        featuresCol="features",
        labelCol=model.label,
        predictionCol="prediction",
        numTrees=20,
        maxBins=MAX_BINS,
        seed=SEED,
    )
    return Pipeline(stages=[*model_stages(model), regressor])


def param_grid(pipeline_stages, size: str = "full"):
    """Full: a shallow and a deeper forest. Smallest: one forest of 5 trees of depth 4."""
    from pyspark.ml.regression import RandomForestRegressor
    from pyspark.ml.tuning import ParamGridBuilder

    if size not in GRIDS:
        raise ValueError(f"unknown grid {size!r}: one of {', '.join(GRIDS)}")
    regressor = next(s for s in pipeline_stages if isinstance(s, RandomForestRegressor))
    grid = ParamGridBuilder().addGrid(regressor.minInstancesPerNode, [5])
    if size == "smallest":
        return grid.addGrid(regressor.numTrees, [5]).addGrid(regressor.maxDepth, [4]).build()
    return grid.addGrid(regressor.maxDepth, [6, 10]).build()
