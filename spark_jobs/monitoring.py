"""Compare one day of a model's predictions with what actually happened (Spark entry point).

``--model`` names the model of the catalog. Writes, for the day, under ``models/<model>/``:
- ``monitoring/ds=D``: one row per version of the model that scored the day: predictions, known
  outcomes, the model's metrics (MAE and RMSE of a regression; AUC, log loss and calibration of a
  classification), bias (mean estimate - mean outcome) and coverage;
- ``monitoring_slices/ds=D``: the same per value of each of the model's slicing columns;
- ``drift/ds=D``: the population stability index of each watched feature of the day against the
  training rows of each version (``spark_jobs.drift``; versions trained before profiles were kept
  have none);
- ``monitoring_online/ds=D``: the scoring service's answers of the day (its request log,
  ``requests/ds=D``) against the same outcomes, per version: ``champion`` rows for the answers
  returned, ``shadow`` rows for a waiting challenger's answers, never returned, with the
  champion's metrics on the same requests beside them (``champion_<metric>``); a shadow version's
  record over all its days is kept on the registered version as ``live.shadow.*`` tags.

It appends the day's figures to one MLflow run per model version, ``monitoring-<NAME>-v<VERSION>``
(the service's answers as ``online_<metric>``, ``online_n_requests``, ``online_n_actuals``), at
step = day of year: the MLflow UI then draws the metric of a version over the season, and a
backfill of a day lands on the same step again.

``--ds`` repeated (or ``--start``/``--end``) monitors many days in one job (``monitor_days``): the
same rows and metrics per day, computed grouped by day and written once per table.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime

from mlcycle.config import model_root
from mlcycle.monitoring.live import monitoring_run_id
from mlcycle.specs import find_model
from spark_jobs import drift
from spark_jobs.common import (
    add_days_arguments,
    days_of,
    get_spark,
    overwrite_partitions,
    read_partitions,
    side_by_side,
    with_label,
)
from spark_jobs.metrics import OVERALL, with_groups
from spark_jobs.metrics import metrics as task_metrics

VERSION = ("model_name", "model_version")


def monitoring_columns(model) -> tuple[str, ...]:
    return ("ds", *VERSION, "n_predictions", "n_actuals", *model.metrics, "bias", "coverage")


def slice_columns(model) -> tuple[str, ...]:
    return (
        "ds",
        *VERSION,
        "slice",
        "value",
        "n_flights",
        "n_predictions",
        "n_actuals",
        *model.metrics,
        "bias",
        "coverage",
    )


def _frame(spark, rows: list[dict], columns: tuple[str, ...]):
    from pyspark.sql.types import DateType, DoubleType, LongType, StringType, StructField, StructType

    kinds = {
        "ds": DateType(),
        "n_flights": LongType(),
        "n_predictions": LongType(),
        "n_actuals": LongType(),
        "n_requests": LongType(),
    }
    text = {"model_name", "model_version", "slice", "value", "role"}
    schema = StructType(
        [StructField(c, kinds.get(c, StringType() if c in text else DoubleType())) for c in columns]
    )
    return spark.createDataFrame([tuple(r.get(c) for c in columns) for r in rows], schema)


def all_metrics(predictions, features, model, slices=(), by=()) -> tuple[list[dict], list[dict]]:
    """(one dict per model version of the day's predictions, the same per value of each of the
    ``slices`` columns): the counts, the model's metrics over the rows whose outcome is known (None
    while none is), bias, and ``coverage``, the share of the day's flights (of the group) that
    version scored. Computed in one pass over all the groups; ``by`` (e.g. ``["ds"]``) groups the
    rows of many days, each dict then holding its ``by`` values."""
    from pyspark.sql import functions as F

    key, label, slices, by = model.usecase.key, model.label, list(slices), list(by)
    actuals = with_label(features, model)
    per_group = (
        with_groups(actuals.select(key, *by, *slices), slices)
        .groupBy(*by, "slice", "value")
        .agg(F.countDistinct(key).alias("n"))
    )
    known = actuals.select(key, F.col(label).cast("double").alias(label), F.lit(True).alias("_known"))
    joined = with_groups(predictions.select(key, *by, *VERSION, "prediction", *slices), slices).join(
        known, on=key, how="left"
    )
    group = [*by, *VERSION, "slice", "value"]
    counts = joined.groupBy(*group).agg(
        F.count(F.lit(1)).alias("n_predictions"),
        F.count(label).alias("n_actuals"),
        F.avg(F.col("prediction") - F.col(label)).alias("bias"),
        F.countDistinct(F.when(F.col("_known"), F.col(key))).alias("_scored"),
    )
    # three independent passes, side by side
    flight_rows, count_rows, scores = side_by_side(
        per_group.collect,
        counts.collect,
        lambda: task_metrics(model.task, joined, label, by=group, column="prediction"),
    )
    flights = {(*(r[c] for c in by), r["slice"], r["value"]): int(r["n"]) for r in flight_rows}
    overall, per_slice = [], []
    for r in count_rows:
        got = scores.get(tuple(r[c] for c in group), {})
        total = flights.get((*(r[c] for c in by), r["slice"], r["value"]))
        row = {
            **{c: r[c] for c in by},
            "model_name": r["model_name"],
            "model_version": str(r["model_version"]),
            "n_flights": total,
            "n_predictions": int(r["n_predictions"]),
            "n_actuals": int(r["n_actuals"]),
            **{m: (None if got.get(m) is None else float(got[m])) for m in model.metrics},
            "bias": None if r["bias"] is None else float(r["bias"]),
            "coverage": r["_scored"] / total if total else None,
        }
        if r["slice"] == OVERALL:
            overall.append(row)
        else:
            per_slice.append({**row, "slice": r["slice"], "value": r["value"]})
    return overall, per_slice


def online_columns(model) -> tuple[str, ...]:
    return (
        "ds",
        *VERSION,
        "role",
        "n_requests",
        "n_actuals",
        *model.metrics,
        "bias",
        *(f"champion_{m}" for m in model.metrics),
    )


def online_metrics(spark, records: str, features, model, ds: str) -> list[dict]:
    """The day's logged requests of the scoring service against the outcomes: one dict per
    version and role (``champion``: the answers returned; ``shadow``: a waiting challenger's, with
    the champion's metrics over the same requests as ``champion_<metric>``). Every request counts
    (a flight asked twice, twice); the metrics are over the requests whose outcome is known. None
    when the service logged nothing that day."""
    from pathlib import Path

    from pyspark.sql import functions as F

    path = Path(records) / "requests" / f"ds={ds}"
    if not any(path.glob("*.jsonl")):
        return []
    key, label = model.usecase.key, model.label
    # a line per request, column by column (``mlcycle.serving.service.RequestLog``): only what is
    # joined and scored is read; a flight per row
    key_type = features.schema[key].dataType.simpleString()
    log = spark.read.json(
        str(path),
        schema=(
            f"fields struct<{key}: array<{key_type}>>, version string, predictions array<double>, "
            "shadow_version string, shadow_predictions array<double>"
        ),
    )
    flights = log.select(
        F.posexplode_outer(f"fields.{key}").alias("position", key),
        "version",
        "predictions",
        "shadow_version",
        "shadow_predictions",
    )
    base = flights.select(
        key,
        "version",
        F.col("predictions")[F.col("position")].alias("prediction"),
        "shadow_version",
        F.col("shadow_predictions")[F.col("position")].alias("shadow_prediction"),
    )
    shadowed = base.where(F.col("shadow_version").isNotNull())
    answers = (
        base.select(
            key, F.lit("champion").alias("role"), F.col("version").alias("model_version"), "prediction"
        )
        .unionByName(
            shadowed.select(
                key,
                F.lit("shadow").alias("role"),
                F.col("shadow_version").alias("model_version"),
                F.col("shadow_prediction").alias("prediction"),
            )
        )
        .unionByName(
            shadowed.select(
                key,
                F.lit("paired").alias("role"),
                F.col("shadow_version").alias("model_version"),
                "prediction",
            )
        )
    )
    actuals = with_label(features, model).select(key, F.col(label).cast("double").alias(label))
    joined = answers.join(actuals, on=key, how="left")
    group = ["role", "model_version"]
    counts = joined.groupBy(*group).agg(
        F.count(F.lit(1)).alias("n_requests"),
        F.count(label).alias("n_actuals"),
        F.avg(F.col("prediction") - F.col(label)).alias("bias"),
    )
    scores = task_metrics(
        model.task, joined.where(F.col(label).isNotNull()), label, by=group, column="prediction"
    )
    rows = []
    for r in counts.where(F.col("role") != "paired").collect():
        got = scores.get((r["role"], r["model_version"]), {})
        paired = scores.get(("paired", r["model_version"]), {}) if r["role"] == "shadow" else {}
        rows.append(
            {
                "model_name": model.registered_name,
                "model_version": r["model_version"],
                "role": r["role"],
                "n_requests": int(r["n_requests"]),
                "n_actuals": int(r["n_actuals"]),
                **{m: None if got.get(m) is None else float(got[m]) for m in model.metrics},
                "bias": None if r["bias"] is None else float(r["bias"]),
                **{
                    f"champion_{m}": None if paired.get(m) is None else float(paired[m])
                    for m in model.metrics
                },
            }
        )
    return rows


def day_metrics(predictions, features, model) -> list[dict]:
    """One dict per model version of the day's predictions (``all_metrics`` without slices)."""
    return all_metrics(predictions, features, model)[0]


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


def mlflow_metrics(rows: list[dict], ds: str, model, slices=(), drifts=(), online=()) -> dict[tuple, list]:
    """The day's figures as MLflow metrics, by model version (name, version), at step = day of
    year and timestamp = the day (not the moment the job ran: a backfill is identical)."""
    from mlflow.entities import Metric

    day = date.fromisoformat(ds)
    step = day.timetuple().tm_yday
    timestamp = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    out = {}
    for row in rows:
        metrics = [
            Metric(key=k, value=float(row[k]), timestamp=timestamp, step=step)
            for k in (*model.metrics, "bias", "coverage")
            if row.get(k) is not None
        ]
        metrics.append(Metric("n_actuals", float(row["n_actuals"]), timestamp, step))
        version = (row["model_name"], row["model_version"])
        deciding = model.deciding
        metrics += [
            Metric(f"{deciding}.{c['slice']}.{c['value']}", float(c[deciding]), timestamp, step)
            for c in slices
            if (c["model_name"], c["model_version"]) == version and c.get(deciding) is not None and c["value"]
        ]
        # the scoring service's answers of the same version, beside the batch figures
        for answered in online:
            if (
                answered["role"] == "champion"
                and (answered["model_name"], answered["model_version"]) == version
            ):
                metrics += [
                    Metric(f"online_{k}", float(answered[k]), timestamp, step)
                    for k in (*model.metrics, "n_requests", "n_actuals")
                    if answered.get(k) is not None
                ]
        psis = {d["feature"]: d["psi"] for d in drifts if (d["model_name"], d["model_version"]) == version}
        metrics += [Metric(f"psi.{f}", float(v), timestamp, step) for f, v in psis.items()]
        if psis:
            metrics.append(Metric("psi_max", float(max(psis.values())), timestamp, step))
        out.setdefault(version, []).extend(metrics)
    return out


BATCH = 1000  # metrics per call, MLflow's limit of one log_batch


def send_metrics(by_version: dict[tuple, list]) -> dict[tuple, str]:
    """Append the metrics of each version to its monitoring run, a thousand per call; the run of
    each version."""
    import mlflow

    client = mlflow.MlflowClient()
    runs = {}
    for version, metrics in by_version.items():
        runs[version] = run_id = monitoring_run_id(client, *version)
        for start in range(0, len(metrics), BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + BATCH])
    return runs


