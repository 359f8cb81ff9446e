"""Compare one day of predictions with what actually happened (spark-submit entry point).

Writes, for the day:
- ``monitoring/ds=D``: one row per model version that scored the day (MAE, RMSE, bias, coverage);
- ``monitoring_carrier/ds=D``: the same per carrier;
- ``drift/ds=D``: the population stability index of each watched feature of the day against the
  training rows of each version (``spark_jobs.drift``; versions trained before profiles were kept
  have none).

It appends the day's figures to one MLflow run per model version, ``monitoring-<NAME>-v<VERSION>``,
at step = day of year: the MLflow UI then draws the error of a version over the season, and a
backfill of a day lands on the same step again.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime

from mlcycle.monitoring import monitoring_run_id
from spark_jobs import drift
from spark_jobs.common import get_spark, overwrite_partitions, read_partitions
from spark_jobs.flights import project

MONITORING_COLUMNS = (
    "ds",
    "model_name",
    "model_version",
    "n_predictions",
    "n_actuals",
    "mae",
    "rmse",
    "bias",
    "coverage",
)
MONITORED_METRICS = ("mae", "rmse", "bias", "coverage")
# The same per carrier: the carrier and its scheduled flights after the model.
CARRIER_COLUMNS = (*MONITORING_COLUMNS[:3], "carrier", "n_flights", *MONITORING_COLUMNS[3:])
DRIFT_COLUMNS = ("ds", "model_name", "model_version", "feature", "psi")


def daily_metrics(predictions, features):
    """One row per (model_name, model_version) of the day's predictions.

    ``n_actuals``, ``mae``, ``rmse`` and ``bias`` (mean prediction - actual) count the predicted
    flights whose actual value is known; ``coverage`` is the share of the day's flights (rows of
    ``features``) that got a prediction from that version. Error columns are null when no actual
    is known yet.
    """
    from pyspark.sql import functions as F

    day_flights = features.select(project.KEY).distinct().count()
    actuals = features.select(
        F.col(project.KEY), F.col(project.LABEL).cast("double").alias("_actual"), F.lit(True).alias("_known")
    )
    joined = predictions.join(actuals, on=project.KEY, how="left")
    err = F.col("prediction") - F.col("_actual")
    return (
        joined.groupBy("ds", "model_name", "model_version")
        .agg(
            F.count(F.lit(1)).alias("n_predictions"),
            F.count("_actual").alias("n_actuals"),
            F.avg(F.abs(err)).alias("mae"),
            F.sqrt(F.avg(err * err)).alias("rmse"),
            F.avg(err).alias("bias"),
            (
                F.countDistinct(F.when(F.col("_known"), F.col(project.KEY)))
                / F.lit(day_flights if day_flights else None).cast("double")
            ).alias("coverage"),
        )
        .select(
            F.col("ds"),
            F.col("model_name"),
            F.col("model_version").cast("string"),
            F.col("n_predictions").cast("long"),
            F.col("n_actuals").cast("long"),
            *(F.col(c).cast("double") for c in ("mae", "rmse", "bias", "coverage")),
        )
    )


def carrier_metrics(predictions, features):
    """One row per (model_name, model_version, carrier): errors as in ``daily_metrics``;
    ``coverage`` is the share of the carrier's flights of the day that version scored."""
    from pyspark.sql import functions as F

    flights = features.groupBy("carrier").agg(F.countDistinct(project.KEY).alias("n_flights"))
    actuals = features.select(F.col(project.KEY), F.col(project.LABEL).cast("double").alias("_actual"))
    err = F.col("prediction") - F.col("_actual")
    per_carrier = (
        predictions.join(actuals, on=project.KEY, how="left")
        .groupBy("ds", "model_name", "model_version", "carrier")
        .agg(
            F.count(F.lit(1)).alias("n_predictions"),
            F.count("_actual").alias("n_actuals"),
            F.avg(F.abs(err)).alias("mae"),
            F.sqrt(F.avg(err * err)).alias("rmse"),
            F.avg(err).alias("bias"),
            F.countDistinct(project.KEY).alias("_scored"),
        )
        .join(flights, on="carrier", how="left")
    )
    return per_carrier.select(
        F.col("ds"),
        F.col("model_name"),
        F.col("model_version").cast("string"),
        F.col("carrier"),
        F.col("n_flights").cast("long"),
        F.col("n_predictions").cast("long"),
        F.col("n_actuals").cast("long"),
        *(F.col(c).cast("double") for c in ("mae", "rmse", "bias")),
        (F.col("_scored") / F.col("n_flights")).cast("double").alias("coverage"),
    )


