"""Rollback: bring an earlier champion back, by a person's decision.

Trigger it with the ``version`` to bring back (``mlcycle rollback --to N`` does). The approvers
see when that version served and how it compares; Approve moves ``champion`` to it (the current
champion is retired), Reject or no answer changes nothing.
"""

from __future__ import annotations

from datetime import datetime

# The Airflow modules this file needs through mlcycle, named so that the dag-processor imports them
# once, before it starts a parser for the file ([dag_processor] parsing_pre_import_modules), instead
# of in every parse.
import airflow.providers.apache.spark.operators.spark_submit  # noqa: F401
import airflow.providers.standard.decorators.python  # noqa: F401
import airflow.providers.standard.operators.hitl  # noqa: F401
from airflow.sdk import DAG, Param, TriggerRule, task

from mlcycle.config import settings
from mlcycle.orchestration import CHAMPION
from mlcycle.signoff import DECISION_KEY, sign_off_task

CFG = settings()

with DAG(
    dag_id="flights_rollback",
    schedule=None,
    start_date=datetime(2013, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "version": Param(1, type="integer", minimum=1, description="The version to bring back as champion"),
        "reason": Param(None, type=["null", "string"], description="Why (shown to the approvers)"),
        "approval_timeout_hours": Param(None, type=["null", "number"], exclusiveMinimum=0),
    },
    tags=["flights", "models"],
    doc_md=__doc__,
) as dag:

    @task
    def check(params=None, dag=None, run_id=None) -> dict:
        from mlcycle.rollback import check

        return check(CFG, params["version"], params.get("reason"), dag.dag_id, run_id)

    sign_off = sign_off_task(
        "Roll " + CFG.model_name + " back to v{{ params.version }}?",
        evidence_task="check",
        approvers=CFG.approvers,
    )

    @task(outlets=[CHAMPION], pool="model_promotion")
    def promote(params=None, run_id=None, ti=None, outlet_events=None) -> int:
        from mlcycle.rollback import promote

        version = promote(CFG, params["version"], ti.xcom_pull(task_ids="sign_off", key=DECISION_KEY), run_id)
        outlet_events[CHAMPION].extra = {"version": version}
        return version

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def record_decision(evidence: dict, params=None, run_id=None, ti=None) -> str:
        """Runs after a rejection too (``promote`` is then skipped; ``check`` succeeded)."""
        from mlcycle.rollback import record

        return record(CFG, params["version"], ti.xcom_pull(task_ids="sign_off", key=DECISION_KEY), run_id)

    evidence = check()
    evidence >> sign_off >> promote() >> record_decision(evidence)
