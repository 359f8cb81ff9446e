"""Feature drift: how far a day's features moved from the data a model was trained on.

A *profile* of the training rows is kept with the model (``drift_profile.json`` on its training
run): for each numeric feature the decile edges and the share of rows in each bin (missing values
in a bin of their own), for each categorical feature the share of its most frequent values (the
rest pooled as ``__other__``). A day is compared with it by the population stability index,
``PSI = sum((p_day - p_train) * ln(p_day / p_train))`` over the bins: below 0.1 is usually read as
stable, 0.1 to 0.25 as a moderate shift, above 0.25 as a large one.
"""

from __future__ import annotations

import math

BINS = 10
TOP_CATEGORIES = 20
EPSILON = 1e-4  # share given to an empty bin, so that a bin seen on one side only counts, finitely
MISSING = "__missing__"
OTHER = "__other__"
PROFILE_ARTIFACT = "drift_profile.json"


def _numeric_bins(df, column: str, edges: list[float]):
    """A bin index per row: 0..len(edges) by the inner edges, -1 for a missing value."""
    from pyspark.sql import functions as F

    value = F.col(column).cast("double")
    expr = F.when(value.isNull() | F.isnan(value), F.lit(-1))
    index = F.lit(0)
    for edge in edges:
        index = index + F.when(value > F.lit(edge), 1).otherwise(0)
    return expr.otherwise(index)


def _shares(counts: dict, total: int) -> dict[str, float]:
    return {str(k): v / total for k, v in counts.items()} if total else {}


def profile(df, numeric: list[str], categorical: list[str]) -> dict:
    """The profile of ``df`` (the training rows) for the given features."""
    from pyspark.sql import functions as F

    total = df.count()
    result: dict = {"rows": total, "numeric": {}, "categorical": {}}
    quantiles = [i / BINS for i in range(1, BINS)]
    for column in numeric:
        values = df.select(F.col(column).cast("double").alias(column)).where(
            F.col(column).isNotNull() & ~F.isnan(F.col(column))
        )
        edges = sorted(set(values.approxQuantile(column, quantiles, 0.001))) if total else []
        counts = {
            row["bin"]: row["count"]
            for row in df.select(_numeric_bins(df, column, edges).alias("bin"))
            .groupBy("bin")
            .count()
            .collect()
        }
        result["numeric"][column] = {"edges": edges, "shares": _shares(counts, total)}
    for column in categorical:
        counts = {
            (MISSING if row[column] is None else str(row[column])): row["count"]
            for row in df.groupBy(column).count().collect()
        }
        top = sorted(counts, key=lambda k: (-counts[k], k))[:TOP_CATEGORIES]
        kept = {k: counts[k] for k in top}
        other = sum(v for k, v in counts.items() if k not in kept)
        if other:
            kept[OTHER] = other
        result["categorical"][column] = {"shares": _shares(kept, total)}
    return result


def psi_value(expected: dict[str, float], actual: dict[str, float]) -> float:
    """PSI of two share maps over the union of their bins."""
    value = 0.0
    for key in set(expected) | set(actual):
        e = max(expected.get(key, 0.0), EPSILON)
        a = max(actual.get(key, 0.0), EPSILON)
        value += (a - e) * math.log(a / e)
    return value


def psi(reference: dict, df) -> dict[str, float]:
    """PSI of each profiled feature of ``df`` (a day's features) against ``reference``."""
    from pyspark.sql import functions as F

    total = df.count()
    if not total:
        return {}
    out = {}
    numeric = reference.get("numeric", {})
    categorical = reference.get("categorical", {})
    # one pass for every feature: a bin per numeric feature, the value (or other) per categorical
    columns = [_numeric_bins(df, c, spec["edges"]).alias(c) for c, spec in numeric.items()]
    for c, spec in categorical.items():
        known = [k for k in spec["shares"] if k not in (MISSING, OTHER)]
        columns.append(
            F.when(F.col(c).isNull(), F.lit(MISSING))
            .when(F.col(c).cast("string").isin(known), F.col(c).cast("string"))
            .otherwise(F.lit(OTHER))
            .alias(c)
        )
    binned = df.select(*columns).cache()
    try:
        for column, spec in [*numeric.items(), *categorical.items()]:
            counts = {row[column]: row["count"] for row in binned.groupBy(column).count().collect()}
            actual = _shares({str(k): v for k, v in counts.items()}, total)
            out[column] = psi_value(spec["shares"], actual)
    finally:
        binned.unpersist()
    return out