def log_to_mlflow(rows: list[dict], ds: str, model, slices=(), drifts=(), online=()) -> None:
    by_version = mlflow_metrics(rows, ds, model, slices, drifts, online)
    runs = send_metrics(by_version)
    for version, metrics in by_version.items():
        step = metrics[0].step if metrics else None
        print(f"logged ds={ds} step={step} to run {runs[version]}: {[(m.key, m.value) for m in metrics]}")


def monitor(args) -> list[dict]:
    model = find_model(args.model)
    records = model_root(args.data_root, model.name)
    spark = get_spark(f"monitor-{model.name}-{args.ds}")
    predictions = read_partitions(spark, records, "predictions", [args.ds])
    features = read_partitions(spark, args.data_root, "features", [args.ds])
    day = date.fromisoformat(args.ds)
    overall, per_slice = all_metrics(predictions, features, model, model.monitoring["slices"])
    rows = [{"ds": day, **r} for r in overall]
    slices = [{"ds": day, **r} for r in per_slice]
    # the day's two tables written beside the drift's pass
    *_, drifts = side_by_side(
        lambda: overwrite_partitions(_frame(spark, rows, monitoring_columns(model)), records, "monitoring"),
        lambda: overwrite_partitions(
            _frame(spark, slices, slice_columns(model)), records, "monitoring_slices"
        ),
        lambda: day_drift(spark, features, rows, args.ds, model),
    )
    for row in rows:
        print(f"monitoring {model.name} ds={args.ds}: {row}")
    if drifts:
        frame = spark.createDataFrame(
            [(day, d["model_name"], d["model_version"], d["feature"], d["psi"]) for d in drifts],
            "ds date, model_name string, model_version string, feature string, psi double",
        )
        overwrite_partitions(frame, records, "drift")
        top = sorted(drifts, key=lambda d: -d["psi"])[:3]
        print(f"drift ds={args.ds}: largest PSI " + ", ".join(f"{d['feature']}={d['psi']:.3f}" for d in top))
    online = [{"ds": day, **r} for r in online_metrics(spark, records, features, model, args.ds)]
    log_to_mlflow(rows, args.ds, model, slices, drifts, online)
    if online:
        overwrite_partitions(_frame(spark, online, online_columns(model)), records, "monitoring_online")
        for row in online:
            print(f"online {model.name} ds={args.ds}: {row}")
        record_shadows(online, records, model)
    return rows


