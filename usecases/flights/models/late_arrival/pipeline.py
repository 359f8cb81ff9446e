"""The late-arrival classifier: the flights' features prepared inside the pipeline
(``spark_jobs.pipelines``), then a random forest classifier; ``probability`` holds the chance of
each class (late is class 1), ``prediction`` the likelier one."""

from __future__ import annotations

from spark_jobs.pipelines import model_stages

MAX_BINS = 160  # one bin per category at least (about 105 destinations in 2013)
SEED = 2013
GRIDS = ("full", "smallest")


def make_pipeline(model):
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import RandomForestClassifier

    classifier = RandomForestClassifier(
        featuresCol="features",
        labelCol=model.label,
        predictionCol="prediction",
        probabilityCol="probability",
        numTrees=20,
        maxBins=MAX_BINS,
        seed=SEED,
    )
    return Pipeline(stages=[*model_stages(model), classifier])


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
