"""Scale: the feature, training and scoring jobs on the real 2013 data replicated 1x, 10x and 30x
(synthetic copies with shifted keys), their time and the peak memory of driver and executors,
and the same features computed with pandas on the same data.

    .venv/bin/python bench/scale.py --data-root DIR [--copies 1 10 30] [--repeat 1] [--master cluster]

``DIR`` holds ``validated/`` and ``features/`` of 2013 and ``reference/planes`` (a data root the
pipeline has filled, e.g. by a backfill of the year). Copy ``i`` of a flight gets flight number
``flight + 10000 i`` and key ``c<i>-<key>``; weather is per airport and hour and is not copied.

- features: the production ``build_features`` for ``--feature-days`` days from ``--first-day``,
  each with its 28 days of history, written as parquet (the data-quality gate is left out);
- pandas features: the same days and definition in pandas (``bench/pandas_features.py``), checked
  at 1x against Spark's output (same rows, same values);
- training: the production pipeline (``spark_jobs/flights/model.py``, the deeper forest of its
  grid) fitted on ``--train-days`` days of features;
- scoring: that model applied to the ``--score-days`` days after them, written as parquet.

Each job runs in a fresh process; its time is taken inside the process, after the Spark session
is up. Memory is the peak resident set size, sampled every 0.2 s: of the driver (its Python and
its JVM) and of each executor JVM. With ``--master cluster`` (default) the jobs run on a Spark
standalone cluster of this machine (two workers, one core each), so driver and executors are
separate processes; with ``--master local`` they share the driver's JVM.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
JOBS = ("features", "pandas_features", "training", "scoring")


def days_from(first: str, n: int) -> list[str]:
    start = date.fromisoformat(first)
    return [(start + timedelta(days=i)).isoformat() for i in range(n)]


def windows(args) -> dict[str, list[str]]:
    feature_days = days_from(args.first_day, args.feature_days)
    history = days_from((date.fromisoformat(args.first_day) - timedelta(days=28)).isoformat(), 28)
    train = days_from(args.train_first_day, args.train_days)
    score = days_from((date.fromisoformat(train[-1]) + timedelta(days=1)).isoformat(), args.score_days)
    return {
        "feature_days": feature_days,
        "flight_days": history + feature_days,
        "train": train,
        "score": score,
    }


def session(master: str, name: str):
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master)
        .appName(name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.log.level", "WARN")
    )
    if master.startswith("spark://"):
        builder = builder.config("spark.executor.memory", "2g").config("spark.executor.cores", "1")
    else:
        builder = builder.config("spark.driver.memory", "4g")
    return builder.getOrCreate()


def replicate(df, copies: int, key: str):
    from pyspark.sql import functions as F

    out = None
    for i in range(copies):
        part = df.withColumn(key, F.concat(F.lit(f"c{i}-"), F.col(key).cast("string")))
        if "flight" in df.columns:
            part = part.withColumn("flight", F.col("flight") + F.lit(10000 * i))
        out = part if out is None else out.unionByName(part)
    return out


def prepare(args, work: Path, copies: int) -> None:
    """Write the replicated inputs of one size once (not timed): validated flights of the feature
    days and their history, and the features of the training and scoring windows."""
    from spark_jobs.common import read_partitions
    from spark_jobs.flights.project import KEY

    target = work / f"x{copies}"
    if (target / "_READY").exists():
        return
    shutil.rmtree(target, ignore_errors=True)
    w = windows(args)
    spark = session("local[2]", f"scale-prepare x{copies}")
    flights = read_partitions(spark, args.data_root, "validated/flights", w["flight_days"])
    replicate(flights, copies, KEY).write.partitionBy("ds").parquet(str(target / "validated" / "flights"))
    features = read_partitions(spark, args.data_root, "features", w["train"] + w["score"])
    replicate(features, copies, KEY).write.partitionBy("ds").parquet(str(target / "features_in"))
    spark.stop()
    (target / "_READY").touch()


def _partitions(base: Path, days: list[str]) -> list[str]:
    return [str(base / f"ds={d}") for d in days]


def _days(spark, base: Path, days: list[str]):
    """The given days of a dataset written by ``prepare`` (partition pruning reads only those)."""
    from pyspark.sql import functions as F

    return spark.read.parquet(str(base)).where(F.col("ds").cast("string").isin(days))


def job(args) -> dict:
    """One job in this process; returns its seconds (after the session is up) and rows."""
    w = windows(args)
    copies = args.copies[0]  # one size per job process
    data = Path(args.work) / f"x{copies}"
    out = data / f"out_{args.job}"
    shutil.rmtree(out, ignore_errors=True)
    if args.job == "pandas_features":
        import pandas as pd

        from bench.pandas_features import build_features

        t0 = time.perf_counter()
        flights = pd.concat(
            [
                pd.read_parquet(p).assign(ds=pd.Timestamp(p[-10:]))
                for p in _partitions(data / "validated" / "flights", w["flight_days"])
            ],
            ignore_index=True,
        )
        weather = pd.concat(
            [
                pd.read_parquet(p).assign(ds=pd.Timestamp(p[-10:]))
                for p in _partitions(Path(args.data_root) / "validated" / "weather", w["feature_days"])
            ],
            ignore_index=True,
        )
        planes = pd.read_csv(Path(args.data_root) / "reference" / "planes" / "planes.csv", na_values="NA")
        rows = 0
        for ds in w["feature_days"]:
            table = build_features(flights, weather, ds, planes)
            (out / f"ds={ds}").mkdir(parents=True)
            table.drop(columns="ds").to_parquet(out / f"ds={ds}" / "part-0.parquet", index=False)
            rows += len(table)
        return {"seconds": time.perf_counter() - t0, "rows": rows}

    from pyspark.sql import functions as F

    spark = session(args.master, f"scale-{args.job} x{copies}")
    t0 = time.perf_counter()
    if args.job == "features":
        from spark_jobs.common import read_partitions
        from spark_jobs.features import read_planes
        from spark_jobs.flights.features import build_features

        flights = _days(spark, data / "validated" / "flights", w["flight_days"])
        weather = read_partitions(spark, args.data_root, "validated/weather", w["feature_days"])
        planes = read_planes(spark, args.data_root)
        for ds in w["feature_days"]:
            build_features(flights, weather, ds, planes=planes).drop("ds").write.parquet(
                str(out / f"ds={ds}")
            )
        rows = spark.read.parquet(str(out)).count()  # the days written, read back once
    else:
        from pyspark.ml import PipelineModel
        from pyspark.ml.regression import RandomForestRegressor

        from spark_jobs.flights.model import make_pipeline
        from spark_jobs.flights.project import LABEL

        if args.job == "training":
            train = _days(spark, data / "features_in", w["train"])
            train = train.where(F.col(LABEL).isNotNull())
            pipeline = make_pipeline()
            forest = next(s for s in pipeline.getStages() if isinstance(s, RandomForestRegressor))
            forest.setMaxDepth(10).setMinInstancesPerNode(5)
            model = pipeline.fit(train)
            model.write().overwrite().save(str(data / "model"))
            rows = train.count()
        else:
            model = PipelineModel.load(str(data / "model"))
            days = _days(spark, data / "features_in", w["score"])
            model.transform(days).select("flight_id", "ds", "prediction").write.parquet(str(out))
            rows = spark.read.parquet(str(out)).count()
    seconds = time.perf_counter() - t0
    spark.stop()
    return {"seconds": seconds, "rows": rows}


def _sample(proc: subprocess.Popen, peaks: dict[str, float]) -> None:
    import psutil

    try:
        root = psutil.Process(proc.pid)
        driver = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    rss = 0
    for p in driver:
        try:
            rss += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    peaks["driver"] = max(peaks.get("driver", 0), rss)
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "CoarseGrainedExecutorBackend" in cmd:
            try:
                key = f"executor {p.pid}"
                peaks[key] = max(peaks.get(key, 0), p.memory_info().rss)
            except psutil.NoSuchProcess:
                pass


def measure(args, name: str, copies: int, master: str) -> dict:
    cmd = [sys.executable, __file__, "--job", name, "--copies", str(copies), "--master", master]
    cmd += ["--work", args.work, "--data-root", args.data_root, "--first-day", args.first_day]
    cmd += ["--feature-days", str(args.feature_days), "--train-first-day", args.train_first_day]
    cmd += ["--train-days", str(args.train_days), "--score-days", str(args.score_days)]
    peaks: dict[str, float] = {}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    while proc.poll() is None:
        _sample(proc, peaks)
        time.sleep(0.2)
    out = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"{name} x{copies} failed (exit {proc.returncode}): run it alone: {' '.join(cmd)}")
    result = json.loads(out.strip().splitlines()[-1])
    executors = [v for k, v in peaks.items() if k.startswith("executor")]
    result["driver_mb"] = peaks.get("driver", 0) / 2**20
    result["executor_mb"] = max(executors) / 2**20 if executors else None
    return result


def same_features(work: Path, days: list[str]) -> None:
    """Spark's and pandas' feature tables of the 1x data are the same table."""
    import pandas as pd

    for ds in days:
        a = (
            pd.read_parquet(work / "x1" / "out_features" / f"ds={ds}")
            .sort_values("flight_id")
            .reset_index(drop=True)
        )
        b = (
            pd.read_parquet(work / "x1" / "out_pandas_features" / f"ds={ds}")
            .sort_values("flight_id")
            .reset_index(drop=True)
        )
        b = b[a.columns]
        pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=False, rtol=1e-9)
    print(f"pandas and Spark features are the same table on the {len(days)} days at 1x")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--master", default="cluster", help="cluster (a standalone cluster here), local, or a URL"
    )
    parser.add_argument("--work", default=str(REPO / ".mlcycle-bench" / "scale"))
    parser.add_argument("--first-day", default="2013-03-01")
    parser.add_argument("--feature-days", type=int, default=3)
    parser.add_argument("--train-first-day", default="2013-02-01")
    parser.add_argument("--train-days", type=int, default=21)
    parser.add_argument("--score-days", type=int, default=7)
    parser.add_argument("--jobs", nargs="+", default=list(JOBS), choices=JOBS)
    parser.add_argument("--job", choices=JOBS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    if args.job:
        print(json.dumps(job(args)))
        return

    work = Path(args.work)
    for k in args.copies:
        prepare(args, work, k)
    cluster = None
    master = args.master
    if master == "cluster":
        from mlcycle.devstack.spark_cluster import StandaloneCluster

        cluster = StandaloneCluster(home=work / "cluster", workers=2, cores=1, memory="3g").start()
        master = cluster.master_url
    elif master == "local":
        master = "local[2]"
    results: dict[tuple[str, int], list[dict]] = {}
    try:
        for r in range(args.repeat):
            for k in args.copies if r % 2 == 0 else args.copies[::-1]:
                for name in args.jobs:
                    got = measure(args, name, k, master)
                    results.setdefault((name, k), []).append(got)
                    executor = f"{got['executor_mb']:6.0f}" if got["executor_mb"] else "     -"
                    print(
                        f"x{k:<3d} {name:16s} {got['seconds']:7.1f} s  {got['rows']:>10,} rows  "
                        f"driver {got['driver_mb']:6.0f} MB  executor {executor} MB",
                        flush=True,
                    )
    finally:
        if cluster is not None:
            cluster.stop()
    if 1 in args.copies and {"features", "pandas_features"} <= set(args.jobs):
        same_features(work, windows(args)["feature_days"])

    def med(name, k, key):
        values = [r[key] for r in results[(name, k)] if r[key] is not None]
        return statistics.median(values) if values else None

    print()
    print("job               copies   median s   time / 1x   driver MB   executor MB")
    for name in args.jobs:
        for k in args.copies:
            base = med(name, min(args.copies), "seconds")
            ex = med(name, k, "executor_mb")
            print(
                f"{name:16s}  x{k:<5d}  {med(name, k, 'seconds'):8.1f}   {med(name, k, 'seconds') / base:8.2f}"
                f"   {med(name, k, 'driver_mb'):9.0f}   {'-' if ex is None else str(round(ex)):>11}"
            )
    if {"features", "pandas_features"} <= set(args.jobs):
        for k in args.copies:
            print(
                f"features x{k}: pandas / Spark time {med('pandas_features', k, 'seconds') / med('features', k, 'seconds'):.2f}"
            )


if __name__ == "__main__":
    main()
