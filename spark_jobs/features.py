"""Feature table of one day of a use case: ``validated/<dataset>/ds=D`` -> gate -> ``features/ds=D``.

``--usecase`` names the use case (default: the only one of the catalog); its Spark code builds the
day (``build_day``, for flights ``spark_jobs/flights/day.py``) and its folder names the suite.

    spark-submit spark_jobs/features.py --ds 2013-01-02 --data-root /path/to/data

The gate verdict is kept under ``gates/features/ds=D.json`` (Data Docs under ``data_docs/features/ds=D/``);
a rejected day is not written and the job exits with ``GATE_FAILED_EXIT``. A day that passes writes
its feature views (``feature_views/ds=D/view=<view>``, what the scoring service looks requests up in)
and then its table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from mlcycle.quality.gates import docs_dir, enforce, run_suite, write_result
from mlcycle.specs import find_usecase
from spark_jobs.common import dataset_path, overwrite_partitions, run_gated_day

VIEWS = "feature_views"  # under the data root: ds=D/view=<view>


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", required=True, type=dt.date.fromisoformat, help="day, YYYY-MM-DD")
    parser.add_argument("--data-root", required=True, help="root of validated/, features/, gates/")
    parser.add_argument("--usecase", default=None, help="the use case (default: the only one)")
    return parser.parse_args(argv)


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


def features_of_day(spark, data_root: str, ds: str, usecase=None) -> int:
    usecase = usecase or find_usecase()
    features, history_days, views = usecase.code_module().build_day(spark, data_root, ds)
    print(f"build_features ds={ds}: history of {history_days} day(s) before it")
    features = features.cache()
    try:
        rows = features.count()
        result = run_suite(
            features,
            str(usecase.features_suite),
            name="features",
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
    finally:
        features.unpersist()  # a cached plan would answer a rerun in the same session


def main(argv=None) -> int:
    args = parse_args(argv)
    ds = args.ds.isoformat()
    usecase = find_usecase(args.usecase)
    code, rows = run_gated_day(
        "build_features", ds, lambda spark: features_of_day(spark, args.data_root, ds, usecase)
    )
    if code == 0:
        print(f"build_features ds={ds} features={rows} rows")
    return code


if __name__ == "__main__":
    sys.exit(main())
