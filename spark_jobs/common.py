"""What every Spark entry point shares: the session, partition paths, partition writes, and a
registered Spark ML model written and read on either kind of session."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

from mlcycle.config import partition_path


def get_spark(app_name: str):
    """The session of a job. Under spark-submit the master comes from the Airflow
    ``spark_default`` connection; with ``SPARK_REMOTE=sc://host:port`` set (the ``spark_connect``
    connection, see ``mlcycle.orchestration.operators``) the same code runs on a long-lived Spark Connect
    server instead; run directly with python, pyspark falls back to local mode."""
    import os

    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if not os.environ.get("SPARK_REMOTE"):  # a server's own setting, not a session's
        builder = builder.config("spark.ui.showConsoleProgress", "false")
    return builder.getOrCreate()


def dataset_path(data_root: str, dataset: str) -> str:
    return f"{data_root}/{dataset}"


def read_partitions(spark, data_root: str, dataset: str, days: Iterable[str]):
    """Read the given ``ds=`` partitions of a parquet dataset, keeping ``ds`` as a column."""
    base = dataset_path(data_root, dataset)
    paths = [partition_path(data_root, dataset, d) for d in days]
    return spark.read.option("basePath", base).parquet(*paths)


def with_label(features, model):
    """The feature rows with the model's label (``mlcycle.specs.Model``): an outcome column of the
    table as it is, or the expression of its ``[label_from]`` (null while the outcome is unknown)."""
    from pyspark.sql import functions as F

    if model.label_expression is None:
        return features
    known = F.lit(True)
    for column in model.label_columns:
        known = known & F.col(column).isNotNull()
    return features.withColumn(model.label, F.when(known, F.expr(model.label_expression)).cast("double"))


def is_connect(spark) -> bool:
    """Whether ``spark`` is a Spark Connect session (no JVM in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def _staging(data_root: str) -> str:
    """A fresh folder under ``<data_root>/tmp``: a Spark Connect server and this process both see
    the data root, so a model passes between them there."""
    staging = Path(data_root) / "tmp"
    staging.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix=".model-", dir=staging)


@contextmanager
def loaded_model(spark, model_uri: str, data_root: str):
    """A registered Spark ML pipeline (``models:/...`` or ``runs:/...``), loaded into ``spark``.
    MLflow's Spark flavour loads through a JVM in this process; on a Spark Connect session the
    model's ``sparkml`` folder is downloaded under the data root and loaded by the server."""
    import mlflow

    if not is_connect(spark):
        yield mlflow.spark.load_model(model_uri)
        return
    from pyspark.ml import PipelineModel

    local = _staging(data_root)
    try:
        path = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=local)
        model = PipelineModel.load(str(Path(path) / SPARK_MODEL_DATA))
        _LOADED.append(model)
        yield model
    finally:
        shutil.rmtree(local, ignore_errors=True)


# The models a job loaded on a Spark Connect server, referenced until ``run_gated_day`` has stopped
# its session. The server keeps a loaded pipeline's stages as objects of the session, and drops
# them all when the session ends; a client that lets go of the model first asks the server to
# drop each of them, one round trip each (44 for the flights pipeline).
_LOADED: list = []


SPARK_MODEL_DATA = "sparkml"  # where MLflow's Spark flavour keeps the pipeline in a logged model


def log_model(spark, model, name: str, *, data_root: str, signature, pip_requirements: list[str]) -> str:
    """Log a fitted pipeline to the active MLflow run as MLflow's Spark flavour (``MLmodel``,
    ``sparkml/``, the environment files); its ``runs:/<run>/<name>`` URI.

    MLflow's own ``log_model`` copies the saved pipeline through a JVM in this process, which a
    Spark Connect client has not: there, the server writes the pipeline under the data root, and
    the flavour's files are written beside it here, the same files ``mlflow.spark.log_model``
    writes, so either session loads the model back (``loaded_model``)."""
    import mlflow

    run_id = mlflow.active_run().info.run_id
    if not is_connect(spark):
        mlflow.spark.log_model(model, name, signature=signature, pip_requirements=pip_requirements)
        return f"runs:/{run_id}/{name}"
    from mlflow.models import Model
    from mlflow.spark import _save_model_metadata

    local = _staging(data_root)
    try:
        model.write().overwrite().save(str(Path(local) / SPARK_MODEL_DATA))
        _save_model_metadata(
            local,
            model,
            Model(artifact_path=name, run_id=run_id),
            conda_env=None,
            code_paths=None,
            signature=signature,
            pip_requirements=pip_requirements,
        )
        mlflow.log_artifacts(local, name)
    finally:
        shutil.rmtree(local, ignore_errors=True)
    return f"runs:/{run_id}/{name}"


class _ArrowFiles:
    """Files through pyarrow, for a Spark Connect session (which has no Hadoop filesystem in the
    client): local paths, ``file://``, and the object stores pyarrow knows (``s3://``, ``gs://``)."""

    def __init__(self, path: str):
        from pyarrow import fs

        self._fs, self._path = fs.FileSystem.from_uri(path if "://" in path else f"file://{path}")
        self._type = self._fs.get_file_info(self._path).type
        self._kinds = fs.FileType

    def exists(self) -> bool:
        return self._type != self._kinds.NotFound

    def is_file(self) -> bool:
        return self._type == self._kinds.File

    def delete(self) -> None:
        if self._type == self._kinds.Directory:
            self._fs.delete_dir(self._path)
        elif self._type == self._kinds.File:
            self._fs.delete_file(self._path)


