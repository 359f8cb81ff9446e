"""The first champion of a model against a route-mean baseline, in spring and in summer 2013.

    .venv/bin/python examples/first_champion.py --data-root /work/fc_data --json /work/fc_data/first_champion.json
    .venv/bin/python examples/first_champion.py --model late_arrival --data-root /work/fc_data

The figure: the metrics of a model (``--model``, default ``air_time``) trained on January to March
2013 by the real training job (``spark_jobs.training``, tuned, validated on the window's last
``--holdout-days`` days, logged to MLflow), evaluated on April and on July 2013, against a baseline
that predicts each route's mean label over the same training window (its mean air time; for
``late_arrival`` its share of flights more than 15 minutes late, as a probability); and the wall
time of that training job.

Steps, all in one ``local[2]`` Spark session (the one the jobs get from spark-submit):

1. the raw gate (``land_day`` + ``validate_day``) over every day from the start of the training
   window to the end of the last evaluation window, in order, so the volume rule sees its trailing
   days and the features of every day find their 28 days of history;
2. the features (``features_of_day``) of the training window and of each evaluation window;
3. ``spark_jobs.training.main`` in-process on the training window, against a SQLite MLflow store
   with its artifacts under ``--data-root``;
4. the logged model (``runs:/<id>/model``) and the baseline scored on every evaluation window, over
   the flights with a known label: rows, the model's metrics and bias (mean estimate - actual).

Everything lands under ``--data-root`` (a new temporary folder by default). A reused root skips
the days whose raw verdicts (``gates/raw_flights`` and ``gates/raw_weather``) or features verdict
already passed; the training job runs again each time (a new ``--airflow-run-id``), unless it is
given the id of a finished run, which the job then finds and does not retrain.

A shorter trial of the same path::

    .venv/bin/python examples/first_champion.py --train-end 2013-01-12 --holdout-days 3 \\
        --eval 2013-01-13..2013-01-16 --eval 2013-01-17..2013-01-20
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from mlcycle.config import days_between, partition_path
from mlcycle.quality.gates import GateFailed, read_result
from spark_jobs.flights.replay import YEAR, land_day, load_reference

RAW_GATES = ("raw_flights", "raw_weather")
DEFAULT_EVAL = ("2013-04-01..2013-04-30", "2013-07-01..2013-07-31")


def window(text: str) -> tuple[str, str]:
    """``START..END`` as a pair of days, checked."""
    start, sep, end = text.partition("..")
    if not sep:
        raise argparse.ArgumentTypeError(f"a window is START..END, got {text!r}")
    days_between(start, end)  # raises on a bad or reversed window
    return start, end


def window_label(start: str, end: str) -> str:
    """``2013-04`` for a whole calendar month, ``START..END`` otherwise."""
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    next_month = (last.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    whole_month = first.day == 1 and first.year == last.year and first.month == last.month
    if whole_month and last + dt.timedelta(days=1) == next_month:
        return start[:7]
    return f"{start}..{end}"


def passed(data_root: str, gate: str, ds: str) -> bool:
    record = read_result(data_root, gate, ds)
    return bool(record and record.get("success"))


def start_spark():
    """The session of ``spark-submit --master local[2]`` with the DAGs' Spark conf, made active so
    that every job's ``get_spark`` reuses it. The values are those of
    ``mlcycle.orchestration.operators.spark_conf``, written out: that module imports Airflow."""
    from pyspark.sql import SparkSession

    from spark_jobs.common import get_spark

    (
        SparkSession.builder.master("local[2]")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "2g")
        .config("spark.ui.enabled", "false")
        # a context setting: get_spark asks for it too, but too late once the context runs
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark = get_spark("first-champion")
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def gate_raw_days(spark, data_root: str, days: list[str]) -> dict:
    """Land and validate ``days`` in order; a day whose two raw verdicts passed already is kept."""
    from spark_jobs.quality import validate_day

    ran, skipped, held = [], [], {}
    started = time.monotonic()
    for day in days:
        if all(passed(data_root, gate, day) for gate in RAW_GATES):
            skipped.append(day)
            continue
        day_started = time.monotonic()
        land_day(data_root, day)
        with contextlib.redirect_stderr(io.StringIO()):  # GX's own chatter
            try:
                validate_day(spark, data_root, day)
            except GateFailed as failed:
                held[day] = failed.summary()
        ran.append(day)
        verdict = "HELD" if day in held else "passed"
        progress(f"raw gate {day}: {verdict} in {time.monotonic() - day_started:.1f}s")
    return {
        "days": len(days),
        "ran": len(ran),
        "skipped": len(skipped),
        "held": held,
        "seconds": round(time.monotonic() - started, 1),
    }


def build_feature_days(spark, data_root: str, days: list[str]) -> dict:
    """Build the features of ``days``; a day whose features verdict passed (and whose partition
    exists) is kept, a day the raw gate held has nothing to build from."""
    from spark_jobs.features import features_of_day

    ran, skipped, held, no_raw = [], [], {}, []
    started = time.monotonic()
    for day in days:
        if passed(data_root, "features", day) and Path(partition_path(data_root, "features", day)).is_dir():
            skipped.append(day)
            continue
        if not all(passed(data_root, gate, day) for gate in RAW_GATES):
            no_raw.append(day)
            continue
        day_started = time.monotonic()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                rows = features_of_day(spark, data_root, day)
            except GateFailed as failed:
                held[day] = str(failed).splitlines()[0]
                rows = None
        ran.append(day)
        verdict = "HELD" if day in held else f"{rows} rows"
        progress(f"features {day}: {verdict} in {time.monotonic() - day_started:.1f}s")
    return {
        "days": len(days),
        "ran": len(ran),
        "skipped": len(skipped),
        "held": held,
        "raw_not_passed": no_raw,
        "short_history": short_history(data_root, days),
        "seconds": round(time.monotonic() - started, 1),
    }


def short_history(data_root: str, days: list[str]) -> dict[str, int]:
    """Days whose features were built on fewer days of history than existed before them (the
    history of a day near the start of the data is short by nature and is not listed): a held raw
    day or a gap in the backfill."""
    from spark_jobs.flights.project import HISTORY_DAYS

    short = {}
    for day in days:
        record = read_result(data_root, "features", day) or {}
        found = record.get("history_days")
        possible = min(HISTORY_DAYS, (dt.date.fromisoformat(day) - dt.date(YEAR, 1, 1)).days)
        if record.get("success") and isinstance(found, int) and found < possible:
            short[day] = found
    return short


def use_mlflow_store(data_root: str, experiment: str) -> str:
    """Point MLflow (and hence the training job, which reads ``MLFLOW_TRACKING_URI``) at a SQLite
    store in the data root, and create the experiment with its artifacts there too: left to
    itself, MLflow would put them in ``./mlruns`` of the working directory. Done before the
    training is timed, so the store's one-off schema migration is not counted."""
    from mlflow import MlflowClient

    tracking_uri = f"sqlite:///{data_root}/mlflow.db"
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # one bar per file when loading
    client = MlflowClient(tracking_uri=tracking_uri)
    if client.get_experiment_by_name(experiment) is None:
        client.create_experiment(experiment, artifact_location=Path(data_root, "mlartifacts").as_uri())
    return tracking_uri


