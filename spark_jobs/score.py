"""Score one day of features with one registered model version (spark-submit entry point).

Every prediction row carries the model name and version that made it and the Airflow run that
wrote it, so monitoring and audits never have to guess. Only the ``ds=D`` partition of
``predictions`` is replaced.
"""

from __future__ import annotations

import argparse
import sys

from spark_jobs.common import get_spark, overwrite_partitions, read_partitions
from spark_jobs.flights import project

PREDICTION_COLUMNS = (
    project.KEY,
    "ds",
    *project.CATEGORICAL,
    "prediction",
    "model_name",
    "model_version",
    "airflow_run_id",
)


def label_predictions(scored, *, model_name: str, model_version: str, airflow_run_id: str):
    """The ``predictions`` rows of a scored frame: key, day, the slicing columns, the estimate, and
    where it came from."""
    from pyspark.sql import functions as F

    return scored.select(
        F.col(project.KEY).cast("string").alias(project.KEY),
        F.col("ds"),
        *(F.col(c) for c in project.CATEGORICAL),
        F.col("prediction").cast("double").alias("prediction"),
        F.lit(model_name).alias("model_name"),
        F.lit(str(model_version)).alias("model_version"),
        F.lit(airflow_run_id).alias("airflow_run_id"),
    )


def score(args) -> int:
    import mlflow

    spark = get_spark(f"score-{args.model_name}-{args.ds}")
    features = read_partitions(spark, args.data_root, "features", [args.ds])
    model = mlflow.spark.load_model(args.model_uri)
    predictions = label_predictions(
        model.transform(features),
        model_name=args.model_name,
        model_version=args.model_version,
        airflow_run_id=args.airflow_run_id,
    )
    overwrite_partitions(predictions, args.data_root, "predictions")
    written = read_partitions(spark, args.data_root, "predictions", [args.ds]).count()
    print(f"predictions ds={args.ds}: {written} rows from {args.model_uri}")
    return written


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", required=True, help="day to score, YYYY-MM-DD")
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--model-uri", required=True, help="models:/NAME/VERSION")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--model-version", required=True)
    parser.add_argument("--airflow-run-id", required=True)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    score(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