def training_profile(client, model_name: str, model_version: str) -> dict | None:
    """The drift profile kept on a version's training run (None for a run that kept none)."""
    import json
    import tempfile
    from pathlib import Path

    from mlflow.exceptions import MlflowException

    try:
        run_id = client.get_model_version(model_name, str(model_version)).run_id
        with tempfile.TemporaryDirectory() as tmp:
            return json.loads(
                Path(client.download_artifacts(run_id, drift.PROFILE_ARTIFACT, tmp)).read_text()
            )
    except (MlflowException, OSError, ValueError):
        return None


def log_to_mlflow(rows: list[dict], ds: str, carriers=(), drifts=()) -> None:
    import mlflow
    from mlflow.entities import Metric

    client = mlflow.MlflowClient()
    day = date.fromisoformat(ds)
    step = day.timetuple().tm_yday
    # The metric's time is the monitored day, not the moment the job ran: a backfill is identical.
    timestamp = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    for row in rows:
        run_id = monitoring_run_id(client, row["model_name"], row["model_version"])
        metrics = [
            Metric(key=k, value=float(row[k]), timestamp=timestamp, step=step)
            for k in MONITORED_METRICS
            if row[k] is not None
        ]
        metrics.append(Metric("n_actuals", float(row["n_actuals"]), timestamp, step))
        version = (row["model_name"], row["model_version"])
        metrics += [
            Metric(f"mae.carrier.{c['carrier']}", float(c["mae"]), timestamp, step)
            for c in carriers
            if (c["model_name"], c["model_version"]) == version and c["mae"] is not None and c["carrier"]
        ]
        psis = {d["feature"]: d["psi"] for d in drifts if (d["model_name"], d["model_version"]) == version}
        metrics += [Metric(f"psi.{f}", float(v), timestamp, step) for f, v in psis.items()]
        if psis:
            metrics.append(Metric("psi_max", float(max(psis.values())), timestamp, step))
        client.log_batch(run_id, metrics=metrics)
        print(f"logged ds={ds} step={step} to run {run_id}: {[(m.key, m.value) for m in metrics]}")


def monitor(args) -> list[dict]:
    from pyspark.sql import functions as F

    spark = get_spark(f"monitor-{args.ds}")
    predictions = read_partitions(spark, args.data_root, "predictions", [args.ds])
    features = read_partitions(spark, args.data_root, "features", [args.ds])
    metrics = daily_metrics(predictions, features).withColumn("ds", F.col("ds").cast("date"))
    overwrite_partitions(metrics.select(*MONITORING_COLUMNS), args.data_root, "monitoring")
    rows = [r.asDict() for r in read_partitions(spark, args.data_root, "monitoring", [args.ds]).collect()]
    for row in rows:
        print(f"monitoring ds={args.ds}: {row}")

    per_carrier = carrier_metrics(predictions, features).withColumn("ds", F.col("ds").cast("date"))
    overwrite_partitions(per_carrier.select(*CARRIER_COLUMNS), args.data_root, "monitoring_carrier")
    carriers = [r.asDict() for r in per_carrier.collect()]

    drifts = day_drift(spark, features, rows, args.ds)
    if drifts:
        frame = spark.createDataFrame(
            [
                (date.fromisoformat(args.ds), d["model_name"], d["model_version"], d["feature"], d["psi"])
                for d in drifts
            ],
            "ds date, model_name string, model_version string, feature string, psi double",
        )
        overwrite_partitions(frame, args.data_root, "drift")
        top = sorted(drifts, key=lambda d: -d["psi"])[:3]
        print(f"drift ds={args.ds}: largest PSI " + ", ".join(f"{d['feature']}={d['psi']:.3f}" for d in top))
    log_to_mlflow(rows, args.ds, carriers, drifts)
    return rows


def day_drift(spark, features, rows: list[dict], ds: str) -> list[dict]:
    """PSI of the day's features against the training rows of each version that scored it."""
    import mlflow

    client = mlflow.MlflowClient()
    out = []
    for row in rows:
        reference = training_profile(client, row["model_name"], row["model_version"])
        if reference is None:
            print(f"drift ds={ds}: no training profile for v{row['model_version']}; drift not computed")
            continue
        for feature, value in drift.psi(reference, features).items():
            out.append(
                {
                    "model_name": row["model_name"],
                    "model_version": str(row["model_version"]),
                    "feature": feature,
                    "psi": value,
                }
            )
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", required=True, help="day to monitor, YYYY-MM-DD")
    parser.add_argument("--data-root", required=True)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    monitor(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
