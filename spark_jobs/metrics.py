"""The metrics a model is judged by, computed in Spark on scored rows, overall or per group (a
slice such as the carrier, or the day in monitoring).

Regression (``prediction`` against the label): ``mae``, ``rmse``, ``r2``.
Classification (the chance of class 1, a double or the second element of a probability vector,
against a 0/1 label):
- ``auc``: area under the ROC curve, exact, ties counted half (the Mann-Whitney statistic);
- ``log_loss``: mean negative log-likelihood, the probability clipped to [1e-15, 1 - 1e-15];
- ``calibration``: expected calibration error over deciles of the probability (the gap between the
  mean predicted and the observed share in each decile, weighted by its rows);
  ``calibration_table`` gives the deciles themselves.
A group without both classes has no AUC (None). Results are keyed by the tuple of the group's
values (``()`` overall).
"""

from __future__ import annotations

EPS = 1e-15
DECILES = 10
OVERALL = ""  # the ``slice`` (and ``value``) of the rows about all of them, in ``with_groups``


def with_groups(frame, slices):
    """The rows of ``frame`` once as a whole (``slice`` = ``value`` = "") and once per slicing
    column, with ``slice`` naming the column and ``value`` its value (as a string): metrics by
    ``["slice", "value"]`` then give the overall figure and every slice's in one pass."""
    from pyspark.sql import functions as F

    groups = [F.struct(F.lit(OVERALL).alias("slice"), F.lit(OVERALL).alias("value"))] + [
        F.struct(F.lit(c).alias("slice"), F.col(c).cast("string").alias("value")) for c in slices
    ]
    return frame.withColumn("_g", F.explode(F.array(*groups))).select("*", "_g.slice", "_g.value").drop("_g")


def with_probability(scored, probability: str = "probability"):
    """``scored`` with the chance of class 1 as a double column ``_p``."""
    from pyspark.ml.functions import vector_to_array

    column = scored[probability]
    if dict(scored.dtypes)[probability] not in ("double", "float"):
        column = vector_to_array(column)[1]
    return scored.withColumn("_p", column.cast("double"))


def regression(scored, label: str, by=(), prediction: str = "prediction") -> dict[tuple, dict]:
    from pyspark.sql import functions as F

    by = list(by)
    err = F.col(prediction) - F.col(label)
    rows = (
        scored.where(F.col(label).isNotNull())
        .groupBy(*by)
        .agg(
            F.count("*").alias("rows"),
            F.avg(F.abs(err)).alias("mae"),
            F.avg(err * err).alias("mse"),
            F.var_pop(label).alias("var"),
        )
        .collect()
    )
    return {
        tuple(r[c] for c in by): {
            "rows": int(r["rows"]),
            "mae": float(r["mae"]),
            "rmse": float(r["mse"]) ** 0.5,
            "r2": 1 - float(r["mse"]) / float(r["var"]) if r["var"] else None,
        }
        for r in rows
    }


def classification(scored, label: str, by=(), probability: str = "probability") -> dict[tuple, dict]:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by = list(by)
    rows = with_probability(scored, probability).where(F.col(label).isNotNull())
    y = F.col(label).cast("double")
    p = F.least(F.greatest(F.col("_p"), F.lit(EPS)), F.lit(1 - EPS))
    # AUC: for each distinct probability of a group, its positives and negatives; each positive
    # counts the negatives below it, and half of those tied with it.
    at = rows.groupBy(*by, "_p").agg(F.sum(y).alias("pos"), F.sum(1 - y).alias("neg"))
    below = Window.partitionBy(*by).orderBy("_p").rowsBetween(Window.unboundedPreceding, -1)
    at = at.withColumn("neg_below", F.coalesce(F.sum("neg").over(below), F.lit(0.0)))
    auc = at.groupBy(*by).agg(
        F.sum(F.col("pos") * (F.col("neg_below") + 0.5 * F.col("neg"))).alias("wins"),
        F.sum("pos").alias("pos"),
        F.sum("neg").alias("neg"),
    )
    # Calibration: deciles of the probability within the group.
    decile = F.ntile(DECILES).over(Window.partitionBy(*by).orderBy("_p"))
    deciles = (
        rows.withColumn("decile", decile)
        .groupBy(*by, "decile")
        .agg(F.count("*").alias("n"), F.avg("_p").alias("predicted"), F.avg(y).alias("observed"))
    )
    gap = deciles.groupBy(*by).agg(
        (F.sum(F.col("n") * F.abs(F.col("predicted") - F.col("observed"))) / F.sum("n")).alias("calibration")
    )
    loss = rows.groupBy(*by).agg(
        F.count("*").alias("rows"), F.avg(-(y * F.log(p) + (1 - y) * F.log(1 - p))).alias("log_loss")
    )
    joined = loss.join(auc, by, "left").join(gap, by, "left") if by else loss.crossJoin(auc).crossJoin(gap)
    out = {}
    for r in joined.collect():
        both = r["pos"] and r["neg"]
        out[tuple(r[c] for c in by)] = {
            "rows": int(r["rows"]),
            "positives": int(r["pos"]),
            "auc": float(r["wins"]) / (float(r["pos"]) * float(r["neg"])) if both else None,
            "log_loss": float(r["log_loss"]),
            "calibration": float(r["calibration"]),
        }
    return out


def calibration_table(scored, label: str, probability: str = "probability") -> list[dict]:
    """The deciles of the probability, lowest first: rows, mean predicted, observed share."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    rows = with_probability(scored, probability).where(F.col(label).isNotNull())
    table = (
        rows.withColumn("decile", F.ntile(DECILES).over(Window.orderBy("_p")))
        .groupBy("decile")
        .agg(
            F.count("*").alias("rows"),
            F.avg("_p").alias("predicted"),
            F.avg(F.col(label).cast("double")).alias("observed"),
        )
        .orderBy("decile")
        .collect()
    )
    return [
        {"decile": r["decile"], "rows": r["rows"], "predicted": r["predicted"], "observed": r["observed"]}
        for r in table
    ]


def metrics(task: str, scored, label: str, by=(), column: str | None = None) -> dict[tuple, dict]:
    """The metrics of ``task`` (``regression`` or ``classification``, as a model spec names it);
    ``column`` holds the estimate (default: ``prediction``, or ``probability`` of a classifier)."""
    if task == "regression":
        return regression(scored, label, by, prediction=column or "prediction")
    if task == "classification":
        return classification(scored, label, by, probability=column or "probability")
    raise ValueError(f"unknown task {task!r}: regression or classification")
