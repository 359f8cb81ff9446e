"""Daily data: land the day's upstream drop, gate it, keep the validated partition, build features.

One run per day of 2013 (data interval = that day); backfill it from the UI or the CLI.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable, task

from mlcycle.config import settings
from mlcycle.orchestration import FEATURES, spark_job

DATA_ROOT = settings().data_root

with DAG(
    dag_id="flights_data",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2013, 1, 1),
    end_date=datetime(2013, 12, 31),
    catchup=False,
    max_active_runs=2,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
    tags=["flights", "data"],
    doc_md=__doc__,
) as dag:

    @task
    def land(ds: str) -> dict:
        from mlcycle.landing import land_day, load_reference

        load_reference(DATA_ROOT)
        return land_day(DATA_ROOT, ds)

    validate_raw = spark_job(
        "validate_raw", "validate_raw.py", ["--ds", "{{ ds }}", "--data-root", DATA_ROOT]
    )
    build_features = spark_job(
        "build_features", "build_features.py", ["--ds", "{{ ds }}", "--data-root", DATA_ROOT]
    )

    @task(outlets=[FEATURES])
    def publish_features(ds: str, outlet_events=None) -> str:
        """Announce the day's features, so scoring of that day can start."""
        outlet_events[FEATURES].extra = {"ds": ds}
        return ds

    land() >> validate_raw >> build_features >> publish_features()
