"""Score one day of features with one registered model version (Spark entry point).

Every prediction row carries the model name and version that made it and the Airflow run that
wrote it, so monitoring and audits never have to guess. The predictions pass a gate before they
are written (one per scheduled flight, no nulls, values in a sane range; verdict under
``gates/predictions/ds=D.json``); then only the ``ds=D`` partition of ``predictions`` is replaced.
A rejected day writes nothing and exits with ``GATE_FAILED_EXIT``.
"""

from __future__ import annotations

import argparse
import sys

from mlcycle.config import REPO_ROOT
from mlcycle.gates import docs_dir, enforce, failure_message, result_path, run_suite, write_result
from spark_jobs.common import loaded_model, overwrite_partitions, read_partitions, run_gated_day
from spark_jobs.flights import project

SUITE = REPO_ROOT / "expectations" / project.NAME / "predictions.json"

PREDICTION_COLUMNS = (
    project.KEY,
    "ds",
    *project.SLICES,
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
        *(F.col(c) for c in project.SLICES),
        F.col("prediction").cast("double").alias("prediction"),
        F.lit(model_name).alias("model_name"),
        F.lit(str(model_version)).alias("model_version"),
        F.lit(airflow_run_id).alias("airflow_run_id"),
    )


def score(spark, args) -> int:
    with loaded_model(spark, args.model_uri, args.data_root) as model:
        return _score(spark, args, model)


def _score(spark, args, model) -> int:
    features = read_partitions(spark, args.data_root, "features", [args.ds])
    flights = features.count()
    predictions = label_predictions(
        model.transform(features),
        model_name=args.model_name,
        model_version=args.model_version,
        airflow_run_id=args.airflow_run_id,
    ).cache()
    try:
        rows = predictions.count()
        result = run_suite(
            predictions,
            str(SUITE),
            name="predictions",
            docs_dir=docs_dir(args.data_root, "predictions", args.ds),
            parameters={"flights": flights},
        )
        partition = f"ds={args.ds}"
        write_result(
            result,
            result_path(args.data_root, "predictions", args.ds),
            gate="predictions",
            ds=args.ds,
            rows=rows,
            flights=flights,
            model_uri=args.model_uri,
            model_name=args.model_name,
            model_version=str(args.model_version),
            message=None if result.success else failure_message(result, partition),
        )
        enforce(result, partition=partition)
        overwrite_partitions(predictions, args.data_root, "predictions")
    finally:
        predictions.unpersist()
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
    args = parse_args(argv)
    code, _ = run_gated_day(f"score-{args.model_name}", args.ds, lambda spark: score(spark, args))
    return code


if __name__ == "__main__":
    sys.exit(main())