def train_champion(data_root: str, args, model) -> dict:
    """Run the real training job in-process and read back what its MLflow run recorded."""
    from mlflow import MlflowClient

    from spark_jobs import training as train

    experiment = model.registered_name
    tracking_uri = use_mlflow_store(data_root, experiment)
    client = MlflowClient(tracking_uri=tracking_uri)
    reused = train.find_finished_run(client, experiment, args.airflow_run_id) is not None
    argv = [
        "--start", args.train_start,
        "--end", args.train_end,
        "--holdout-days", str(args.holdout_days),
        "--data-root", data_root,
        "--model", model.name,
        "--airflow-run-id", args.airflow_run_id,
    ]  # fmt: skip
    progress(f"training: spark_jobs.training.main {' '.join(argv)}")
    started = time.monotonic()
    code = train.main(argv)
    wall = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"the training job refused or failed (exit {code}); its message is above")

    run = train.find_finished_run(client, experiment, args.airflow_run_id)
    if run is None:
        raise SystemExit(f"no finished run tagged {train.RUN_ID_TAG}={args.airflow_run_id} in {tracking_uri}")
    params, metrics = run.data.params, run.data.metrics
    return {
        "tracking_uri": tracking_uri,
        "experiment": experiment,
        "airflow_run_id": args.airflow_run_id,
        "run_id": run.info.run_id,
        "reused_finished_run": reused,  # True: nothing was trained, the wall time is not the training's
        "wall_seconds": round(wall, 1),
        "mlflow_run_seconds": round((run.info.end_time - run.info.start_time) / 1000, 1),
        "train_days": params.get("train_days"),
        "val_days": params.get("val_days"),
        "grid_size": int(params["grid_size"]) if "grid_size" in params else None,
        "best": {k.removeprefix("best_"): v for k, v in params.items() if k.startswith("best_")},
        "train_rows": int(metrics["train_rows"]) if "train_rows" in metrics else None,
        "val_rows": int(metrics["val_rows"]) if "val_rows" in metrics else None,
        **{f"val_{m}": metrics.get(f"val_{m}") for m in model.metrics},
    }


