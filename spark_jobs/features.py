"""Feature table of one day of a use case: ``validated/<dataset>/ds=D`` -> gate -> ``features/ds=D``.

``--usecase`` names the use case (default: the only one of the catalog); its Spark code builds the
day (``build_day``, for flights ``spark_jobs/flights/day.py``) and its folder names the suite.

    spark-submit spark_jobs/features.py --ds 2013-01-02 --data-root /path/to/data

The gate verdict is kept under ``gates/features/ds=D.json`` (Data Docs under ``data_docs/features/ds=D/``);
a rejected day is not written and the job exits with ``GATE_FAILED_EXIT``. A day that passes writes
its feature views (``feature_views/ds=D/view=<view>``, what the scoring service looks requests up in)
and then its table.

    spark-submit spark_jobs/features.py --start 2013-01-01 --end 2013-01-31 --data-root /path/to/data

builds every day of a range whose raw gates passed, in one pass (the use case's ``build_days``),
each day's rows and views as its own job writes them (``features_of_days``); the features gate
judges every day at once, a held day again by GX for its Data Docs.
"""

from __future__ import annotations

import argparse
import sys

from mlcycle.quality.by_day import gate_day
from mlcycle.quality.gates import docs_dir, enforce, run_suite, write_result
from mlcycle.specs import find_usecase
from spark_jobs.common import (
    add_days_arguments,
    dataset_path,
    days_of,
    overwrite_partitions,
    pinned,
    run_gated_day,
)

VIEWS = "feature_views"  # under the data root: ds=D/view=<view>
WRITERS = 4  # tasks writing the views of many days


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_days_arguments(parser)
    parser.add_argument("--data-root", required=True, help="root of validated/, features/, gates/")
    parser.add_argument("--usecase", default=None, help="the use case (default: the only one)")
    return parser.parse_args(argv)


def usecase_args(args) -> list[str]:
    return ["--usecase", args.usecase] if args.usecase else []


def write_views(views: dict, data_root: str, ds: str) -> None:
    """The day's feature views, in one write: ``feature_views/ds=D/view=<view>``, each partition
    holding its view's keys and columns (the other views' columns null), replaced whole. What the
    scoring service looks requests up in."""
    from functools import reduce

    from pyspark.sql import functions as F

    tagged = [
        (view if "ds" in view.columns else view.withColumn("ds", F.lit(ds).cast("date"))).withColumn(
            "view", F.lit(name)
        )
        for name, view in views.items()
    ]
    every = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), tagged)
    (
        every.coalesce(1)
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("ds", "view")
        .parquet(dataset_path(data_root, VIEWS))
    )


def features_of_day(spark, data_root: str, ds: str, usecase=None, hold=pinned) -> int:
    """Build, gate and write day ``ds`` (the views, then the table); the rows written. The views
    are read twice (the rows are assembled from them, then they are written) and the rows three
    times (gate, table): each is computed once, through ``hold`` (``pinned``: a local checkpoint)."""
    usecase = usecase or find_usecase()
    features, history_days, views = usecase.code_module().build_day(spark, data_root, ds, hold=hold)
    print(f"build_features ds={ds}: history of {history_days} day(s) before it")
    features = hold(features)
    result, rows = gate_day(
        features,
        str(usecase.features_suite),
        name="features",
        ds=ds,
        docs_dir=docs_dir(data_root, "features", ds),
    )
    write_result(
        result,
        f"{data_root}/gates/features/ds={ds}.json",
        ds=ds,
        rows=rows,
        gate="features",
        history_days=history_days,
    )
    enforce(result, partition=f"ds={ds}")
    # the views first, the table last: a day whose features are there has its views too
    write_views(views, data_root, ds)
    overwrite_partitions(features, data_root, "features")
    return rows


def write_views_of_days(views: dict, data_root: str, days: list[str]) -> None:
    """``write_views`` for many days in one write: each view's rows of each of ``days`` (a view
    without a ``ds`` column, the same every day, goes to every day's partition)."""
    import datetime as dt
    from functools import reduce

    from pyspark.sql import functions as F

    spark = next(iter(views.values())).sparkSession
    on = spark.createDataFrame([(dt.date.fromisoformat(d),) for d in days], "ds date")
    wanted = [dt.date.fromisoformat(d) for d in days]
    tagged = [
        (
            view.where(F.col("ds").isin(wanted)) if "ds" in view.columns else view.crossJoin(F.broadcast(on))
        ).withColumn("view", F.lit(name))
        for name, view in views.items()
    ]
    every = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), tagged)
    (
        # one file per day and view, from a few tasks (each writes the partitions it holds)
        every.repartition(WRITERS, "ds", "view")
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("ds", "view")
        .parquet(dataset_path(data_root, VIEWS))
    )


