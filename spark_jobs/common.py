"""What every Spark entry point shares: the session, partition paths, partition writes."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from mlcycle.config import partition_path


def get_spark(app_name: str):
    """The session of a job. The master comes from spark-submit (the Airflow ``spark_default``
    connection); run directly with python, pyspark falls back to local mode."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def dataset_path(data_root: str, dataset: str) -> str:
    return f"{data_root}/{dataset}"


def read_partitions(spark, data_root: str, dataset: str, days: Iterable[str]):
    """Read the given ``ds=`` partitions of a parquet dataset, keeping ``ds`` as a column."""
    base = dataset_path(data_root, dataset)
    paths = [partition_path(data_root, dataset, d) for d in days]
    return spark.read.option("basePath", base).parquet(*paths)


def existing_partitions(spark, data_root: str, dataset: str, days: Iterable[str]) -> list[str]:
    """The days among ``days`` that have a ``ds=`` partition of ``dataset``."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    found = []
    for day in days:
        path = jvm.org.apache.hadoop.fs.Path(partition_path(data_root, dataset, day))
        if path.getFileSystem(conf).exists(path):
            found.append(day)
    return found


def overwrite_partitions(df, data_root: str, dataset: str) -> None:
    """Replace exactly the ``ds`` partitions present in ``df`` (dynamic partition overwrite):
    other partitions stay, and a failed write leaves the previous partition in place."""
    (
        df.write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("ds")
        .parquet(dataset_path(data_root, dataset))
    )


def delete_partition(spark, data_root: str, dataset: str, ds: str) -> None:
    """Remove one ``ds=`` partition if it exists (through Hadoop's filesystem, as Spark wrote it)."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(partition_path(data_root, dataset, ds))
    filesystem = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if filesystem.exists(path):
        filesystem.delete(path, True)


def run_gated_day(job: str, ds: str, body) -> tuple[int, object]:
    """Run ``body(spark)`` for one day of a gated job. A gate that rejects the day is not a
    crash: its message goes to stderr and the exit code is ``GATE_FAILED_EXIT``. The session is
    stopped at the end unless the caller already had one running (tests run jobs in-process)."""
    from pyspark.sql import SparkSession

    from mlcycle.gates import GATE_FAILED_EXIT, GateFailed

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