def labelled_features(spark, data_root: str, days: list[str], model):
    """Feature rows of the ``days`` that have a partition, with the model's label, where it is
    known (flights that flew, or arrived)."""
    from pyspark.sql import functions as F

    from spark_jobs.common import read_partitions, with_label

    present = [d for d in days if Path(partition_path(data_root, "features", d)).is_dir()]
    if not present:
        raise SystemExit(f"no features partition for {days[0]}..{days[-1]} under {data_root}/features")
    rows = with_label(read_partitions(spark, data_root, "features", present), model)
    return rows.where(F.col(model.label).isNotNull()), [d for d in days if d not in present]


def route_baseline(spark, data_root: str, days: list[str], model):
    """(mean label per (origin, dest) over ``days``, the mean over all of them): the baseline
    predicts the first (a route's mean air time, or its share of late arrivals), or the second
    for a route the window never saw."""
    from pyspark.sql import functions as F

    rows, _ = labelled_features(spark, data_root, days, model)
    by_route = rows.groupBy("origin", "dest").agg(F.avg(model.label).alias("baseline")).cache()
    overall = rows.agg(F.avg(model.label)).first()[0]
    return by_route, float(overall)


def window_metrics(scored, by_route, overall: float, model) -> dict:
    """Rows, and the model's metrics (MAE, RMSE, R² and bias of a regression; AUC, log loss and
    calibration of a classification) of the model and of the baseline on exactly the same rows."""
    from pyspark.sql import functions as F

    from spark_jobs.metrics import metrics as task_metrics
    from spark_jobs.metrics import with_probability

    if model.task == "classification":
        scored, estimate = with_probability(scored), F.col("_p")
    else:
        estimate = F.col("prediction")
    joined = (
        scored.withColumn("_estimate", estimate)
        .join(F.broadcast(by_route), on=["origin", "dest"], how="left")
        .select(
            F.col(model.label).cast("double").alias("actual"),
            F.col("_estimate").alias("model"),
            F.coalesce(F.col("baseline"), F.lit(overall)).alias("baseline"),
            F.col("baseline").isNull().cast("int").alias("unseen_route"),
        )
        .cache()
    )
    row = joined.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum("unseen_route").alias("unseen_route_rows"),
        F.avg("actual").alias("mean_actual"),
        F.avg(F.col("model") - F.col("actual")).alias("model_bias"),
        F.avg(F.col("baseline") - F.col("actual")).alias("baseline_bias"),
    ).first()
    out = {
        "rows": int(row["rows"]),
        "unseen_route_rows": int(row["unseen_route_rows"] or 0),
        "mean_actual": float(row["mean_actual"]),
    }
    for name in ("model", "baseline"):
        got = task_metrics(model.task, joined, "actual", column=name)[()]
        out[name] = {m: got[m] for m in ("mae", "rmse", "r2", "auc", "log_loss", "calibration") if m in got}
        out[name]["bias"] = float(row[f"{name}_bias"])
    joined.unpersist()
    deciding = model.deciding
    out["ratio"] = {deciding: out["model"][deciding] / out["baseline"][deciding]}
    return out


