"""What publishing a day's feature views costs the features job: ``features_of_day`` with the views
written in one write (as the job does), written one write per view (as it first did), and not
written at all, interleaved in each round; and (``--keep``, one or more, taking turns within each
round) what the job keeps for its second reads: ``checkpoint``, its flights (the day's and its
history's), views and rows in local checkpoints (``spark_jobs.common.pinned``, as the job does);
``views``, only its views and rows (each view reading the flights again, as it did before);
``cache``, only its views and rows, cached and unpersisted at the end (as it did before that).
``both`` is ``checkpoint cache``.

    .venv/bin/python bench/feature_views.py --data-root /tmp/feature-views --rounds 5
        [--keep checkpoint views cache | both] [--remote sc://127.0.0.1:15202]

The data root gets the first ``--days`` days of 2013 landed and gated once (kept for a rerun); the
day measured is the last of them, with its history. A ``local[2]`` session with the stack's shuffle
partitions (4) and the platform's room for generated classes (``mlcycle.config.CODEGEN_CACHE``), or
with ``--remote`` a session on a Spark Connect server (a stack's: ``mlcycle stack`` starts one on
port 15202), a new one for every run of the job, as every task has. Medians over the rounds, with the
extra time of each way of writing, and (local) how many classes Spark compiled for a run of the
job (its code generator's own count).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

KEEPS = {
    "checkpoint": "flights, views and rows in local checkpoints",
    "views": "views and rows in local checkpoints, the flights read by each view",
    "cache": "views and rows cached, the flights read by each view",
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warm-ups", type=int, default=1, help="untimed runs of the job first")
    parser.add_argument(
        "--keep",
        nargs="+",
        choices=[*KEEPS, "both"],
        default=["checkpoint"],
        help="what the job keeps: " + "; ".join(f"{k}: {v}" for k, v in KEEPS.items()) + "; both: checkpoint cache",
    )
    parser.add_argument("--remote", help="a Spark Connect server (sc://host:port) instead of local[2]")
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from mlcycle.config import CODEGEN_CACHE

    if args.remote:
        os.environ["SPARK_REMOTE"] = args.remote  # the jobs' sessions (spark_jobs.common.get_spark)
    else:
        SparkSession.builder.master("local[2]").config("spark.sql.shuffle.partitions", "4").config(
            "spark.sql.session.timeZone", "UTC"
        ).config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false").config(
            map=CODEGEN_CACHE
        ).getOrCreate()
    from spark_jobs import features as job
    from spark_jobs import quality
    from spark_jobs.common import get_spark, overwrite_partitions, pinned
    from spark_jobs.flights.replay import land_day, load_reference

    spark = get_spark("bench-feature-views")
    if not args.remote:
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
    keeps = list(dict.fromkeys(k for keep in args.keep for k in (["checkpoint", "cache"] if keep == "both" else [keep])))
    seconds: dict[tuple[str, str], list[float]] = {(k, way): [] for k in keeps for way in ways}
    compiled = (
        None if args.remote else spark._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME()
    )
    count = (lambda: 0) if compiled is None else compiled.getCount
    classes: list[int] = []
    first = None  # classes compiled by the session's first run of the job (a warm-up's, if any)

    def run(keep: str) -> None:
        """The job once, its views and rows kept as ``keep`` says; a run on a server in a session
        of its own, as a task's."""
        cached: list = []
        held: list = []

        def cache(df):
            held.append(df)
            if len(held) == 1:  # the job's first hold is its flights (spark_jobs/flights/day.py)
                return df
            cached.append(df.cache())
            return cached[-1]

        def views_only(df):
            held.append(df)
            return df if len(held) == 1 else pinned(df)

        session = get_spark("bench-feature-views") if args.remote else spark
        hold = {"checkpoint": pinned, "views": views_only, "cache": cache}[keep]
        try:
            job.features_of_day(session, root, days[-1], hold=hold)
        finally:
            for df in cached:  # as the job did, at its end
                df.unpersist()
            if args.remote:
                session.stop()

    for _ in range(args.warm_ups):
        before = count()
        run(keeps[0])  # imports, the first gate
        first = count() - before if first is None else first
    try:
        for round_ in range(args.rounds):
            for keep in keeps if round_ % 2 == 0 else keeps[::-1]:
                for way, write in ways.items():
                    job.write_views = write
                    before, began = count(), time.perf_counter()
                    run(keep)
                    seconds[(keep, way)].append(time.perf_counter() - began)
                    classes.append(count() - before)
            print(
                f"round {round_ + 1}/{args.rounds}: "
                + ", ".join(f"{' '.join(key) if len(keeps) > 1 else key[1]} {s[-1]:.2f} s" for key, s in seconds.items())
            )
    finally:
        job.write_views = ways["one write"]  # the job as it was (run in-process, its caller goes on)
    median = {key: statistics.median(s) for key, s in seconds.items()}
    where = f"on {args.remote}" if args.remote else "on local[2]"
    for keep in keeps:
        print(
            f"\nfeatures_of_day {days[-1]} ({args.days - 1} days of history) {where}, "
            f"{KEEPS[keep]}, medians of {args.rounds} rounds:"
        )
        for way in ways:
            extra = median[(keep, way)] - median[(keep, "none")]
            print(
                f"  views {way:20} {median[(keep, way)]:6.2f} s  (+{extra:.2f} s, "
                f"{median[(keep, way)] / median[(keep, 'none')]:.2f}x)"
            )
    base = keeps[0]
    for keep in keeps[1:]:
        ratios = [c / k for c, k in zip(seconds[(keep, "one write")], seconds[(base, "one write")], strict=True)]
        print(
            f"\nthe job as it runs (views in one write): {keep} / {base} "
            f"{median[(keep, 'one write')] / median[(base, 'one write')]:.2f}x "
            f"(median of the rounds' ratios {statistics.median(ratios):.2f}x)"
        )
    if compiled is not None:
        first = classes[0] if first is None else first
        print(f"classes compiled per run: median {statistics.median(classes):.0f} (first run {first})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