def monitor_days(args, days: list[str]) -> dict[str, list[dict]]:
    """``monitor`` for many days in one pass: the metrics of every day (overall and per slice)
    grouped by day, the drift of every day per version in one pass, one write per table (each
    day's partition replaced), the MLflow metrics of all the days sent together. Days without
    predictions are left out (returned under ``None``)."""
    from pyspark.sql import functions as F

    from spark_jobs.common import existing_partitions

    model = find_model(args.model)
    records = model_root(args.data_root, model.name)
    spark = get_spark(f"monitor-{model.name}-{days[0]}..{days[-1]}")
    ready = existing_partitions(spark, records, "predictions", days)
    if not ready:
        return {}
    predictions = read_partitions(spark, records, "predictions", ready)
    features = read_partitions(spark, args.data_root, "features", ready).cache()
    try:
        overall, per_slice = all_metrics(predictions, features, model, model.monitoring["slices"], by=["ds"])
        # the two tables written beside the drift's pass
        *_, drifts = side_by_side(
            lambda: overwrite_partitions(
                _frame(spark, overall, monitoring_columns(model)), records, "monitoring"
            ),
            lambda: overwrite_partitions(
                _frame(spark, per_slice, slice_columns(model)), records, "monitoring_slices"
            ),
            lambda: days_drift(features, overall, model),
        )
        if drifts:
            frame = spark.createDataFrame(
                [(d["ds"], d["model_name"], d["model_version"], d["feature"], d["psi"]) for d in drifts],
                "ds date, model_name string, model_version string, feature string, psi double",
            )
            overwrite_partitions(frame, records, "drift")
        by_day: dict[str, list[dict]] = {}
        for row in overall:
            by_day.setdefault(row["ds"].isoformat(), []).append(row)
        online_rows = []
        for ds in ready:
            of_day = features.where(F.col("ds") == F.lit(ds).cast("date"))
            online_rows += [
                {"ds": date.fromisoformat(ds), **r} for r in online_metrics(spark, records, of_day, model, ds)
            ]
        every: dict[tuple, list] = {}
        for ds, rows in by_day.items():
            day = date.fromisoformat(ds)
            for version, metrics in mlflow_metrics(
                rows,
                ds,
                model,
                [c for c in per_slice if c["ds"] == day],
                [d for d in drifts if d["ds"] == day],
                [o for o in online_rows if o["ds"] == day],
            ).items():
                every.setdefault(version, []).extend(metrics)
            for row in rows:
                print(f"monitoring {model.name} ds={ds}: {row}")
        runs = send_metrics(every)
        print(
            f"logged {sum(map(len, every.values()))} metrics of {len(by_day)} days to runs {sorted(runs.values())}"
        )
        if online_rows:
            overwrite_partitions(
                _frame(spark, online_rows, online_columns(model)), records, "monitoring_online"
            )
            record_shadows(online_rows, records, model)
    finally:
        features.unpersist()
    return by_day