def evaluate(spark, data_root: str, run_id: str, train_days: list[str], windows, model) -> tuple[dict, dict]:
    """(metrics per evaluation window, seconds per step): the logged model loaded as the scoring
    job loads it, and the baseline, on each window's labelled rows."""
    import mlflow

    seconds = {}
    started = time.monotonic()
    fitted = mlflow.spark.load_model(f"runs:/{run_id}/model")
    seconds["model_load"] = round(time.monotonic() - started, 1)

    started = time.monotonic()
    by_route, overall = route_baseline(spark, data_root, train_days, model)
    routes = by_route.count()
    seconds["baseline"] = round(time.monotonic() - started, 1)

    results = {}
    for start, end in windows:
        label = window_label(start, end)
        started = time.monotonic()
        rows, missing = labelled_features(spark, data_root, days_between(start, end), model)
        results[label] = {
            "window": f"{start}..{end}",
            "days_without_features": missing,
            **window_metrics(fitted.transform(rows), by_route, overall, model),
        }
        seconds[f"score_{label}"] = round(time.monotonic() - started, 1)
        progress(f"scored {label} in {seconds[f'score_{label}']}s")
    by_route.unpersist()
    return results, {**seconds, "baseline_routes": routes, "baseline_overall_mean": round(overall, 4)}


