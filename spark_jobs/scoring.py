"""Score one day of features with one registered version of a model (Spark entry point).

``--model`` names the model of the catalog (``usecases/<use case>/models/<model>``). Every
prediction row carries the model name and version that made it and the Airflow run that wrote
it, so monitoring and audits never have to guess; ``prediction`` is the estimate of a regression
and the chance of class 1 of a classification. The predictions pass the model's gate before they
are written (verdict under ``models/<model>/gates/predictions/ds=D.json``); then only the ``ds=D``
partition of the model's own ``models/<model>/predictions`` is replaced: another model's
predictions of the day are never touched. A rejected day writes nothing and exits with
``GATE_FAILED_EXIT``.

``--ds`` repeated (or ``--start``/``--end``) scores many days with the version in one job: one
transform, the predictions gate judged for every day in one pass, each day that passes written.
"""

from __future__ import annotations

import argparse
import sys

from mlcycle.config import model_root
from mlcycle.quality.by_day import gate_day
from mlcycle.quality.gates import docs_dir, enforce, failure_message, result_path, run_suite, write_result
from mlcycle.specs import find_model
from spark_jobs.common import (
    add_days_arguments,
    days_of,
    loaded_model,
    overwrite_partitions,
    read_partitions,
    run_gated_day,
)


def prediction_columns(model) -> tuple[str, ...]:
    """The columns of ``models/<model>/predictions/ds=D``."""
    return (
        model.usecase.key,
        "ds",
        *model.monitoring["slices"],
        "prediction",
        "model_name",
        "model_version",
        "airflow_run_id",
    )


def label_predictions(scored, model, *, model_name: str, model_version: str, airflow_run_id: str):
    """The ``predictions`` rows of a scored frame: key, day, the slicing columns, the estimate, and
    where it came from."""
    from pyspark.sql import functions as F

    key = model.usecase.key
    if model.task == "classification":
        from spark_jobs.metrics import with_probability

        scored = with_probability(scored).withColumn("prediction", F.col("_p"))
    return scored.select(
        F.col(key).cast("string").alias(key),
        F.col("ds"),
        *(F.col(c) for c in model.monitoring["slices"]),
        F.col("prediction").cast("double").alias("prediction"),
        F.lit(model_name).alias("model_name"),
        F.lit(str(model_version)).alias("model_version"),
        F.lit(airflow_run_id).alias("airflow_run_id"),
    )


def score(spark, args) -> int:
    with loaded_model(spark, args.model_uri, args.data_root) as fitted:
        days = getattr(args, "days", None) or [args.ds]
        if len(days) > 1:
            args.days = days
            return _score_days(spark, args, fitted)
        args.ds = days[0]
        return _score(spark, args, fitted)


def _score_days(spark, args, fitted) -> dict:
    """Score many days in one pass: one transform, the predictions gate judged for every day at
    once (``mlcycle.quality.by_day``; a held day again by GX, for its Data Docs), the days that
    pass written in one write. Returns (rows written per day, held days, days without features)."""
    from pyspark.sql import functions as F

    from mlcycle.quality.by_day import measure_days
    from spark_jobs.common import existing_partitions

    model = find_model(args.model)
    records = model_root(args.data_root, model.name)
    ready = existing_partitions(spark, args.data_root, "features", args.days)
    missing = [ds for ds in args.days if ds not in ready]
    if not ready:
        return {}, [], missing
    features = read_partitions(spark, args.data_root, "features", ready)
    flights = {
        r["d"]: int(r["n"])
        for r in features.groupBy(F.col("ds").cast("string").alias("d"))
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    }
    predictions = label_predictions(
        fitted.transform(features),
        model,
        model_name=model.registered_name,
        model_version=args.model_version,
        airflow_run_id=args.airflow_run_id,
    ).cache()
    suite = str(model.predictions_suite)
    try:
        parameters = {ds: {"flights": flights.get(ds, 0)} for ds in ready}
        measured = measure_days(predictions, suite, name="predictions", row_parameters=parameters)
        written, held = {}, []
        for ds in ready:
            result = measured.verdict(ds, parameters[ds])
            if not result.success:  # GX's own verdict, with the day's Data Docs
                result = run_suite(
                    predictions.where(F.col("ds") == F.lit(ds).cast("date")),
                    suite,
                    name="predictions",
                    docs_dir=docs_dir(args.data_root, f"predictions/{model.name}", ds),
                    parameters=parameters[ds],
                )
                held.append(ds)
            write_result(
                result,
                result_path(records, "predictions", ds),
                gate="predictions",
                ds=ds,
                rows=measured.rows_of(ds),
                flights=parameters[ds]["flights"],
                model_uri=args.model_uri,
                model=model.name,
                model_name=model.registered_name,
                model_version=str(args.model_version),
                message=None if result.success else failure_message(result, f"ds={ds}"),
            )
            if result.success:
                written[ds] = measured.rows_of(ds)
        if written:
            good = [F.lit(ds).cast("date") for ds in written]
            overwrite_partitions(predictions.where(F.col("ds").isin(good)), records, "predictions")
    finally:
        predictions.unpersist()
    return written, held, missing


def _score(spark, args, fitted) -> int:
    model = find_model(args.model)
    records = model_root(args.data_root, model.name)
    features = read_partitions(spark, args.data_root, "features", [args.ds])
    flights = features.count()
    predictions = label_predictions(
        fitted.transform(features),
        model,
        model_name=model.registered_name,
        model_version=args.model_version,
        airflow_run_id=args.airflow_run_id,
    ).cache()
    try:
        result, rows = gate_day(
            predictions,
            str(model.predictions_suite),
            name="predictions",
            ds=args.ds,
            docs_dir=docs_dir(args.data_root, f"predictions/{model.name}", args.ds),
            parameters={"flights": flights},
        )
        partition = f"ds={args.ds}"
        write_result(
            result,
            result_path(records, "predictions", args.ds),
            gate="predictions",
            ds=args.ds,
            rows=rows,
            flights=flights,
            model_uri=args.model_uri,
            model=model.name,
            model_name=model.registered_name,
            model_version=str(args.model_version),
            message=None if result.success else failure_message(result, partition),
        )
        enforce(result, partition=partition)
        overwrite_partitions(predictions, records, "predictions")
    finally:
        predictions.unpersist()
    written = read_partitions(spark, records, "predictions", [args.ds]).count()
    print(f"predictions ds={args.ds}: {written} rows from {args.model_uri}")
    return written


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_days_arguments(parser)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--model", required=True, help="the model of the catalog, e.g. air_time")
    parser.add_argument("--model-uri", required=True, help="models:/NAME/VERSION")
    parser.add_argument("--model-version", required=True)
    parser.add_argument("--airflow-run-id", required=True)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    args.days = days_of(args)
    what = args.days[0] if len(args.days) == 1 else f"{args.days[0]}..{args.days[-1]}"
    code, scored = run_gated_day(f"score-{args.model}", what, lambda spark: score(spark, args))
    if code or len(args.days) == 1:
        return code
    from mlcycle.quality.gates import GATE_FAILED_EXIT

    written, held, missing = scored
    for ds, rows in written.items():
        print(f"predictions ds={ds}: {rows} rows from {args.model_uri}")
    print(f"score {what}: {len(written)} of {len(args.days)} days written")
    if missing:
        print(f"not scored, no features: {', '.join(missing)}", file=sys.stderr)
    if held:
        print(f"held by the predictions gate: {', '.join(held)}", file=sys.stderr)
    return GATE_FAILED_EXIT if held else 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
