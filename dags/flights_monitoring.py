"""Monitoring: once a day's predictions and its actual flight times are in, compare them; when the
champion has degraded for long enough, start its replacement.

Each day's MAE, RMSE, bias and coverage (overall and per carrier) and the drift of its features go
to ``monitoring/``, ``monitoring_carrier/``, ``drift/`` and to MLflow. Then the champion's rolling
MAE is compared with its validation MAE: over it by ``retrain_tolerance`` minutes on
``retrain_consecutive_days`` days in a row, and no training queued or running, and no retraining
in the last ``cooling_off_days`` days, triggers ``flights_training`` on the most recent
``retrain_window_days`` days. The new challenger then goes through the usual evaluation and
sign-off. The chart of daily and rolling MAE against the threshold is redrawn each run: the
"MAE chart" link of any task of this DAG, and an artifact of the version's monitoring run.
"""

from __future__ import annotations

from datetime import datetime

# The Airflow modules this file needs through mlcycle, named so that the dag-processor imports them
# once, before it starts a parser for the file ([dag_processor] parsing_pre_import_modules), instead
# of in every parse.
import airflow.providers.apache.spark.operators.spark_submit  # noqa: F401
import airflow.providers.standard.decorators.python  # noqa: F401
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Param, task

from mlcycle.config import settings
from mlcycle.monitoring import default_rule
from mlcycle.orchestration import MONITORING, PREDICTIONS, partitions_from_events, spark_job_per_day

CFG = settings()
RULE = default_rule()
TRAINING_DAG = "flights_training"

with DAG(
    dag_id="flights_monitoring",
    schedule=PREDICTIONS,
    start_date=datetime(2013, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,  # the retraining window goes to the training run as a dict
    params={
        "days": Param([], type="array", description="Days to monitor (YYYY-MM-DD), for a manual run"),
        "retrain_tolerance": Param(
            RULE.tolerance,
            type="number",
            description="Minutes of rolling MAE over the champion's validation MAE",
        ),
        "retrain_consecutive_days": Param(RULE.consecutive_days, type="integer", minimum=1),
        "rolling_days": Param(RULE.window_days, type="integer", minimum=1),
        "cooling_off_days": Param(RULE.cooling_off_days, type="integer", minimum=0),
        "retrain_window_days": Param(RULE.train_days, type="integer", minimum=2),
        "retrain_holdout_days": Param(RULE.holdout_days, type="integer", minimum=1),
    },
    tags=["flights", "monitoring"],
    doc_md=__doc__,
) as dag:

    @task
    def days_to_monitor(params=None, triggering_asset_events=None) -> list[list[str]]:
        days = params.get("days") or partitions_from_events(
            (triggering_asset_events or {}).get(PREDICTIONS, [])
        )
        return [["--ds", d, "--data-root", CFG.data_root] for d in sorted(set(days))]

    @task(outlets=[MONITORING])
    def publish_monitoring(args: list[list[str]], outlet_events=None) -> None:
        outlet_events[MONITORING].extra = {"ds": [a[1] for a in args]}

    @task
    def chart(args: list[list[str]], params=None) -> str:
        """Daily and rolling MAE against the alert threshold, to the "MAE chart" link and MLflow."""
        from mlcycle.monitoring import rule_from_params, write_chart

        return write_chart(CFG, rule_from_params(params, RULE), [a[1] for a in args])

    @task.short_circuit
    def check_retraining(args: list[list[str]], params=None, ti=None):
        """The decision and its reason are in the log; the run goes on only to trigger."""
        from mlcycle.monitoring import retraining_decision, rule_from_params

        active = ti.get_dr_count(TRAINING_DAG, states=["queued", "running"]) > 0
        decision = retraining_decision(
            CFG, rule_from_params(params, RULE), training_active=active, up_to=max(a[1] for a in args)
        )
        print(("retraining: " if decision["trigger"] else "no retraining: ") + decision["reason"])
        return decision if decision["trigger"] else False

    retrain = TriggerDagRunOperator(
        task_id="retrain",
        trigger_dag_id=TRAINING_DAG,
        trigger_run_id="retrain__{{ run_id }}",
        conf="{{ ti.xcom_pull(task_ids='check_retraining')['window'] }}",
        skip_when_already_exists=True,
    )

    @task
    def record_retraining(decision: dict, run_id=None) -> str:
        from mlcycle.monitoring import record_trigger

        record_trigger(CFG, decision, f"retrain__{run_id}")
        return f"retrain__{run_id}"

    args = days_to_monitor()
    published = spark_job_per_day("monitor", "monitor.py", args) >> publish_monitoring(args)
    decision = check_retraining(args)
    published >> chart(args)
    published >> decision >> retrain >> record_retraining(decision)