def print_report(summary: dict) -> None:
    t = summary["training"]
    shown = summary["metrics"]
    print(
        f"first champion of {summary['model']}: trained on {summary['train_window']} (holdout "
        f"{summary['holdout_days']} days), MLflow run {t['run_id']}, data under {summary['data_root']}"
    )
    validation = ", ".join(f"val {m} {t[f'val_{m}']:.4f}" for m in shown if t.get(f"val_{m}") is not None)
    print(
        f"  training job wall time {t['wall_seconds']:.1f} s"
        + (" (finished run reused: nothing trained)" if t["reused_finished_run"] else "")
        + f"; MLflow run {t['mlflow_run_seconds']:.1f} s; grid {t['grid_size']} candidates, best {t['best']}; "
        f"train rows {t['train_rows']:,}, val rows {t['val_rows']:,}, {validation}"
    )
    width = max(6, *(len(label) for label in summary["evaluation"]))
    header = (
        f"  {'window':{width}s} {'rows':>7s} | "
        + " ".join(f"{'model ' + m:>14s}" for m in shown)
        + " | "
        + " ".join(f"{'base ' + m:>14s}" for m in shown)
        + f" | {summary['deciding'] + ' ratio':>12s}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for label, w in summary["evaluation"].items():
        m, b = w["model"], w["baseline"]
        print(
            f"  {label:{width}s} {w['rows']:>7,} | "
            + " ".join(f"{m[x]:>14.4f}" for x in shown)
            + " | "
            + " ".join(f"{b[x]:>14.4f}" for x in shown)
            + f" | {w['ratio'][summary['deciding']]:>12.3f}"
        )
    for label, w in summary["evaluation"].items():
        notes = [
            f"mean actual {w['mean_actual']:.3f}",
            f"bias model {w['model']['bias']:+.3f}, baseline {w['baseline']['bias']:+.3f}",
            f"{w['unseen_route_rows']} rows on unseen routes",
        ]
        if w["days_without_features"]:
            notes.append(f"no features for {', '.join(w['days_without_features'])}")
        print(f"  {label}: " + "; ".join(notes))
    raw, feats = summary["raw_gate"], summary["features"]
    print(
        f"  raw gate: {raw['days']} days, {raw['ran']} run + {raw['skipped']} already passed, "
        f"{len(raw['held'])} held, {raw['seconds']:.0f} s"
    )
    for day, reasons in raw["held"].items():
        print(f"    held {day}: {'; '.join(reasons)}")
    print(
        f"  features: {feats['days']} days, {feats['ran']} built + {feats['skipped']} already passed, "
        f"{len(feats['held'])} held, {len(feats['raw_not_passed'])} without validated data, "
        f"{feats['seconds']:.0f} s"
    )
    for day, reason in feats["held"].items():
        print(f"    held {day}: {reason}")
    if feats["short_history"]:
        short = ", ".join(f"{d} ({h})" for d, h in feats["short_history"].items())
        print(f"    built on less history than there was (days of history found): {short}")
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in summary["phase_seconds"].items())
    print(f"  phases: {phases}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-start", default="2013-01-01")
    parser.add_argument("--train-end", default="2013-03-31")
    parser.add_argument("--holdout-days", type=int, default=7)
    parser.add_argument(
        "--eval",
        type=window,
        action="append",
        help="an evaluation window START..END; repeat for several (default: April and July 2013)",
    )
    parser.add_argument(
        "--data-root", default=None, help="reused when it exists (default: a new temp folder)"
    )
    parser.add_argument(
        "--model", default="air_time", help="the model of the catalog (its registered name is the experiment)"
    )
    parser.add_argument(
        "--airflow-run-id",
        default=None,
        help="tag of the training run (default: a new one, so the job trains); the id of a finished "
        "run makes the job reuse it",
    )
    parser.add_argument("--json", default=None, help="also write the summary to this file")
    args = parser.parse_args(argv)
    windows = args.eval or [window(w) for w in DEFAULT_EVAL]
    train_days = days_between(args.train_start, args.train_end)
    args.airflow_run_id = args.airflow_run_id or (
        f"first_champion__{args.train_start}__{args.train_end}__{int(time.time())}"
    )
    root = (
        str(Path(args.data_root).resolve()) if args.data_root else tempfile.mkdtemp(prefix="first_champion_")
    )
    Path(root).mkdir(parents=True, exist_ok=True)

    from mlcycle.specs import find_model

    model = find_model(args.model)
    HISTORY_DAYS = model.usecase.history_days

    feature_days = sorted({*train_days, *(d for s, e in windows for d in days_between(s, e))})
    # Raw days: the history of the first feature day (not before the data starts) up to the last.
    first_raw = max(
        dt.date.fromisoformat(feature_days[0]) - dt.timedelta(days=HISTORY_DAYS), dt.date(YEAR, 1, 1)
    )
    raw_days = days_between(first_raw.isoformat(), feature_days[-1])

    spark = start_spark()
    load_reference(root)
    phases = {}
    raw = gate_raw_days(spark, root, raw_days)
    phases["raw_gate"] = raw["seconds"]
    features = build_feature_days(spark, root, feature_days)
    phases["features"] = features["seconds"]
    training = train_champion(root, args, model)
    phases["training"] = training["wall_seconds"]
    evaluation, eval_seconds = evaluate(spark, root, training["run_id"], train_days, windows, model)
    phases.update({k: v for k, v in eval_seconds.items() if not k.startswith("baseline_")})
    spark.stop()

    summary = {
        "model": model.id,
        "metrics": [m for m in ("mae", "rmse", "auc", "log_loss", "calibration") if m in model.metrics],
        "deciding": model.deciding,
        "train_window": f"{args.train_start}..{args.train_end}",
        "holdout_days": args.holdout_days,
        "data_root": root,
        "training": training,
        "baseline": {
            "definition": f"mean {model.label} of the route (origin, dest) over {args.train_start}.."
            f"{args.train_end}, the window's overall mean for a route it never saw",
            "routes": eval_seconds["baseline_routes"],
            "overall_mean": eval_seconds["baseline_overall_mean"],
        },
        "evaluation": evaluation,
        "raw_gate": raw,
        "features": features,
        "phase_seconds": phases,
    }
    print_report(summary)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