def raw_passed(data_root: str, usecase, ds: str) -> bool:
    """Whether every raw gate of the use case passed ``ds`` (so its validated partitions are there)."""
    from mlcycle.quality.gates import read_result

    return all((read_result(data_root, gate, ds) or {}).get("success") for gate in usecase.raw_gates)


def features_of_days(
    spark, data_root: str, days: list[str], usecase=None, hold=pinned
) -> tuple[dict, list, list]:
    """``features_of_day`` for many days in one pass (the use case's ``build_days``): the days whose
    raw gates passed are built together, judged by the features gate in one pass (a held day
    again by GX, for its Data Docs), and the days that pass are written, views first, in one write
    each. Returns (rows of each day written, days held by the features gate, days not built: their
    raw gate did not pass)."""
    from pyspark.sql import functions as F

    from mlcycle.quality.by_day import measure_days
    from mlcycle.quality.gates import result_path

    usecase = usecase or find_usecase()
    ready = [ds for ds in days if raw_passed(data_root, usecase, ds)]
    unbuilt = [ds for ds in days if ds not in ready]
    if not ready:
        return {}, [], unbuilt
    # the views are read twice and the rows several times: each computed once (``features_of_day``)
    features, history_days, views = usecase.code_module().build_days(spark, data_root, ready, hold=hold)
    features = hold(features)
    suite = str(usecase.features_suite)
    measured = measure_days(features, suite, name="features", row_parameters={ds: {} for ds in ready})
    rows, held = {}, []
    for ds in ready:
        result = measured.verdict(ds, {})
        if not result.success:  # GX's own verdict, with the day's Data Docs
            of_day = features.where(F.col("ds") == F.lit(ds).cast("date"))
            result = run_suite(
                of_day, suite, name="features", docs_dir=docs_dir(data_root, "features", ds)
            )
            held.append(ds)
        rows[ds] = measured.rows_of(ds)
        write_result(
            result,
            result_path(data_root, "features", ds),
            ds=ds,
            rows=rows[ds],
            gate="features",
            history_days=history_days[ds],
        )
    good = [ds for ds in ready if ds not in held]
    if good:
        wanted = [F.lit(ds).cast("date") for ds in good]
        write_views_of_days(views, data_root, good)
        overwrite_partitions(features.where(F.col("ds").isin(wanted)), data_root, "features")
    return {ds: rows[ds] for ds in good}, held, unbuilt


def features_of_range(days: list[str], data_root: str, usecase) -> int:
    """Build a range of days; exit ``GATE_FAILED_EXIT`` naming the days held or not built."""
    from mlcycle.quality.gates import GATE_FAILED_EXIT

    code, built = run_gated_day(
        "build_features",
        f"{days[0]}..{days[-1]}",
        lambda spark: features_of_days(spark, data_root, days, usecase),
    )
    if code:
        return code
    written, held, unbuilt = built
    for ds, rows in written.items():
        print(f"build_features ds={ds} features={rows} rows")
    print(f"build_features {days[0]}..{days[-1]}: {len(written)} of {len(days)} days written")
    if unbuilt:  # the raw gate's task says why
        print(f"not built, their raw gate did not pass: {', '.join(unbuilt)}")
    if held:
        print(f"held by the features gate: {', '.join(held)} (gates/features/ds=D.json)", file=sys.stderr)
    return GATE_FAILED_EXIT if held else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    days = days_of(args)
    usecase = find_usecase(args.usecase)
    if len(days) > 1 and hasattr(usecase.code_module(), "build_days"):
        return features_of_range(days, args.data_root, usecase)
    if len(days) > 1:  # a use case without a build of many days: each day in turn, one session
        return max(main(["--ds", ds, "--data-root", args.data_root, *usecase_args(args)]) for ds in days)
    ds = days[0]
    code, rows = run_gated_day(
        "build_features", ds, lambda spark: features_of_day(spark, args.data_root, ds, usecase)
    )
    if code == 0:
        print(f"build_features ds={ds} features={rows} rows")
    return code


if __name__ == "__main__":
    sys.exit(main())
