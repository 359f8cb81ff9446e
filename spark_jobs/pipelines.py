"""Stages a model's pipeline file builds on: the preparation of a feature table's rows for Spark ML,
inside the pipeline, so the logged model takes rows as they are in ``features/ds=D``.

Categorical columns are indexed (a value unseen in training gets a bucket of its own, the order is
alphabetical so it does not depend on the window's counts); numeric ones are cast to double with a
missing value set to ``missing`` (a value no real reading takes: trees split it apart from the rest
instead of blending it into a median); then both are assembled into ``features``.
"""

from __future__ import annotations

MISSING_NUMERIC = -999.0


def tabular_stages(categorical, numeric, missing: float = MISSING_NUMERIC) -> list:
    from pyspark.ml.feature import SQLTransformer, StringIndexer, VectorAssembler

    categorical, numeric = list(categorical), list(numeric)
    indexer = StringIndexer(
        inputCols=categorical,
        outputCols=[f"{c}_idx" for c in categorical],
        handleInvalid="keep",
        stringOrderType="alphabetDesc",
    )
    fill = SQLTransformer(
        statement="SELECT *, "
        + ", ".join(f"COALESCE(CAST({c} AS DOUBLE), {missing}) AS {c}_num" for c in numeric)
        + " FROM __THIS__"
    )
    assembler = VectorAssembler(
        inputCols=[f"{c}_idx" for c in categorical] + [f"{c}_num" for c in numeric],
        outputCol="features",
        handleInvalid="error",
    )
    return [indexer, fill, assembler]


def model_stages(model) -> list:
    """``tabular_stages`` over the columns a model spec (``mlcycle.specs.Model``) reads, in the
    order of its use case's feature table."""
    return tabular_stages(
        [c for c in model.features if c in model.usecase.categorical],
        [c for c in model.features if c in model.usecase.numeric],
    )
