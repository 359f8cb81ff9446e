"""Monitoring: once a day's predictions and its actual flight times are in, compare them."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from mlcycle.config import settings
from mlcycle.orchestration import MONITORING, PREDICTIONS, partitions_from_events, spark_job_per_day

CFG = settings()

with DAG(
    dag_id="flights_monitoring",
    schedule=PREDICTIONS,
    start_date=datetime(2013, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["flights", "monitoring"],
    doc_md=__doc__,
) as dag:

    @task
    def days_to_monitor(triggering_asset_events=None) -> list[list[str]]:
        days = partitions_from_events(triggering_asset_events.get(PREDICTIONS, []))
        return [["--ds", d, "--data-root", CFG.data_root] for d in days]

    @task(outlets=[MONITORING])
    def publish_monitoring(args: list[list[str]], outlet_events=None) -> None:
        outlet_events[MONITORING].extra = {"ds": [a[1] for a in args]}

    args = days_to_monitor()
    spark_job_per_day("monitor", "monitor.py", args) >> publish_monitoring(args)
