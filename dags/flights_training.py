"""Training: fit a challenger on a window of features, register it, compare it with the champion,
ask a person, and promote on approval.

Trigger it with a window (``train_start``..``train_end``); the last ``holdout_days`` of the window
are the validation set on which challenger and champion are compared.
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
from mlcycle.orchestration import CHAMPION, spark_job
from mlcycle.signoff import APPROVAL_HOURS, DECISION_KEY, sign_off_task

CFG = settings()

with DAG(
    dag_id="flights_training",
    schedule=None,
    start_date=datetime(2013, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "train_start": Param("2013-01-01", type="string", format="date"),
        "train_end": Param("2013-03-31", type="string", format="date"),
        "holdout_days": Param(7, type="integer", minimum=1),
        "min_improvement": Param(
            0.0,
            type="number",
            description="Minutes of MAE by which the challenger must beat the champion to reach a "
            "person; negative lets a slightly worse one through",
        ),
        "carrier_tolerance": Param(
            5.0,
            type="number",
            description="Minutes of MAE by which the challenger may be worse than the champion on "
            "any one carrier (with at least min_carrier_flights validation flights)",
        ),
        "min_carrier_flights": Param(30, type="integer", minimum=1),
        "grid": Param(
            CFG.training_grid,
            enum=["full", "smallest"],
            description="Tuning candidates: full, or smallest (one small forest: a quick check that "
            "the whole training runs, not a model to serve)",
        ),
        "approval_timeout_hours": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            description="Hours the approvers have to answer in this run; no answer in time means "
            f"Reject. Empty: {APPROVAL_HOURS:g} h (MLCYCLE_APPROVAL_TIMEOUT_HOURS)",
        ),
    },
    tags=["flights", "training"],
    doc_md=__doc__,
) as dag:

    @task
    def check_inputs(params=None) -> list[str]:
        from mlcycle.training import check_training_inputs

        return check_training_inputs(
            CFG.data_root, params["train_start"], params["train_end"], params["holdout_days"]
        )

    train = spark_job(
        "train",
        "train.py",
        [
            "--start",
            "{{ params.train_start }}",
            "--end",
            "{{ params.train_end }}",
            "--holdout-days",
            "{{ params.holdout_days }}",
            "--data-root",
            CFG.data_root,
            "--model-name",
            CFG.model_name,
            "--airflow-run-id",
            "{{ run_id }}",
            "--grid",
            "{{ params.grid }}",
        ],
    )

    # The registry may be briefly away (a restart, a network blip): fail fast, retry, and find the
    # version again if a first try had registered it (one version per run, whatever the tries).
    @task(retries=4, retry_delay=CFG.retry_delay)
    def register(run_id=None, dag=None) -> dict:
        from mlcycle.registry import register_training_run

        return register_training_run(CFG.tracking_uri, CFG.model_name, run_id, dag.dag_id)

    @task
    def evaluate(registered: dict, params=None, run_id=None) -> dict:
        from mlcycle.training import evaluate_challenger

        return evaluate_challenger(
            CFG,
            registered["version"],
            params["min_improvement"],
            run_id,
            carrier_tolerance=params["carrier_tolerance"],
            min_carrier_flights=params["min_carrier_flights"],
        )

    sign_off = sign_off_task(
        "Promote v{{ ti.xcom_pull(task_ids='register')['version'] }} of " + CFG.model_name + " to champion?",
        evidence_task="evaluate",
        approvers=CFG.approvers,
    )

    @task(outlets=[CHAMPION], pool="model_promotion")
    def promote(registered: dict, params=None, run_id=None, ti=None, outlet_events=None) -> int:
        from mlcycle.training import promote_on_approval

        decision = ti.xcom_pull(task_ids="sign_off", key=DECISION_KEY)
        score_from = promote_on_approval(CFG, registered["version"], decision, run_id, params["train_end"])
        outlet_events[CHAMPION].extra = {"version": registered["version"], "score_from": score_from}
        return registered["version"]

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def record_decision(registered: dict, run_id=None, ti=None) -> str:
        from mlcycle.training import record_decision

        decision = ti.xcom_pull(task_ids="sign_off", key=DECISION_KEY)
        auto_rejected = ti.xcom_pull(task_ids="evaluate")["auto_reject"]
        return record_decision(CFG, registered["version"], decision, auto_rejected, run_id)

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def needs_sign_off(evidence: dict) -> bool:
        """A clearly worse challenger is rejected by rule, before anyone is asked."""
        return not evidence["auto_reject"]

    registered = register()
    check_inputs() >> train >> registered
    needs_sign_off(evaluate(registered)) >> sign_off >> promote(registered) >> record_decision(registered)
