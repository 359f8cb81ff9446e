"""No-op twins of the day's pipeline (flights_data -> air_time_scoring -> air_time_monitoring): the
same task graph, the same asset chaining, the same mapped tasks and branching, with tasks that do
nothing. What a day costs on them is Airflow's fixed cost; ``bench/day_pipeline.py`` compares the
real DAGs with these, side by side."""

from __future__ import annotations

from datetime import datetime

import airflow.providers.standard.decorators.python  # noqa: F401  (pre-imported by the dag-processor)
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, task

FEATURES = Asset(name="twin_features", uri="twin://features")
PREDICTIONS = Asset(name="twin_predictions", uri="twin://predictions")
MONITORING = Asset(name="twin_monitoring", uri="twin://monitoring")


@task
def noop(application_args=None) -> None:
    return None


with DAG(
    dag_id="twin_data",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2013, 1, 1),
    end_date=datetime(2013, 12, 31),
    catchup=False,
    max_active_runs=1,
    tags=["bench"],
):

    @task(outlets=[FEATURES])
    def publish_features(ds: str, outlet_events=None) -> str:
        outlet_events[FEATURES].extra = {"ds": ds}
        return ds

    (
        noop.override(task_id="land")()
        >> noop.override(task_id="validate_raw")()
        >> noop.override(task_id="build_features")()
        >> publish_features()
    )


with DAG(
    dag_id="twin_scoring",
    schedule=FEATURES,
    start_date=datetime(2013, 1, 1),
    max_active_runs=1,
    tags=["bench"],
):

    @task
    def days_to_score(triggering_asset_events=None) -> list[str]:
        return sorted({e.extra["ds"] for e in triggering_asset_events[FEATURES]})

    @task
    def score_args(days: list[str], champion) -> list[list[str]]:
        return [["--ds", d] for d in days]

    @task(outlets=[PREDICTIONS])
    def publish_predictions(days: list[str], outlet_events=None) -> list[str]:
        outlet_events[PREDICTIONS].extra = {"ds": days}
        return days

    days = days_to_score()
    args = score_args(days, noop.override(task_id="resolve_champion")())
    noop.override(task_id="score").expand(application_args=args) >> publish_predictions(days)


with DAG(
    dag_id="twin_monitoring",
    schedule=PREDICTIONS,
    start_date=datetime(2013, 1, 1),
    max_active_runs=1,
    tags=["bench"],
):

    @task
    def days_to_monitor(triggering_asset_events=None) -> list[list[str]]:
        days = sorted({d for e in triggering_asset_events[PREDICTIONS] for d in e.extra["ds"]})
        return [["--ds", d] for d in days]

    @task(outlets=[MONITORING])
    def publish_monitoring(args, outlet_events=None) -> None:
        outlet_events[MONITORING].extra = {"ds": [a[1] for a in args]}

    @task.short_circuit
    def check_retraining(args) -> bool:
        return False

    args = days_to_monitor()
    published = noop.override(task_id="monitor").expand(application_args=args) >> publish_monitoring(args)
    published >> noop.override(task_id="chart")(args)
    (
        published
        >> check_retraining(args)
        >> EmptyOperator(task_id="retrain")
        >> noop.override(task_id="record_retraining")()
    )