def days_drift(features, rows: list[dict], model) -> list[dict]:
    """``day_drift`` of many days: for each version that scored some of them, the PSI of each of
    those days' features against its training rows, every day in one pass."""
    import mlflow
    from pyspark.sql import functions as F

    client = mlflow.MlflowClient()
    out = []
    versions = sorted({(r["model_name"], r["model_version"]) for r in rows})
    for name, version in versions:
        scored = sorted({r["ds"] for r in rows if (r["model_name"], r["model_version"]) == (name, version)})
        reference = training_profile(client, name, version)
        if reference is None:
            print(f"drift: no training profile for v{version}; drift not computed")
            continue
        of_days = features.where(F.col("ds").isin(scored))
        for ds, values in drift.psi_by_day(reference, of_days).items():
            for feature, value in values.items():
                out.append(
                    {
                        "ds": date.fromisoformat(ds),
                        "model_name": name,
                        "model_version": str(version),
                        "feature": feature,
                        "psi": value,
                    }
                )
    return out


def record_shadows(online: list[dict], records: str, model) -> None:
    """Each version scored in the shadow that day: its live record so far, pooled over its days,
    kept as tags of the version (``live.shadow.*``), where the sign-off's links lead."""
    import mlflow

    from mlcycle.monitoring import shadow

    client = mlflow.MlflowClient()
    for version in sorted({r["model_version"] for r in online if r["role"] == "shadow"}):
        found = shadow.record_on_version(client, model, version, records)
        print(f"shadow {model.name} v{version}: {found}")


def day_drift(spark, features, rows: list[dict], ds: str, model) -> list[dict]:
    """PSI of the day's features against the training rows of each version that scored it."""
    import mlflow

    client = mlflow.MlflowClient()
    out = []
    for row in rows:
        reference = training_profile(client, row["model_name"], row["model_version"])
        if reference is None:
            print(f"drift ds={ds}: no training profile for v{row['model_version']}; drift not computed")
            continue
        for feature, value in drift.psi(reference, features).items():  # the features profiled
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
    add_days_arguments(parser)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--model", required=True, help="the model of the catalog, e.g. air_time")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    days = days_of(args)
    if len(days) == 1:
        args.ds = days[0]
        monitor(args)
        return 0
    monitored = monitor_days(args, days)
    left = [ds for ds in days if ds not in monitored]
    print(f"monitor {days[0]}..{days[-1]}: {len(monitored)} of {len(days)} days monitored")
    if left:
        print(f"not monitored, no predictions: {', '.join(left)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
