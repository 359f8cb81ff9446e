"""Train, tune and log one model on a window of feature partitions (Spark entry point).

The last ``--holdout-days`` days of the window are the validation set: the model is tuned on the
days before them and judged on days it never saw, the way it will be used. When the registry has
a ``champion``, it is scored on the very same validation rows, so the comparison the approver
sees is like for like.

Only a window whose every day passed its gates (raw_flights, raw_weather, features) is trained
on: otherwise the job exits with ``GATE_FAILED_EXIT`` and names the days and gates, also when it
is submitted outside Airflow. The run keeps what it read: ``data_quality.json`` (every day's
verdicts and row counts), params ``data.partitions`` and ``data.days``, tag ``data.gates_passed``,
metrics ``data.rows_validated`` and ``data.rows_quarantined`` (flights).

Re-running with the same ``--airflow-run-id`` finds the finished run and trains nothing.
"""

from __future__ import annotations

import argparse
import sys
import time

from mlcycle.evaluation import EVALUATION_ARTIFACT, PLOT_ARTIFACT, per_carrier_rows, plot_per_carrier
from mlcycle.gates import GATE_FAILED_EXIT
from mlcycle.training import TrainingInputError, check_training_inputs, data_quality_summary
from spark_jobs import drift
from spark_jobs.common import get_spark, loaded_model, log_model, read_partitions
from spark_jobs.flights import model as project_model
from spark_jobs.flights import project

RUN_ID_TAG = "airflow.run_id"


def split_days(days: list[str], holdout_days: int) -> tuple[list[str], list[str]]:
    """(training days, validation days): validation is the last ``holdout_days`` of the window."""
    if not 0 < holdout_days < len(days):
        raise ValueError(
            f"--holdout-days {holdout_days} must leave at least one training day in a "
            f"{len(days)}-day window ({days[0]} .. {days[-1]})"
        )
    return days[:-holdout_days], days[-holdout_days:]


