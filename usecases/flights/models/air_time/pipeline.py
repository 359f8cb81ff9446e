"""The air time estimator: a Spark ML Pipeline from the feature table to ``prediction``.

The whole preparation (indexing, missing values, assembly) lives inside the pipeline, so the
logged model takes raw feature rows as they are in ``features/ds=D`` and scoring needs nothing but
the model.
"""

from __future__ import annotations

# A value no real reading takes (temperatures, wind, visibility, distances are all far above it):
# trees split it apart from the rest, so a missing reading stays distinguishable.
MISSING_NUMERIC = -999.0
# Above the number of distinct destinations (about 105 in 2013): trees treat the indexed
# categorical columns as categorical, which needs at least one bin per category.
MAX_BINS = 160
SEED = 2013
GRIDS = ("full", "smallest")


def _prepare(model):
    from pyspark.ml.feature import SQLTransformer, StringIndexer, VectorAssembler

    categorical = [c for c in model.features if c in model.usecase.categorical]
    numeric = [c for c in model.features if c in model.usecase.numeric]
    indexer = StringIndexer(
        inputCols=categorical,
        outputCols=[f"{c}_idx" for c in categorical],
        handleInvalid="keep",  # a value unseen in training gets its own bucket
        stringOrderType="alphabetDesc",  # deterministic, independent of the window's counts
    )
    fill = SQLTransformer(
        statement="SELECT *, "
        + ", ".join(f"COALESCE(CAST({c} AS DOUBLE), {MISSING_NUMERIC}) AS {c}_num" for c in numeric)
        + " FROM __THIS__"
    )
    assembler = VectorAssembler(
        inputCols=[f"{c}_idx" for c in categorical] + [f"{c}_num" for c in numeric],
        outputCol="features",
        handleInvalid="error",
    )
    return [indexer, fill, assembler]


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
    return Pipeline(stages=[*_prepare(model), regressor])


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
