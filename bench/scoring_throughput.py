"""Scoring throughput: rows per second per core of the flights model, and its cost against a
pass-through of the same rows, measured side by side.

    .venv/bin/python bench/scoring_throughput.py --data-root DIR [--days 14] [--copies 1 10] [--repeat 5]

The model is fitted here on the first week of ``features/`` (``--train-days``) (the production pipeline of the
air_time model, ``usecases/flights/models/air_time/pipeline.py``). Each round then reads the scored days' features (replicated
``copies`` times with shifted keys) and either scores them with the model or passes them through
with a constant prediction. Both read the same columns (the ones the fitted pipeline reads, as the
scoring service's engine finds them in the saved pipeline, with the key, the day and the slicing
columns) and write the same rows (the scoring job's ``label_predictions``, with those columns),
to Spark's ``noop`` sink, so the disk write is left out and the difference is the model. Rounds
alternate the two, so machine noise hits both alike; the medians are printed with their ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _days(data_root: str, train_days: int) -> list[str]:
    found = sorted(p.name[3:] for p in Path(data_root, "features").glob("ds=*") if any(p.glob("*.parquet")))
    if len(found) <= train_days:
        raise SystemExit(f"need more than {train_days} days under {data_root}/features (found {len(found)})")
    return found


def replicate(df, copies: int):
    """``copies`` copies of the rows, each with its own flight keys (``c<i>-`` prefix)."""
    from pyspark.sql import functions as F

    from spark_jobs.flights import project

    out = None
    for i in range(copies):
        part = df.withColumn(project.KEY, F.concat(F.lit(f"c{i}-"), F.col(project.KEY).cast("string")))
        out = part if out is None else out.unionByName(part)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--days", type=int, default=14, help="days scored per round")
    parser.add_argument("--train-days", type=int, default=7, help="the first days, the model is fitted on")
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from mlcycle.config import CODEGEN_CACHE
    from mlcycle.serving.engine import Pipeline
    from mlcycle.specs import find_model, pipeline_module
    from spark_jobs.common import read_partitions
    from spark_jobs.flights import project
    from spark_jobs.scoring import label_predictions

    started = SparkSession.getActiveSession() is None  # run in-process, a caller's session stays up
    spark = (
        SparkSession.builder.master(f"local[{args.cores}]")
        .appName("bench-scoring")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(args.cores * 2))
        .config(map=CODEGEN_CACHE)  # as the platform's sessions
        .getOrCreate()
    )
    days = _days(args.data_root, args.train_days)
    train_days, scored_days = days[: args.train_days], days[args.train_days : args.train_days + args.days]
    train_rows = read_partitions(spark, args.data_root, "features", train_days)
    flights_model = find_model("air_time")
    model = (
        pipeline_module(flights_model)
        .make_pipeline(flights_model)
        .fit(train_rows.where(F.col(project.LABEL).isNotNull()))  # flights that flew
    )
    with tempfile.TemporaryDirectory() as saved:
        model.save(f"{saved}/pipeline")
        inputs = Pipeline.load(f"{saved}/pipeline").columns  # what the fitted pipeline reads
    features = read_partitions(spark, args.data_root, "features", scored_days)
    base_rows = features.count()
    read = list(dict.fromkeys([project.KEY, "ds", *flights_model.monitoring["slices"], *inputs]))

    # the scoring job's rows (``label_predictions``), with every column the model read beside them
    # (as extra slicing columns): the pass-through reads what scoring reads
    slices = [
        *flights_model.monitoring["slices"],
        *(c for c in inputs if c not in flights_model.monitoring["slices"]),
    ]
    wide = dataclasses.replace(flights_model, monitoring={**flights_model.monitoring, "slices": slices})

    def rows_out(frame):
        return label_predictions(frame, wide, model_name="bench", model_version="1", airflow_run_id="bench")

    print(f"machine: {args.cores} cores (local[{args.cores}]), {base_rows} rows in {len(scored_days)} days")
    print(f"{'copies':>6} {'rows':>10} {'score s':>8} {'pass s':>8} {'score/pass':>10} {'rows/s/core':>12}")
    for copies in args.copies:
        rows_in = replicate(features.select(*read), copies)
        rows = base_rows * copies
        timed: dict[str, list[float]] = {"score": [], "pass": []}
        for _ in range(args.repeat):
            for kind in ("pass", "score"):
                frame = (
                    model.transform(rows_in)
                    if kind == "score"
                    else rows_in.withColumn("prediction", F.lit(0.0))
                )
                t0 = time.perf_counter()
                rows_out(frame).write.format("noop").mode("overwrite").save()
                timed[kind].append(time.perf_counter() - t0)
        score, passed = statistics.median(timed["score"]), statistics.median(timed["pass"])
        print(
            f"{copies:6d} {rows:10d} {score:8.2f} {passed:8.2f} {score / passed:10.2f} "
            f"{rows / score / args.cores:12.0f}"
        )
    if started:
        spark.stop()


if __name__ == "__main__":
    main()