def find_finished_run(client, experiment_name: str, airflow_run_id: str):
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{RUN_ID_TAG}` = '{airflow_run_id}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def regression_metrics(predictions) -> dict[str, float]:
    from pyspark.sql import functions as F

    err = F.col("prediction") - F.col(project.LABEL)
    row = predictions.agg(F.avg(F.abs(err)).alias("mae"), F.sqrt(F.avg(err * err)).alias("rmse")).first()
    return {"mae": float(row["mae"]), "rmse": float(row["rmse"])}


def carrier_metrics(predictions) -> dict[str, dict]:
    """``{carrier: {flights, mae, rmse}}`` of scored rows."""
    from pyspark.sql import functions as F

    err = F.col("prediction") - F.col(project.LABEL)
    rows = (
        predictions.groupBy("carrier")
        .agg(
            F.count("*").alias("flights"),
            F.avg(F.abs(err)).alias("mae"),
            F.sqrt(F.avg(err * err)).alias("rmse"),
        )
        .collect()
    )
    return {
        r["carrier"]: {"flights": int(r["flights"]), "mae": float(r["mae"]), "rmse": float(r["rmse"])}
        for r in rows
    }


def code_version() -> dict[str, str]:
    """The commit of the code that trained (and whether the tree had changes on top of it)."""
    import subprocess

    from mlcycle.config import REPO_ROOT

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    return {
        "code.version": commit or "unknown",
        "code.dirty": str(bool(git("status", "--porcelain", "--untracked-files=no"))).lower()
        if commit
        else "unknown",
    }


def data_quality_record(summary: dict) -> tuple[dict, dict, dict]:
    """(params, tags, metrics) of a run about the partitions it read and their gates."""
    days = list(summary["days"])
    totals = summary["totals"]
    params = {
        "data.partitions": f"{days[0]}..{days[-1]}",
        "data.days": len(days),
        "data.gates": ",".join(summary["gates"]),
    }
    tags = {"data.gates_passed": "true" if totals["all_passed"] else "false"}
    metrics = {"data.rows_validated": totals["validated"], "data.rows_quarantined": totals["quarantined"]}
    return params, tags, metrics


def champion_version(client, model_name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, "champion").version
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def train(args) -> str:
    import mlflow
    import pyspark
    from mlflow.models import infer_signature
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.ml.tuning import TrainValidationSplit
    from pyspark.sql import functions as F

    # Before anything else: a window whose data did not pass is refused, wherever it is submitted.
    days = check_training_inputs(args.data_root, args.start, args.end, args.holdout_days)
    quality = data_quality_summary(args.data_root, days)
    data_params, data_tags, data_metrics = data_quality_record(quality)

    client = mlflow.MlflowClient()
    previous = find_finished_run(client, args.model_name, args.airflow_run_id)
    if previous is not None:
        print(f"run {previous.info.run_id} already trained for {args.airflow_run_id}; nothing to do")
        return previous.info.run_id

    train_days, val_days = split_days(days, args.holdout_days)

    spark = get_spark(f"train-{args.model_name}")
    columns = list(
        dict.fromkeys(
            [
                project.KEY,
                "ds",
                project.LABEL,
                *project_model.feature_columns(),
                *project.DRIFT_NUMERIC,
                *project.DRIFT_CATEGORICAL,
            ]
        )
    )
    features = (
        read_partitions(spark, args.data_root, "features", days)
        .select(*columns)
        .where(F.col(project.LABEL).isNotNull())
        .withColumn("ds", F.col("ds").cast("string"))
    )
    train_df = features.where(F.col("ds").isin(train_days)).cache()
    val_df = features.where(F.col("ds").isin(val_days)).cache()
    train_rows, val_rows = train_df.count(), val_df.count()
    if train_rows == 0 or val_rows == 0:
        raise ValueError(
            f"no labelled rows to {'train on' if train_rows == 0 else 'validate on'} in "
            f"{train_days if train_rows == 0 else val_days} under {args.data_root}/features"
        )

    pipeline = project_model.make_pipeline()
    grid = project_model.param_grid(pipeline.getStages(), args.grid)
    evaluator = RegressionEvaluator(labelCol=project.LABEL, predictionCol="prediction", metricName="mae")
    tuner = TrainValidationSplit(
        estimator=pipeline,
        estimatorParamMaps=grid,
        evaluator=evaluator,
        trainRatio=0.8,
        parallelism=2,
        seed=project_model.SEED,
    )

    mlflow.set_experiment(args.model_name)
    with mlflow.start_run(
        run_name=f"train-{args.end}", tags={RUN_ID_TAG: args.airflow_run_id, **data_tags, **code_version()}
    ) as run:
        mlflow.log_dict(quality, "data_quality.json")
        mlflow.log_metrics(data_metrics)
        mlflow.log_params(
            {
                "window_start": args.start,
                "window_end": args.end,
                "holdout_days": args.holdout_days,
                "train_days": f"{train_days[0]}..{train_days[-1]}",
                "val_days": f"{val_days[0]}..{val_days[-1]}",
                "data_root": args.data_root,
                **data_params,
                "tuning_metric": "mae",
                "grid": args.grid,
                "grid_size": len(grid),
                **{
                    f"candidate_{i}": ",".join(
                        f"{k}={v}" for k, v in project_model.describe_params(pm).items()
                    )
                    for i, pm in enumerate(grid)
                },
            }
        )
        started = time.monotonic()
        if len(grid) == 1:
            # Nothing to choose between: fitted once on the training days (a split to compare
            # candidates on would fit it twice).
            best, candidate_maes, best_index = pipeline.fit(train_df, grid[0]), [], 0
        else:
            tuned = tuner.fit(train_df)
            candidate_maes = [float(m) for m in tuned.validationMetrics]
            best_index = min(range(len(grid)), key=lambda i: candidate_maes[i])
            best = tuned.bestModel
        print(f"tuned {len(grid)} candidates on {train_rows} rows in {time.monotonic() - started:.1f}s")
        mlflow.log_params(
            {f"best_{k}": v for k, v in project_model.describe_params(grid[best_index]).items()}
            | {"best_candidate": best_index}
        )
        challenger_val = best.transform(val_df).cache()
        val_scores = regression_metrics(challenger_val)
        challenger_carriers = carrier_metrics(challenger_val)
        mlflow.log_metrics(
            {
                "val_mae": val_scores["mae"],
                "val_rmse": val_scores["rmse"],
                "train_rows": train_rows,
                "val_rows": val_rows,
                **{f"candidate_{i}_mae": m for i, m in enumerate(candidate_maes)},
            }
        )

        started = time.monotonic()
        example = val_df.select(*project_model.feature_columns()).limit(5).toPandas()
        signature = infer_signature(example, best.transform(val_df.limit(5)).select("prediction").toPandas())
        # Explicit requirements: left to infer them, MLflow reloads the model in a fresh Python
        # process and a second JVM, which costs more than the training itself. The signature says
        # what a row must hold; an input example would make MLflow load the model back once more
        # to check it can score it (6 s of every training), which scoring shows anyway.
        log_model(
            spark,
            best,
            "model",
            data_root=args.data_root,
            signature=signature,
            pip_requirements=[f"mlflow=={mlflow.__version__}", f"pyspark=={pyspark.__version__}"],
        )
        print(f"logged the model in {time.monotonic() - started:.1f}s")

        champion = champion_version(client, args.model_name)
        champion_scores = champion_carriers = None
        if champion is not None:
            with loaded_model(spark, f"models:/{args.model_name}/{champion}", args.data_root) as model:
                champion_val = model.transform(val_df)
                champion_scores = regression_metrics(champion_val)
                champion_carriers = carrier_metrics(champion_val)
            mlflow.log_metrics(
                {"champion_val_mae": champion_scores["mae"], "champion_val_rmse": champion_scores["rmse"]}
            )
            mlflow.set_tag("champion.version", champion)
        evaluation = {
            "val_days": val_days,
            "rows": val_rows,
            "champion_version": champion,
            "overall": {"challenger": val_scores, "champion": champion_scores},
            "per_carrier": per_carrier_rows(challenger_carriers, champion_carriers),
        }
        mlflow.log_dict(evaluation, EVALUATION_ARTIFACT)
        # What monitoring compares each scored day with (feature drift).
        mlflow.log_dict(
            drift.profile(train_df, list(project.DRIFT_NUMERIC), list(project.DRIFT_CATEGORICAL)),
            drift.PROFILE_ARTIFACT,
        )
        mlflow.log_metrics({f"val_mae.carrier.{c}": m["mae"] for c, m in challenger_carriers.items()})
        mlflow.log_figure(plot_per_carrier(evaluation), PLOT_ARTIFACT)
        print(
            f"val_mae={val_scores['mae']:.3f} val_rmse={val_scores['rmse']:.3f} "
            f"train_rows={train_rows} val_rows={val_rows} champion={champion}"
        )
        return run.info.run_id


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", required=True, help="first day of the window, YYYY-MM-DD")
    parser.add_argument("--end", required=True, help="last day of the window, YYYY-MM-DD")
    parser.add_argument("--holdout-days", type=int, required=True, help="last days used for validation")
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--model-name", required=True, help="registered model, also the experiment name")
    parser.add_argument("--airflow-run-id", required=True)
    parser.add_argument(
        "--grid", choices=project_model.GRIDS, default="full", help="the tuning candidates (see model.py)"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    try:
        run_id = train(parse_args(argv))
    except TrainingInputError as refused:
        print(f"train refused: {refused}", file=sys.stderr)
        return GATE_FAILED_EXIT
    print(f"mlflow_run_id={run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
