"""Batch scoring: each new day of features (or a new champion) is scored by the current champion.

The champion is resolved once per run; each prediction row carries the model name, version and
the run. A day scored before keeps the version recorded for it (a re-run writes the same
predictions) unless the run sets ``rescore``.
"""

from __future__ import annotations

from datetime import datetime

# The Airflow modules this file needs through mlcycle, named so that the dag-processor imports them
# once, before it starts a parser for the file ([dag_processor] parsing_pre_import_modules), instead
# of in every parse.
import airflow.providers.apache.spark.operators.spark_submit  # noqa: F401
import airflow.providers.standard.decorators.python  # noqa: F401
from airflow.sdk import DAG, Param, task

from mlcycle.config import settings
from mlcycle.orchestration import CHAMPION, FEATURES, PREDICTIONS, spark_job_per_day

CFG = settings()

with DAG(
    dag_id="flights_scoring",
    schedule=FEATURES | CHAMPION,
    start_date=datetime(2013, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "days": Param([], type="array", description="Days to score (YYYY-MM-DD), for a manual run"),
        "rescore": Param(
            False,
            type="boolean",
            description="Score days that were scored before with the current champion, instead of "
            "the version recorded for each day",
        ),
    },
    tags=["flights", "scoring"],
    doc_md=__doc__,
) as dag:

    @task
    def days_to_score(params=None, triggering_asset_events=None) -> list[str]:
        from mlcycle.scoring import days_to_score

        return days_to_score(CFG.data_root, params.get("days") or [], triggering_asset_events)

    @task
    def resolve_champion(dag=None, run_id=None) -> dict:
        from mlcycle.scoring import resolve_champion

        return resolve_champion(CFG.tracking_uri, CFG.model_name, dag.dag_id, run_id)

    @task
    def score_args(days: list[str], champion: dict, params=None, dag=None, run_id=None) -> list[list[str]]:
        from mlcycle.registry import hold
        from mlcycle.scoring import scoring_plan

        plan = scoring_plan(CFG.data_root, days, CFG.model_name, champion, params["rescore"])
        for version in sorted({p["version"] for p in plan} - {champion["version"]}):
            hold(CFG.tracking_uri, CFG.model_name, version, dag.dag_id, run_id)
        for p in plan:
            print(f"ds={p['ds']}: v{p['version']} ({p['reason']})")
        return [
            [
                "--ds",
                p["ds"],
                "--data-root",
                CFG.data_root,
                "--model-uri",
                p["uri"],
                "--model-name",
                CFG.model_name,
                "--model-version",
                str(p["version"]),
                "--airflow-run-id",
                run_id,
            ]
            for p in plan
        ]

    @task(outlets=[PREDICTIONS])
    def publish_predictions(days: list[str], outlet_events=None) -> list[str]:
        outlet_events[PREDICTIONS].extra = {"ds": days}
        return days

    days = days_to_score()
    champion = resolve_champion()
    score = spark_job_per_day("score", "score.py", score_args(days, champion))
    score >> publish_predictions(days)
