"""The flights estimator: a Spark ML Pipeline from the feature table to ``prediction``.

The whole preparation (indexing, missing values, assembly) lives inside the pipeline, so the
logged model takes raw feature rows as they are in ``features/ds=D`` and scoring needs nothing but
the model.
"""

from __future__ import annotations

from spark_jobs.flights.project import CATEGORICAL, LABEL, NUMERIC
from spark_jobs.pipelines import tabular_stages

# Above the number of distinct destinations (about 105 in 2013): trees treat the indexed
# categorical columns as categorical, which needs at least one bin per category.
MAX_BINS = 160
SEED = 2013
# The categorical columns the model reads. Not ``dest``: a destination the training window never
# saw falls into one "unseen" bucket, which the trees put with whatever flights shared the bucket
# (a 45-minute hop predicted at 210). The route is carried by ``distance`` and the route's own
# history (``route_air_time_mean``), which hold for a new destination too.
MODEL_CATEGORICAL = tuple(c for c in CATEGORICAL if c != "dest")


def feature_columns() -> list[str]:
    """The columns the model reads, in the order of the feature contract."""
    return [*MODEL_CATEGORICAL, *NUMERIC]


def make_pipeline():
    from pyspark.ml import Pipeline
    from pyspark.ml.regression import RandomForestRegressor

    regressor = RandomForestRegressor(
        featuresCol="features",
        labelCol=LABEL,
        predictionCol="prediction",
        numTrees=20,
        maxBins=MAX_BINS,
        seed=SEED,
    )
    return Pipeline(stages=[*tabular_stages(MODEL_CATEGORICAL, NUMERIC), regressor])


# "full" is what a model is trained with. "smallest" is one small forest: the whole pipeline runs
# (tuning, logging, registration, evaluation) in a fraction of the time, for tests and quick tries.
GRIDS = ("full", "smallest")


def param_grid(pipeline_stages, size: str = "full"):
    """The candidates of the tuning. Full: a shallow and a deeper forest, small on purpose (the
    window is a few days, the cluster may be two cores, and depth is what matters for this
    target). Smallest: one forest of 5 trees of depth 4."""
    from pyspark.ml.regression import RandomForestRegressor
    from pyspark.ml.tuning import ParamGridBuilder

    if size not in GRIDS:
        raise ValueError(f"unknown grid {size!r}: one of {', '.join(GRIDS)}")
    regressor = next(s for s in pipeline_stages if isinstance(s, RandomForestRegressor))
    if size == "smallest":
        return (
            ParamGridBuilder()
            .addGrid(regressor.numTrees, [5])
            .addGrid(regressor.maxDepth, [4])
            .addGrid(regressor.minInstancesPerNode, [5])
            .build()
        )
    return (
        ParamGridBuilder()
        .addGrid(regressor.maxDepth, [6, 10])
        .addGrid(regressor.minInstancesPerNode, [5])
        .build()
    )


def describe_params(param_map) -> dict[str, str]:
    """``{"maxDepth": "6", ...}`` of one grid candidate, for MLflow params."""
    return {p.name: str(v) for p, v in param_map.items()}
