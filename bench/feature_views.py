"""What publishing a day's feature views costs the features job: ``features_of_day`` with the views
written in one write (as the job does), written one write per view (as it first did), and not
written at all, interleaved in each round.

    .venv/bin/python bench/feature_views.py --data-root /tmp/feature-views --rounds 5

The data root gets the first ``--days`` days of 2013 landed and gated once (kept for a rerun); the
day measured is the last of them, with its history. A ``local[2]`` session with the stack's shuffle
partitions (4) and the platform's room for generated classes (``mlcycle.config.CODEGEN_CACHE``).
Medians over the rounds, with the extra time of each way of writing, and how many classes Spark
compiled for a run of the job (its code generator's own count).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warm-ups", type=int, default=1, help="untimed runs of the job first")
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from mlcycle.config import CODEGEN_CACHE

    SparkSession.builder.master("local[2]").config("spark.sql.shuffle.partitions", "4").config(
        "spark.sql.session.timeZone", "UTC"
    ).config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false").config(
        map=CODEGEN_CACHE
    ).getOrCreate()
    from spark_jobs import features as job
    from spark_jobs import quality
    from spark_jobs.common import get_spark, overwrite_partitions
    from spark_jobs.flights.replay import land_day, load_reference

    spark = get_spark("bench-feature-views")
    spark.sparkContext.setLogLevel("ERROR")
    root = str(Path(args.data_root).resolve())
    days = [(dt.date(2013, 1, 1) + dt.timedelta(days=d)).isoformat() for d in range(args.days)]
    if not (Path(root) / "validated" / "flights" / f"ds={days[-1]}").is_dir():
        load_reference(root)
        for ds in days:
            land_day(root, ds)
            quality.validate_day(spark, root, ds)

    def per_view(views, data_root, ds):
        for name, view in views.items():
            if "ds" not in view.columns:
                view = view.withColumn("ds", F.lit(ds).cast("date"))
            overwrite_partitions(view.coalesce(1), data_root, f"bench_views_per_view/{name}")

    ways = {"one write": job.write_views, "one write per view": per_view, "none": lambda *a: None}
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    compiled = spark._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME()
    classes: list[int] = []
    first = None  # classes compiled by the session's first run of the job (a warm-up's, if any)
    for _ in range(args.warm_ups):
        before = compiled.getCount()
        job.features_of_day(spark, root, days[-1])  # imports, the first gate
        first = compiled.getCount() - before if first is None else first
    try:
        for round_ in range(args.rounds):
            for way, write in ways.items():
                job.write_views = write
                before, began = compiled.getCount(), time.perf_counter()
                job.features_of_day(spark, root, days[-1])
                seconds[way].append(time.perf_counter() - began)
                classes.append(compiled.getCount() - before)
            print(
                f"round {round_ + 1}/{args.rounds}: "
                + ", ".join(f"{w} {s[-1]:.2f} s" for w, s in seconds.items())
            )
    finally:
        job.write_views = ways["one write"]  # the job as it was (run in-process, its caller goes on)
    median = {way: statistics.median(s) for way, s in seconds.items()}
    print(f"\nfeatures_of_day {days[-1]} ({args.days - 1} days of history), medians of {args.rounds} rounds:")
    for way in ways:
        extra = median[way] - median["none"]
        print(f"  views {way:20} {median[way]:6.2f} s  (+{extra:.2f} s, {median[way] / median['none']:.2f}x)")
    first = classes[0] if first is None else first
    print(f"classes compiled per run: median {statistics.median(classes):.0f} (first run {first})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
