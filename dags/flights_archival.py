"""Archival: retired model versions past the retention period are copied to the archive with a
model card, tagged archived, and lose their aliases. The champion is never touched, nor a version
a running DAG run still uses (a scoring run's model, a pending rollback's target)."""

from __future__ import annotations

import os
from datetime import datetime

# The Airflow modules this file needs through mlcycle, named so that the dag-processor imports them
# once, before it starts a parser for the file ([dag_processor] parsing_pre_import_modules), instead
# of in every parse.
import airflow.providers.standard.decorators.python  # noqa: F401
from airflow.sdk import DAG, Param, task

from mlcycle.config import settings

CFG = settings()
RETENTION_DAYS = int(os.environ.get("MLCYCLE_RETENTION_DAYS", "30"))

with DAG(
    dag_id="flights_archival",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "retention_days": Param(
            RETENTION_DAYS,
            type="number",
            minimum=0,
            description="Days a version stays retired before it is archived (MLCYCLE_RETENTION_DAYS)",
        )
    },
    tags=["flights", "models"],
    doc_md=__doc__,
) as dag:

    @task
    def archive_retired(params=None, dag_run=None, ti=None) -> list[int]:
        from mlcycle.registry import ACTIVE_RUN_STATES, archive_retired

        def run_is_active(dag_id: str, run_id: str) -> bool:
            return ti.get_dr_count(dag_id, run_ids=[run_id], states=list(ACTIVE_RUN_STATES)) > 0

        return archive_retired(
            CFG.tracking_uri,
            CFG.model_name,
            CFG.archive_root,
            params["retention_days"],
            dag_run.run_after.isoformat(),
            run_is_active=run_is_active,
        )

    archive_retired()
