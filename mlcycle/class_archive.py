"""A class-data archive of the Spark JVM: the classes a Spark process loads, parsed and laid out once
so that every later JVM maps them instead of loading them again (the JDK's class-data sharing).

A local Spark process spends most of its first seconds loading classes: a session and a first small
job took 4.8 to 5.6 s and 2.8 to 3.0 s here, 2.4 s and 1.1 s with this archive
(``bench/class_archive.py`` measures a fresh process with and without it). The archive is made once
per environment, by ``make venv`` (``python -m mlcycle.class_archive``), from a JVM that runs a
small job of every kind the platform runs (CSV read, partitioned parquet written and read,
aggregates, windows, joins, a cache, a Spark ML pipeline fitted, saved, loaded and applied), and
kept beside the environment's own packages: it holds classes of that environment's Spark jars and
of its Java runtime, and a JVM of another one does not use it (the JVM checks, and starts as it
would have). Its warnings are silenced: a JVM that cannot use it says so on its standard output,
which a launcher reads.

Used by the Spark processes the platform starts (``mlcycle.config.spark_conf``: the drivers of
``spark-submit``, the Spark Connect server) and by the tests' sessions. ``MLCYCLE_CLASS_ARCHIVE=0``
turns it off.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARCHIVE = Path(sys.prefix) / "share" / "mlcycle" / "spark-classes.jsa"
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"


def java_options(env=None) -> str:
    """The JVM options that map the archive, or "" (none made, or ``MLCYCLE_CLASS_ARCHIVE=0``)."""
    from mlcycle.config import switched_on

    if not switched_on("MLCYCLE_CLASS_ARCHIVE", env) or not ARCHIVE.is_file():
        return ""
    return f"-XX:SharedArchiveFile={ARCHIVE} {QUIET}"


def with_archive(options: str, env=None) -> str:
    """``options`` (JVM options) with the archive's (once: options that map it already are kept)."""
    if "-XX:SharedArchiveFile=" in options:
        return options.strip()
    return " ".join(filter(None, [options.strip(), java_options(env)]))


def build(target: Path = ARCHIVE) -> Path:
    """The archive, made from a JVM that runs ``workload`` and written where ``java_options``
    finds it (replacing the one there only once the new one is whole)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        made = Path(tmp) / "spark-classes.jsa"
        env = {**os.environ, "MLCYCLE_CLASS_ARCHIVE": "0", "PYSPARK_PYTHON": sys.executable}
        env.pop("JAVA_TOOL_OPTIONS", None)  # the launcher's own JVM writes none
        done = subprocess.run(
            [sys.executable, "-m", "mlcycle.class_archive", "--workload", str(made), tmp],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 or not made.is_file():
            raise SystemExit(
                f"the class-data archive was not made ({done.returncode}):\n{done.stderr[-3000:]}"
            )
        os.replace(made, target)
    return target


def workload(archive: str, work: str) -> None:
    """A small job of every kind the platform runs, in a local session whose JVM writes the archive
    of the classes it loaded when it exits."""
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.regression import RandomForestRegressor
    from pyspark.sql import SparkSession, Window
    from pyspark.sql import functions as F

    from spark_jobs.pipelines import tabular_stages

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("mlcycle-class-archive")
        .config("spark.driver.extraJavaOptions", f"-XX:ArchiveClassesAtExit={archive}")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    csv = Path(work, "raw.csv")
    lines = ["ds,key,kind,value,at"] + [
        f"2013-01-0{1 + i % 3},k{i % 17},{'ab'[i % 2]},{i * 1.5},2013-01-01 0{i % 10}:00:00" for i in range(400)
    ]
    csv.write_text("\n".join([*lines, "2013-01-01,bad,a,not a number,x"]) + "\n")
    raw = (
        spark.read.schema("ds string, key string, kind string, value double, at timestamp, _corrupt_record string")
        .option("header", True)
        .option("enforceSchema", False)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt_record")
        .csv(str(csv))
        .cache()
    )
    raw.where(F.col("_corrupt_record").isNotNull()).count()
    good = raw.where(F.col("_corrupt_record").isNull()).drop("_corrupt_record")
    good.write.mode("overwrite").partitionBy("ds").parquet(f"{work}/table")
    table = spark.read.parquet(f"{work}/table").withColumn("ds", F.to_date("ds"))
    per_key = table.groupBy("key").agg(F.avg("value").alias("mean"), F.count(F.lit(1)).alias("n"))
    latest = Window.partitionBy("key").orderBy(F.col("at").desc())
    rows = (
        table.withColumn("rank", F.row_number().over(latest))
        .join(per_key, "key", "left")
        .join(F.broadcast(per_key.select("key").distinct()), "key", "left_semi")
        .withColumn("label", F.col("value") / F.lit(2.0))
    )
    rows.groupBy("ds").agg(F.sum("n"), F.max("mean"), F.min("rank")).collect()
    rows.unionByName(rows).coalesce(1).write.mode("overwrite").partitionBy("ds").parquet(f"{work}/union")
    rows.toPandas()
    forest = RandomForestRegressor(featuresCol="features", labelCol="label", numTrees=3, maxDepth=3, seed=1)
    model = Pipeline(stages=[*tabular_stages(["kind"], ["value", "mean"]), forest]).fit(rows)
    model.write().overwrite().save(f"{work}/model")
    PipelineModel.load(f"{work}/model").transform(rows).select("prediction").collect()
    spark.stop()


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--workload"]:
        workload(args[1], args[2])
        return 0
    began = time.monotonic()
    path = build()
    print(f"class-data archive of the Spark JVM: {path} ({path.stat().st_size / 1e6:.0f} MB, "
          f"{time.monotonic() - began:.0f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
