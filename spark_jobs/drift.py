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


def _counts(labelled) -> dict[str, dict[str, int]]:
    """Rows per (feature, value) of ``labelled``, a frame with one column per feature holding the
    row's bin or category as text, counted in one Spark job for every feature at once (instead of
    a job per feature)."""
    from pyspark.sql import functions as F

    pairs = F.array(*[F.struct(F.lit(c).alias("feature"), F.col(c).alias("value")) for c in labelled.columns])
    out: dict[str, dict[str, int]] = {c: {} for c in labelled.columns}
    for row in labelled.select(F.explode(pairs).alias("p")).groupBy("p.feature", "p.value").count().collect():
        out[row["feature"]][row["value"]] = row["count"]
    return out


def _labels(df, numeric: dict[str, list[float]], categorical: dict[str, list[str] | None]):
    """Each numeric feature as its bin index, each categorical one as its value (``MISSING`` when
    null; ``OTHER`` when outside ``known``, if given), all as text."""
    from pyspark.sql import functions as F

    columns = [_numeric_bins(df, c, edges).cast("string").alias(c) for c, edges in numeric.items()]
    for c, known in categorical.items():
        value = F.when(F.col(c).isNull(), F.lit(MISSING))
        if known is not None:
            value = value.when(~F.col(c).cast("string").isin(known), F.lit(OTHER))
        columns.append(value.otherwise(F.col(c).cast("string")).alias(c))
    return df.select(*columns)


def profile(df, numeric: list[str], categorical: list[str]) -> dict:
    """The profile of ``df`` (the training rows) for the given features: one job for the decile
    edges of every numeric feature, one for every feature's counts."""
    from pyspark.sql import functions as F

    total = df.count()
    result: dict = {"rows": total, "numeric": {}, "categorical": {}}
    quantiles = [i / BINS for i in range(1, BINS)]
    edges: dict[str, list[float]] = {c: [] for c in numeric}
    if total and numeric:
        values = df.select(
            *[
                F.when(F.isnan(F.col(c).cast("double")), None).otherwise(F.col(c).cast("double")).alias(c)
                for c in numeric
            ]
        )  # missing values (null or NaN) are left out of the edges, as approxQuantile leaves nulls
        for column, found in zip(
            numeric, values.approxQuantile(list(numeric), quantiles, 0.001), strict=True
        ):
            edges[column] = sorted(set(found))
    counts = _counts(_labels(df, edges, dict.fromkeys(categorical))) if total else {}
    for column in numeric:
        shares = _shares({int(k): v for k, v in counts.get(column, {}).items()}, total)
        result["numeric"][column] = {"edges": edges[column], "shares": shares}
    for column in categorical:
        seen = counts.get(column, {})
        top = sorted(seen, key=lambda k: (-seen[k], k))[:TOP_CATEGORIES]
        kept = {k: seen[k] for k in top}
        other = sum(v for k, v in seen.items() if k not in kept)
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
    """PSI of each profiled feature of ``df`` (a day's features) against ``reference``, counted in
    one pass over the day."""
    total = df.count()
    if not total:
        return {}
    numeric = {c: spec["edges"] for c, spec in reference.get("numeric", {}).items()}
    categorical = {
        c: [k for k in spec["shares"] if k not in (MISSING, OTHER)]
        for c, spec in reference.get("categorical", {}).items()
    }
    counts = _counts(_labels(df, numeric, categorical))
    specs = {**reference.get("numeric", {}), **reference.get("categorical", {})}
    return {
        column: psi_value(spec["shares"], _shares(counts[column], total)) for column, spec in specs.items()
    }


def psi_by_day(reference: dict, df, key: str = "ds") -> dict[str, dict[str, float]]:
    """``psi`` of each day of ``df`` (its ``key``, as text) against ``reference``: every day's
    counts in one pass over all the days."""
    from pyspark.sql import functions as F

    numeric = {c: spec["edges"] for c, spec in reference.get("numeric", {}).items()}
    categorical = {
        c: [k for k in spec["shares"] if k not in (MISSING, OTHER)]
        for c, spec in reference.get("categorical", {}).items()
    }
    specs = {**reference.get("numeric", {}), **reference.get("categorical", {})}
    if not specs:
        return {}
    # each row's bin or category per feature (``_labels``), beside its day
    labelled = _labels(
        df.withColumn("_day", F.col(key).cast("string")), numeric, {**categorical, "_day": None}
    )
    pairs = F.array(*[F.struct(F.lit(c).alias("feature"), F.col(c).alias("value")) for c in specs])
    counts: dict[str, dict[str, dict[str, int]]] = {}
    rows = (
        labelled.select("_day", F.explode(pairs).alias("p")).groupBy("_day", "p.feature", "p.value").count()
    )
    for row in rows.collect():
        counts.setdefault(row["_day"], {}).setdefault(row["feature"], {})[row["value"]] = row["count"]
    out = {}
    for ds, of_day in counts.items():
        total = sum(next(iter(of_day.values())).values())
        out[ds] = {
            column: psi_value(spec["shares"], _shares(of_day.get(column, {}), total))
            for column, spec in specs.items()
        }
    return out
