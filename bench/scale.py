"""Scale on real sizes: the year 2013 at 1, 10 and 30 times its traffic (``bench/scale_data.py``),
features over the year, training on a quarter and scoring a month, on Spark in local mode and on a
standalone cluster of one and of two workers, and the same features in pandas and in Polars.

    .venv/bin/python bench/scale.py --source DIR --work DIR [--sizes 1 10 30] [--engines ...]
        [--jobs features training scoring] [--repeat 1] [--timeout 3600] [--forest full|smallest]

``--source`` is a data root holding the validated year (``validated/flights``,
``validated/weather``, ``reference/planes``); with ``--make-source`` it is made first, the way the
pipeline makes it: the year landed from the upstream package and gated in one range job of the
raw gate. Size ``k`` is written once under ``WORK/x<k>`` by ``bench/scale_data.py`` (size 1 is the
source itself), its rows and bytes printed and kept in ``WORK/x<k>/sizes.json``.

The jobs, each in a fresh process, timed inside it once its engine is up (with ``--in-process``,
spark-local's jobs run on the caller's session instead, for a smoke run; pandas and Polars still in
processes of their own):

- features: the production range path (``spark_jobs.flights.days.build_range``) for every day of
  ``--year``, written as the feature table (one partition per day); in pandas and in Polars the
  same table (``bench/pandas_features.py``, ``bench/polars_features.py``), read from and written to
  the same parquet. The first Spark engine's table of a size is what training and scoring read;
  pandas' and Polars' tables are compared with it: all of it at size 1, a sample of days above.
- training: the production pipeline of the air_time model (its deeper forest; ``--forest smallest``:
  its smallest grid's, for a smoke run) on ``--train``;
- scoring: that model on ``--score``, written as the scoring job's rows (``label_predictions``).

Engines: ``spark-local`` (``local[2]``: driver and executors one JVM), ``spark-2-workers`` and
``spark-1-worker`` (a standalone cluster of this machine: workers of one core, executors in JVMs
of their own, the driver apart), ``pandas``, ``polars``. Memory is the peak resident set size,
sampled every 0.2 s, of the driver (its Python and its JVM, or the pandas or Polars process) and
of each executor JVM. A job that runs past ``--timeout`` is stopped and recorded as over it; one
killed for memory (by the kernel, or an out-of-memory error in Python or the JVM) as out of memory.
Every job's record is appended to ``WORK/results.jsonl``; the summary (medians, the ratios of the
targets) is made from every record there, so sizes and engines run at different times add up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
JOBS = ("features", "training", "scoring")
SPARK_ENGINES = ("spark-local", "spark-2-workers", "spark-1-worker")
ENGINES = (*SPARK_ENGINES, "pandas", "polars")
WORKERS = {"spark-2-workers": 2, "spark-1-worker": 1}
# The forest trained: the model's deeper one (its full grid's; its 20 trees), or its smallest grid's
# (5 trees of depth 4), which a smoke run trains: the same pipeline, a fraction of the trees.
FORESTS = {"full": {"numTrees": 20, "maxDepth": 10}, "smallest": {"numTrees": 5, "maxDepth": 4}}
EXECUTOR_MEMORY = "6g"  # each worker's executor (one core)
LOCAL_DRIVER_MEMORY = "12g"  # local mode: the driver's JVM holds the executors
FLIGHT_COLUMNS = [
    "flight_id", "ds", "dep_time", "air_time", "arr_delay", "carrier", "origin", "dest",
    "sched_dep_time", "time_hour", "tailnum", "distance",
]  # fmt: skip
WEATHER_COLUMNS = ["origin", "time_hour", "ds", "temp", "wind_speed", "precip", "visib"]


def size_root(args, k: int) -> Path:
    return Path(args.source) if k == 1 else Path(args.work) / f"x{k}"


def days_of(first_last: list[str]) -> list[str]:
    from mlcycle.config import days_between

    return days_between(*first_last)


# -- the jobs, each in a process of its own ------------------------------------------------------


def session(master: str, name: str):
    """The job's session; in-process (``--in-process``), the caller's session as it is."""
    from pyspark.sql import SparkSession

    from mlcycle.config import CODEGEN_CACHE

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = (
        SparkSession.builder.master(master)
        .appName(name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "32")  # coalesced by adaptive execution
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.log.level", "WARN")
        .config(map=CODEGEN_CACHE)  # as the platform's sessions
    )
    if master.startswith("spark://"):
        builder = builder.config("spark.executor.memory", EXECUTOR_MEMORY).config("spark.executor.cores", "1")
    else:
        builder = builder.config("spark.driver.memory", LOCAL_DRIVER_MEMORY)
    return builder.getOrCreate()


def features_out(args, k: int, engine: str) -> Path:
    return Path(args.work) / f"x{k}" / "out" / engine / "features"


def single_machine_features(args, k: int, engine: str) -> dict:
    root, out = size_root(args, k), features_out(args, k, engine)
    days = days_of(args.year)
    planes_csv = root / "reference" / "planes" / "planes.csv"
    t0 = time.perf_counter()
    if engine == "pandas":
        import pandas as pd

        from bench.pandas_features import build_days

        flights = pd.read_parquet(root / "validated" / "flights", columns=FLIGHT_COLUMNS)
        weather = pd.read_parquet(root / "validated" / "weather", columns=WEATHER_COLUMNS)
        planes = pd.read_csv(planes_csv, na_values="NA", keep_default_na=False)
        table = build_days(flights, weather, days, planes)
        table.assign(ds=table["ds"].dt.strftime("%Y-%m-%d")).to_parquet(
            out, partition_cols=["ds"], index=False
        )
    else:
        import polars as pl

        from bench.polars_features import build_days

        def scan(dataset: str, columns: list[str]):
            frame = pl.scan_parquet(root / "validated" / dataset / "**" / "*.parquet", hive_partitioning=True)
            return frame.with_columns(pl.col("ds").cast(pl.Utf8).str.to_date()).select(columns)

        planes = pl.read_csv(planes_csv, null_values="NA").lazy()
        table = build_days(scan("flights", FLIGHT_COLUMNS), scan("weather", WEATHER_COLUMNS), days, planes)
        table.with_columns(pl.col("ds").dt.to_string("%Y-%m-%d")).write_parquet(out, partition_by="ds")
    rows = len(table)
    return {"seconds": time.perf_counter() - t0, "rows": rows}


def spark_job(args, k: int, engine: str, job: str, master: str) -> dict:
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    root, work = size_root(args, k), Path(args.work) / f"x{k}"
    started = SparkSession.getActiveSession() is None  # in-process, the caller's session stays up
    spark = session(master, f"scale {job} x{k} {engine}")
    t0 = time.perf_counter()
    if job == "features":
        from spark_jobs.flights.days import build_range

        rows, _, _ = build_range(spark, str(root), days_of(args.year))
        out = features_out(args, k, engine)
        rows.write.partitionBy("ds").parquet(str(out))
        count = spark.read.parquet(str(out)).count()
    else:
        from mlcycle.specs import find_model, pipeline_module
        from spark_jobs.common import read_partitions

        model_spec = find_model("air_time")
        if job == "training":
            train = read_partitions(spark, str(work), "features", days_of(args.train))
            train = train.where(F.col(model_spec.label).isNotNull())
            pipeline = pipeline_module(model_spec).make_pipeline(model_spec)
            forest = pipeline.getStages()[-1]
            forest.setNumTrees(FORESTS[args.forest]["numTrees"])
            forest.setMaxDepth(FORESTS[args.forest]["maxDepth"]).setMinInstancesPerNode(5)
            # A tree needs a bin per value of a categorical feature: the model's 160 cover the real
            # year's carriers and airports, not those of ten or thirty times as many airlines.
            categorical = [c for c in model_spec.features if c in model_spec.usecase.categorical]
            values = train.agg(*[F.count_distinct(c).alias(c) for c in categorical]).first()
            forest.setMaxBins(max(forest.getMaxBins(), max(values) + 1))
            model = pipeline.fit(train)
            model.write().overwrite().save(str(work / "out" / engine / "model"))
            count = train.count()
        else:
            from pyspark.ml import PipelineModel

            from spark_jobs.scoring import label_predictions

            model = PipelineModel.load(str(work / "out" / engine / "model"))
            scored = model.transform(read_partitions(spark, str(work), "features", days_of(args.score)))
            out = work / "out" / engine / "predictions"
            label_predictions(
                scored, model_spec, model_name="scale", model_version="1", airflow_run_id="scale"
            ).write.mode("overwrite").partitionBy("ds").parquet(str(out))
            count = spark.read.parquet(str(out)).count()
    seconds = time.perf_counter() - t0
    if started:
        spark.stop()
    return {"seconds": seconds, "rows": count}


def run_job(args) -> dict:
    k, engine, job = args.sizes[0], args.engine, args.job
    out = features_out(args, k, engine)
    if job == "features":
        shutil.rmtree(out, ignore_errors=True)
    if engine in ("pandas", "polars"):
        return single_machine_features(args, k, engine)
    return spark_job(args, k, engine, job, args.master)


# -- the driver of the benchmark -----------------------------------------------------------------


def _rss(pids) -> int:
    import psutil

    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def _sample(proc: subprocess.Popen, peaks: dict[str, float]) -> None:
    import psutil

    try:
        root = psutil.Process(proc.pid)
        tree = [root.pid, *(p.pid for p in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return
    peaks["driver"] = max(peaks.get("driver", 0), _rss(tree))
    for p in psutil.process_iter(["cmdline"]):
        if "CoarseGrainedExecutorBackend" in " ".join(p.info["cmdline"] or []):
            key = f"executor {p.pid}"
            peaks[key] = max(peaks.get(key, 0), _rss([p.pid]))


OOM_SIGNS = ("MemoryError", "OutOfMemoryError", "Cannot allocate memory", "memory allocation of")


def measure_here(args, k: int, engine: str, job: str) -> dict:
    """A Spark job on this process's session (``--in-process``): its record, memory being this
    process's (its Python and its JVM) sampled while the job runs."""
    import threading

    peaks: dict[str, float] = {}
    done = threading.Event()

    def sample() -> None:
        import psutil

        me = psutil.Process()
        while not done.wait(0.2 if peaks else 0):
            tree = [me.pid, *(p.pid for p in me.children(recursive=True))]
            peaks["driver"] = max(peaks.get("driver", 0), _rss(tree))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = run_job(argparse.Namespace(**{**vars(args), "sizes": [k], "engine": engine, "job": job}))
    finally:
        done.set()
        sampler.join()
    record = {"size": k, "engine": engine, "job": job, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    record["forest"] = args.forest
    record.update(driver_mb=round(peaks.get("driver", 0) / 2**20), executor_mb=None, status="ok", **result)
    return record


def measure(args, k: int, engine: str, job: str, master: str) -> dict:
    """One job in a process of its own: its record (time, rows, peaks, how it ended)."""
    if args.in_process and engine == "spark-local":
        return measure_here(args, k, engine, job)
    cmd = [sys.executable, __file__, "--job", job, "--engine", engine, "--sizes", str(k), "--master", master]
    cmd += ["--source", args.source, "--work", args.work, "--year", *args.year]
    cmd += ["--train", *args.train, "--score", *args.score, "--forest", args.forest]
    log = Path(args.work) / "logs" / f"x{k}-{engine}-{job}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    peaks: dict[str, float] = {}
    started = time.monotonic()
    with log.open("w") as err:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO, start_new_session=True
        )
        timed_out = False
        while proc.poll() is None:
            _sample(proc, peaks)
            if time.monotonic() - started > args.timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                timed_out = True
                break
            time.sleep(0.2)
    out = proc.stdout.read()
    record = {"size": k, "engine": engine, "job": job, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    record["forest"] = args.forest
    executors = [v for key, v in peaks.items() if key.startswith("executor")]
    record["driver_mb"] = round(peaks.get("driver", 0) / 2**20)
    record["executor_mb"] = round(max(executors) / 2**20) if executors else None
    text = log.read_text(errors="replace")
    if timed_out:
        record.update(status=f"over {args.timeout:.0f} s", seconds=None, rows=None)
    elif proc.returncode != 0:
        oom = proc.returncode in (-9, 137) or any(sign in text for sign in OOM_SIGNS)
        record.update(status="out of memory" if oom else f"failed (exit {proc.returncode}): see {log}")
        record.update(seconds=None, rows=None)
    else:
        record.update(status="ok", **json.loads(out.strip().splitlines()[-1]))
    return record


def ensure_source(args) -> None:
    """The validated year under ``--source``: landed and gated by one range job when asked. A day
    the gate holds stays out, as in production (2013-12-31: the upstream has no weather for it)."""
    root = Path(args.source)
    gated = root / "_GATED"
    if gated.exists():
        return
    days = days_of(args.year)
    if not args.make_source:
        if all((root / "validated" / "flights" / f"ds={d}").is_dir() for d in days):
            return
        raise SystemExit(f"{root} does not hold the validated days {days[0]}..{days[-1]}: add --make-source")
    from mlcycle.quality.gates import GATE_FAILED_EXIT
    from spark_jobs.flights.replay import land_days, load_reference

    load_reference(str(root))
    land_days(str(root), days)
    gate = [sys.executable, "-m", "spark_jobs.quality", "--start", days[0], "--end", days[-1]]
    done = subprocess.run([*gate, "--data-root", str(root)], cwd=REPO, capture_output=True, text=True)
    if done.returncode not in (0, GATE_FAILED_EXIT):
        raise SystemExit(f"the raw gate of {days[0]}..{days[-1]} failed:\n{done.stderr[-3000:]}")
    held = [d for d in days if not (root / "validated" / "flights" / f"ds={d}").is_dir()]
    print(
        f"source: {len(days) - len(held)} of {len(days)} days validated"
        + (f", held: {', '.join(held)}" if held else "")
    )
    gated.touch()


def ensure_size(args, k: int) -> None:
    """Size ``k`` written once by ``bench/scale_data.py``; its rows and bytes kept beside it."""
    if k == 1:
        target = Path(args.work) / "x1"
        if not (target / "sizes.json").exists():
            from bench.scale_data import dataset_sizes

            target.mkdir(parents=True, exist_ok=True)
            (target / "sizes.json").write_text(
                json.dumps(dataset_sizes(Path(args.source), days_of(args.year)))
            )
        return
    target = Path(args.work) / f"x{k}"
    if (target / "sizes.json").exists():
        return
    from bench import scale_data

    shutil.rmtree(target, ignore_errors=True)
    sizes = scale_data.main(
        ["--data-root", args.source, "--out", str(target), "--copies", str(k)]
        + ["--first-day", args.year[0], "--last-day", args.year[1]]
    )
    (target / "sizes.json").write_text(json.dumps(sizes))


def keep_features(args, k: int, engine: str) -> None:
    """The first Spark engine's feature table of a size is the one training and scoring read."""
    kept = Path(args.work) / f"x{k}" / "features"
    made = features_out(args, k, engine)
    if not kept.exists() and made.exists():
        made.rename(kept)


def compare(args, k: int, engine: str) -> str:
    """The engine's feature table against Spark's: all days at size 1, a sample above."""
    import pandas as pd

    days = days_of(args.year)
    if k > 1:
        days = days[:: max(1, len(days) // 12)]  # about a day a month
    theirs = features_out(args, k, engine)

    def read(base: Path) -> pd.DataFrame:
        frames = [pd.read_parquet(base / f"ds={d}").assign(ds=d) for d in days if (base / f"ds={d}").exists()]
        frame = pd.concat(frames, ignore_index=True).sort_values(["ds", "flight_id"]).reset_index(drop=True)
        for column in frame.select_dtypes(include="object").columns:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
        return frame

    ours = read(Path(args.work) / f"x{k}" / "features")
    got = read(theirs)[list(ours.columns)]
    pd.testing.assert_frame_equal(got, ours, check_dtype=False, check_exact=False, rtol=1e-9)
    return f"{engine} x{k}: the same table as Spark's on {len(days)} days ({len(ours):,} rows)"


def summary(results: list[dict], sizes: dict[int, dict]) -> None:
    ok: dict[tuple, list[dict]] = {}
    stopped: dict[tuple, str] = {}
    for r in results:
        key = (r["job"], r["engine"], r["size"])
        if r["status"] == "ok":
            ok.setdefault(key, []).append(r)
        else:
            stopped[key] = r["status"]
    stopped = {key: status for key, status in stopped.items() if key not in ok}  # later runs went through

    def med(key, field):
        values = [r[field] for r in ok.get(key, []) if r.get(field) is not None]
        return statistics.median(values) if values else None

    print("\ninput sizes")
    for k in sorted(sizes):
        print(
            f"  x{k:<3d} "
            + "; ".join(f"{n} {r:,} rows, {b / 2**20:,.1f} MiB" for n, (r, b) in sizes[k].items())
        )
    print(f"\n{'job':9} {'engine':16} {'size':>5} {'runs':>4} {'median s':>9} {'/ x1':>6} {'rows':>12} "
          f"{'driver MB':>9} {'executor MB':>11}  stopped")  # fmt: skip
    for key in sorted({*ok, *stopped}, key=lambda t: (JOBS.index(t[0]), ENGINES.index(t[1]), t[2])):
        job, engine, k = key
        seconds, base = med(key, "seconds"), med((job, engine, 1), "seconds")
        ratio = f"{seconds / base:6.2f}" if seconds and base else "     -"
        ex = med(key, "executor_mb")
        print(
            f"{job:9} {engine:16} x{k:<4d} {len(ok.get(key, [])):4d} "
            + (f"{seconds:9.1f}" if seconds else "        -")
            + f" {ratio} {med(key, 'rows') or 0:12,.0f} {med(key, 'driver_mb') or 0:9,.0f} "
            + (f"{ex:11,.0f}" if ex else "          -")
            + f"  {stopped.get(key, '')}"
        )
    print("\ntargets")
    top = max(sizes) if sizes else None
    for job in JOBS:
        for engine in SPARK_ENGINES:
            a, b = med((job, engine, 1), "seconds"), med((job, engine, top), "seconds")
            if a and b and top > 1:
                print(
                    f"  {job} on {engine}: x{top} took {b / a:.2f}x the time of x1 (target: at most {top}x)"
                )
        a, b = med((job, "spark-2-workers", 1), "driver_mb"), med((job, "spark-2-workers", top), "driver_mb")
        if a and b and top > 1:
            print(
                f"  {job}: the 2-worker cluster's driver peak x{top} / x1 = {b / a:.2f} (target: at most 1.2)"
            )
        one, two = med((job, "spark-1-worker", top), "seconds"), med((job, "spark-2-workers", top), "seconds")
        if one and two:
            print(f"  {job} at x{top}: 2 workers {one / two:.2f}x faster than 1 (target: at least 1.7x)")
    for k in sorted(sizes):
        spark = med(("features", "spark-local", k), "seconds")
        for engine in ("pandas", "polars"):
            own = med(("features", engine, k), "seconds")
            if spark and own:
                faster = f"{spark / own:.2f}x faster" if own < spark else f"{own / spark:.2f}x slower"
                print(
                    f"  features x{k}: {engine} {faster} than Spark local[2] ({own:.1f} s against {spark:.1f} s)"
                )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="a data root holding the validated year")
    parser.add_argument("--make-source", action="store_true", help="land and gate the year there first")
    parser.add_argument("--work", default=str(REPO / ".mlcycle-bench" / "scale"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--jobs", nargs="+", default=list(JOBS), choices=JOBS)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds a job may take")
    parser.add_argument("--year", nargs=2, default=["2013-01-01", "2013-12-31"], metavar=("FIRST", "LAST"))
    parser.add_argument("--train", nargs=2, default=["2013-01-01", "2013-03-31"], metavar=("FIRST", "LAST"))
    parser.add_argument("--score", nargs=2, default=["2013-04-01", "2013-04-30"], metavar=("FIRST", "LAST"))
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run spark-local's jobs on this process's session, one after the other, their memory "
        "this process's (a smoke run: no JVM start per job, the figures not those of a fresh process)",
    )
    parser.add_argument(
        "--forest",
        choices=list(FORESTS),
        default="full",
        help="the forest trained and scored with: the model's deeper one (20 trees of depth 10) or "
        "its smallest grid's (5 trees of depth 4: a smoke run)",
    )
    parser.add_argument("--job", choices=JOBS, help=argparse.SUPPRESS)
    parser.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--master", default="local[2]", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.source, args.work = str(Path(args.source).resolve()), str(Path(args.work).resolve())
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    if args.job:
        print(json.dumps(run_job(args)), flush=True)
        # The record is out: the interpreter's teardown is not part of the job (pyarrow's threads
        # have aborted it after a large pandas write: "terminate called without an active exception").
        os._exit(0)

    Path(args.work).mkdir(parents=True, exist_ok=True)
    ensure_source(args)
    for k in args.sizes:
        ensure_size(args, k)
    results_file = Path(args.work) / "results.jsonl"
    for r in range(args.repeat):
        for engine in args.engines:
            cluster, master = None, "local[2]"
            if engine in WORKERS:
                from mlcycle.devstack.spark_cluster import StandaloneCluster

                cluster = StandaloneCluster(
                    home=Path(args.work) / "cluster", workers=WORKERS[engine], cores=1, memory="7g"
                ).start()
                master = cluster.master_url
            try:
                for k in args.sizes if r % 2 == 0 else args.sizes[::-1]:
                    jobs = ["features"] if engine in ("pandas", "polars") else args.jobs
                    for job in jobs:
                        if job != "features" and not (Path(args.work) / f"x{k}" / "features").exists():
                            print(
                                f"x{k} {engine} {job}: no feature table of x{k} yet (run a Spark features job)"
                            )
                            continue
                        record = measure(args, k, engine, job, master)
                        record["round"] = r
                        with results_file.open("a") as f:
                            f.write(json.dumps(record) + "\n")
                        took = (
                            f"{record['seconds']:8.1f} s"
                            if record["seconds"] is not None
                            else record["status"]
                        )
                        print(f"x{k:<3d} {engine:16s} {job:9s} {took}  driver {record['driver_mb']:,} MB"
                              f"  executor {record['executor_mb'] or '-'} MB", flush=True)  # fmt: skip
                        if job == "features" and record["status"] == "ok":
                            if engine in SPARK_ENGINES:
                                keep_features(args, k, engine)
                                shutil.rmtree(features_out(args, k, engine), ignore_errors=True)
            finally:
                if cluster is not None:
                    cluster.stop()
    # pandas' and Polars' tables against Spark's, once a Spark engine has made that size's table
    for k in args.sizes:
        for engine in ("pandas", "polars"):
            if features_out(args, k, engine).exists():
                if (Path(args.work) / f"x{k}" / "features").exists():
                    print(compare(args, k, engine))
                    shutil.rmtree(features_out(args, k, engine))
                else:
                    print(f"{engine} x{k}: kept, compared once a Spark engine has made the table of x{k}")
    results = [json.loads(line) for line in results_file.read_text().splitlines() if line.strip()]
    # training and scoring figures of this run's forest only (records before the option: the full one)
    results = [
        r for r in results if r["job"] == "features" or r.get("forest", "full") == args.forest
    ]
    if args.forest != "full":
        print(f"\ntraining and scoring with the {args.forest} forest: {FORESTS[args.forest]}")
    sizes = {}
    for k in {r["size"] for r in results}:
        found = Path(args.work) / f"x{k}" / "sizes.json"
        if found.exists():
            sizes[k] = json.loads(found.read_text())
    summary(results, sizes)


if __name__ == "__main__":
    main()
