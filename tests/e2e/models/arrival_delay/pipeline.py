"""A small regression tree over the flights' features (prepared by ``spark_jobs.pipelines``)."""

from __future__ import annotations

from spark_jobs.pipelines import model_stages

GRIDS = ("full", "smallest")


def make_pipeline(model):
    from pyspark.ml import Pipeline
    from pyspark.ml.regression import DecisionTreeRegressor

    tree = DecisionTreeRegressor(featuresCol="features", labelCol=model.label, maxBins=64, seed=7)
    return Pipeline(stages=[*model_stages(model), tree])


def param_grid(pipeline_stages, size: str = "full"):
    from pyspark.ml.regression import DecisionTreeRegressor
    from pyspark.ml.tuning import ParamGridBuilder

    tree = next(s for s in pipeline_stages if isinstance(s, DecisionTreeRegressor))
    depths = [3] if size == "smallest" else [3, 6]
    return ParamGridBuilder().addGrid(tree.maxDepth, depths).build()
