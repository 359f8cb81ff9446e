"""What every Spark entry point shares: the session, partition paths, partition writes."""

from __future__ import annotations

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


def overwrite_partitions(df, data_root: str, dataset: str) -> None:
    """Replace exactly the ``ds`` partitions present in ``df`` (dynamic partition overwrite):
    other partitions stay, and a failed write leaves the previous partition in place."""
    (
        df.write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("ds")
        .parquet(dataset_path(data_root, dataset))
    )
