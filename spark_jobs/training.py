"""Train, tune and log one model of the catalog on a window of feature partitions (Spark entry point).

``--model`` names the model (``usecases/<use case>/models/<model>``): its label, the feature
columns it reads, its pipeline and tuning grid (its ``pipeline.py``), the metrics it is judged by
and the one that decides, and the column its evaluation is sliced by.

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

from mlcycle.evaluation import EVALUATION_ARTIFACT, PLOT_ARTIFACT, per_slice_rows, plot_per_slice
from mlcycle.quality.gates import GATE_FAILED_EXIT
from mlcycle.specs import SpecError, find_model, pipeline_module
from mlcycle.training import TrainingInputError, check_training_inputs, data_quality_summary
from spark_jobs import drift
from spark_jobs.common import get_spark, loaded_model, log_model, read_partitions, with_label
from spark_jobs.metrics import OVERALL, with_groups
from spark_jobs.metrics import metrics as task_metrics

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


def scores(scored, model) -> tuple[dict[str, float], dict[str, dict]]:
    """(the model's metrics over scored rows, ``{value: {rows, <metric>: ...}}`` per value of the
    evaluation's slice), in one pass."""
    column = model.evaluation["slice"]
    got = task_metrics(model.task, with_groups(scored, [column]), model.label, by=["slice", "value"])
    overall = got.get((OVERALL, OVERALL), {})
    per_slice = {
        value: {"rows": row["rows"], **{m: row.get(m) for m in model.metrics}}
        for (slice_, value), row in got.items()
        if slice_ != OVERALL
    }
    return {m: overall.get(m) for m in model.metrics}, per_slice


def tuning_evaluator(model):
    """The Spark ML evaluator that picks the best candidate, in the deciding metric."""
    if model.task == "classification":
        if model.deciding == "auc":
            from pyspark.ml.evaluation import BinaryClassificationEvaluator

            return BinaryClassificationEvaluator(labelCol=model.label, metricName="areaUnderROC")
        from pyspark.ml.evaluation import MulticlassClassificationEvaluator

        return MulticlassClassificationEvaluator(labelCol=model.label, metricName="logLoss")
    from pyspark.ml.evaluation import RegressionEvaluator

    return RegressionEvaluator(labelCol=model.label, predictionCol="prediction", metricName=model.deciding)


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


def describe_params(code, param_map) -> dict[str, object]:
    """A candidate's settings as the pipeline file describes them (or by parameter name)."""
    if callable(getattr(code, "describe_params", None)):
        return code.describe_params(param_map)
    return {p.name: str(v) for p, v in param_map.items()}


def champion_version(client, model_name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, "champion").version
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def train(args) -> str:
    """Train, judge and log a challenger (``_train``), then let go of what it cached: a session's
    cache belongs to its engine, and a long-lived Spark Connect server keeps what a job left
    there after the job has gone: the training days' frames, held in memory and listed again
    each time a job writes the features they were read from."""
    cached: list = []
    try:
        return _train(args, cached)
    finally:
        for frame in cached:
            frame.unpersist()


def _train(args, cached: list) -> str:
    import mlflow
    import pyspark
    from mlflow.models import infer_signature
    from pyspark.ml.tuning import TrainValidationSplit
    from pyspark.sql import functions as F

    # Before anything else: a window whose data did not pass is refused, wherever it is submitted.
    model = find_model(args.model)
    days = check_training_inputs(args.data_root, args.start, args.end, args.holdout_days, model.usecase)
    quality = data_quality_summary(args.data_root, days, model.usecase)
    data_params, data_tags, data_metrics = data_quality_record(quality)

    name = model.registered_name
    client = mlflow.MlflowClient()
    previous = find_finished_run(client, name, args.airflow_run_id)
    if previous is not None:
        print(f"run {previous.info.run_id} already trained for {args.airflow_run_id}; nothing to do")
        return previous.info.run_id

    train_days, val_days = split_days(days, args.holdout_days)

    spark = get_spark(f"train-{model.name}")
    watched = [*model.monitoring["drift_numeric"], *model.monitoring["drift_categorical"]]
    columns = list(
        dict.fromkeys(
            [
                model.usecase.key,
                "ds",
                model.label,
                model.evaluation["slice"],
                *model.features,
                *watched,
            ]
        )
    )
    features = (
        with_label(read_partitions(spark, args.data_root, "features", days), model)
        .select(*columns)
        .where(F.col(model.label).isNotNull())
        .withColumn("ds", F.col("ds").cast("string"))
    )
    train_df = features.where(F.col("ds").isin(train_days)).cache()
    val_df = features.where(F.col("ds").isin(val_days)).cache()
    cached += [train_df, val_df]
    train_rows, val_rows = train_df.count(), val_df.count()
    if train_rows == 0 or val_rows == 0:
        raise ValueError(
            f"no labelled rows to {'train on' if train_rows == 0 else 'validate on'} in "
            f"{train_days if train_rows == 0 else val_days} under {args.data_root}/features"
        )

    code = pipeline_module(model)
    pipeline = code.make_pipeline(model)
    grid = code.param_grid(pipeline.getStages(), args.grid)
    evaluator = tuning_evaluator(model)
    tuner = TrainValidationSplit(
        estimator=pipeline,
        estimatorParamMaps=grid,
        evaluator=evaluator,
        trainRatio=0.8,
        parallelism=2,
        seed=getattr(code, "SEED", 2013),
    )

    mlflow.set_experiment(name)
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
                "model": model.id,
                "task": model.task,
                "label": model.label,
                "tuning_metric": model.deciding,
                "grid": args.grid,
                "grid_size": len(grid),
                **{
                    f"candidate_{i}": ",".join(f"{k}={v}" for k, v in describe_params(code, pm).items())
                    for i, pm in enumerate(grid)
                },
            }
        )
        started = time.monotonic()
        if len(grid) == 1:
            # Nothing to choose between: fitted once on the training days (a split to compare
            # candidates on would fit it twice).
            best, candidate_scores, best_index = pipeline.fit(train_df, grid[0]), [], 0
        else:
            tuned = tuner.fit(train_df)
            candidate_scores = [float(m) for m in tuned.validationMetrics]
            pick = max if model.higher_is_better else min
            best_index = pick(range(len(grid)), key=lambda i: candidate_scores[i])
            best = tuned.bestModel
        print(f"tuned {len(grid)} candidates on {train_rows} rows in {time.monotonic() - started:.1f}s")
        mlflow.log_params(
            {f"best_{k}": v for k, v in describe_params(code, grid[best_index]).items()}
            | {"best_candidate": best_index}
        )
        challenger_val = best.transform(val_df).cache()
        cached.append(challenger_val)
        val_scores, challenger_slices = scores(challenger_val, model)
        mlflow.log_metrics(
            {
                **{f"val_{m}": v for m, v in val_scores.items() if v is not None},
                "train_rows": train_rows,
                "val_rows": val_rows,
                **{f"candidate_{i}_{model.deciding}": m for i, m in enumerate(candidate_scores)},
            }
        )

        started = time.monotonic()
        example = val_df.select(*model.features).limit(5).toPandas()
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

        champion = champion_version(client, name)
        champion_scores = champion_slices = None
        if champion is not None:
            with loaded_model(spark, f"models:/{name}/{champion}", args.data_root) as serving:
                champion_val = serving.transform(val_df)
                champion_scores, champion_slices = scores(champion_val, model)
            mlflow.log_metrics({f"champion_val_{m}": v for m, v in champion_scores.items() if v is not None})
            mlflow.set_tag("champion.version", champion)
        slice_column = model.evaluation["slice"]
        evaluation = {
            "val_days": val_days,
            "rows": val_rows,
            "champion_version": champion,
            "metric": model.deciding,
            "higher_is_better": model.higher_is_better,
            "slice": slice_column,
            "overall": {"challenger": val_scores, "champion": champion_scores},
            "per_slice": per_slice_rows(
                challenger_slices, champion_slices, model.deciding, model.higher_is_better
            ),
        }
        mlflow.log_dict(evaluation, EVALUATION_ARTIFACT)
        # What monitoring compares each scored day with (feature drift).
        mlflow.log_dict(
            drift.profile(
                train_df, list(model.monitoring["drift_numeric"]), list(model.monitoring["drift_categorical"])
            ),
            drift.PROFILE_ARTIFACT,
        )
        mlflow.log_metrics(
            {
                f"val_{model.deciding}.{slice_column}.{value}": got[model.deciding]
                for value, got in challenger_slices.items()
                if got.get(model.deciding) is not None
            }
        )
        mlflow.log_figure(plot_per_slice(evaluation), PLOT_ARTIFACT)
        shown = " ".join(f"val_{m}={v:.4f}" for m, v in val_scores.items() if v is not None)
        print(f"{shown} train_rows={train_rows} val_rows={val_rows} champion={champion}")
        return run.info.run_id


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", required=True, help="first day of the window, YYYY-MM-DD")
    parser.add_argument("--end", required=True, help="last day of the window, YYYY-MM-DD")
    parser.add_argument("--holdout-days", type=int, required=True, help="last days used for validation")
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--model", required=True, help="the model of the catalog, e.g. air_time")
    parser.add_argument("--airflow-run-id", required=True)
    parser.add_argument(
        "--grid", default="full", help="the tuning candidates, as the model's pipeline.py names them"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    try:
        run_id = train(parse_args(argv))
    except (TrainingInputError, SpecError) as refused:
        print(f"train refused: {refused}", file=sys.stderr)
        return GATE_FAILED_EXIT
    print(f"mlflow_run_id={run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