class _HadoopFiles:
    """Files through the session's Hadoop filesystem, as Spark reads and writes them."""

    def __init__(self, spark, path: str):
        jvm = spark.sparkContext._jvm
        self._path = jvm.org.apache.hadoop.fs.Path(path)
        self._fs = self._path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def exists(self) -> bool:
        return self._fs.exists(self._path)

    def is_file(self) -> bool:
        return self._fs.isFile(self._path)

    def delete(self) -> None:
        if self._fs.exists(self._path):
            self._fs.delete(self._path, True)


def files(spark, path: str):
    """One path, checked or removed through the filesystem the session can reach."""
    return _ArrowFiles(path) if is_connect(spark) else _HadoopFiles(spark, path)


def existing_partitions(spark, data_root: str, dataset: str, days: Iterable[str]) -> list[str]:
    """The days among ``days`` that have a ``ds=`` partition of ``dataset``."""
    return [day for day in days if files(spark, partition_path(data_root, dataset, day)).exists()]


def overwrite_partitions(df, data_root: str, dataset: str) -> None:
    """Replace exactly the ``ds`` partitions present in ``df`` (dynamic partition overwrite):
    other partitions stay, and a failed write leaves the previous partition in place."""
    (
        df.write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("ds")
        .parquet(dataset_path(data_root, dataset))
    )


def pinned(df):
    """``df`` computed once, now, and pinned for the job's later reads: a local checkpoint, which
    later plans read as a table (its lineage cut). What a cache would do, without what a cache
    leaves behind: a cached plan outlives the session that cached it on a long-lived Spark Connect
    server (every later query of every job is matched against it) when the job ends before it
    unpersists it, killed or timed out; a local checkpoint is the session's, and goes with it. On
    a Spark Connect server it is also the quicker of the two: a day's features job 1.33x quicker
    than with its views and rows cached, as fast on ``local[2]`` (``bench/feature_views.py --keep
    both``, docs/PERFORMANCE.md section 7)."""
    return df.localCheckpoint()


def side_by_side(*calls) -> list:
    """The results of ``calls`` (functions of no argument), each run in a thread of its own on
    the same session: independent Spark actions of a job (two datasets' gates, a day's metrics)
    whose fixed costs (planning, scheduling, a Connect round trip) overlap instead of adding up.
    Every call ends before this returns; the first one that failed (in order) raises. With
    ``MLCYCLE_SIDE_BY_SIDE=0``, one after the other."""
    from mlcycle.config import switched_on

    if len(calls) < 2 or not switched_on("MLCYCLE_SIDE_BY_SIDE"):
        return [call() for call in calls]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(calls)) as pool:
        running = [pool.submit(call) for call in calls]
    return [done.result() for done in running]


def delete_partition(spark, data_root: str, dataset: str, ds: str) -> None:
    """Remove one ``ds=`` partition if it exists."""
    files(spark, partition_path(data_root, dataset, ds)).delete()


def add_days_arguments(parser) -> None:
    """``--ds D`` (one day; repeated, those days), or ``--start D1 --end D2`` (every day from D1
    to D2, both included): the days a job works on."""
    import datetime as dt

    parser.add_argument(
        "--ds", type=dt.date.fromisoformat, action="append", help="day, YYYY-MM-DD (repeat it for more days)"
    )
    parser.add_argument("--start", type=dt.date.fromisoformat, help="first day of a range")
    parser.add_argument("--end", type=dt.date.fromisoformat, help="last day of a range (included)")


def days_of(args) -> list[str]:
    """The days named by ``add_days_arguments``'s options, in order; a usage error for anything
    but a day or a range whose end is not before its start."""
    from mlcycle.config import days_between

    if (args.ds is None) == (args.start is None or args.end is None) or (
        args.ds is not None and (args.start or args.end)
    ):
        raise SystemExit("give --ds DAY, or --start DAY --end DAY")
    if args.ds is not None:
        return sorted({day.isoformat() for day in args.ds})
    if args.end < args.start:
        raise SystemExit(f"--end {args.end} is before --start {args.start}")
    return days_between(args.start.isoformat(), args.end.isoformat())


def run_gated_day(job: str, ds: str, body) -> tuple[int, object]:
    """Run ``body(spark)`` for one day of a gated job. A gate that rejects the day is not a
    crash: its message goes to stderr and the exit code is ``GATE_FAILED_EXIT``. The session is
    stopped at the end unless the caller already had one running (tests run jobs in-process)."""
    from pyspark.sql import SparkSession

    from mlcycle.quality.gates import GATE_FAILED_EXIT, GateFailed

    owned = SparkSession.getActiveSession() is None
    spark = get_spark(f"{job} ds={ds}")
    try:
        return 0, body(spark)
    except GateFailed as failed:
        print(str(failed), file=sys.stderr)
        return GATE_FAILED_EXIT, None
    finally:
        if owned:
            spark.stop()
        _LOADED.clear()  # in a session still running (a caller's), each dropped by the server now
