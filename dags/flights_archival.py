"""Archival: retired model versions past the retention period are copied to the archive with a
model card, tagged archived, and lose their aliases. The champion is never touched."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, task

from mlcycle.config import settings

CFG = settings()
RETENTION_DAYS = int(os.environ.get("MLCYCLE_RETENTION_DAYS", "30"))

with DAG(
    dag_id="flights_archival",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["flights", "models"],
    doc_md=__doc__,
) as dag:

    @task
    def archive_retired(data_interval_end=None) -> list[int]:
        from mlcycle.registry import archive_retired

        return archive_retired(
            CFG.tracking_uri, CFG.model_name, CFG.archive_root, RETENTION_DAYS, data_interval_end.isoformat()
        )

    archive_retired()
