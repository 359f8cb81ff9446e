"""The DAGs of every use case and model of the catalog (``mlcycle.specs``), built by one factory:
each model gets the same graph, the same sign-off and the same tests.

    <use case>_data          land, gate and build one day of the use case's features
    <model>_training         fit a challenger, register it, compare it, ask a person, promote
    <model>_scoring          score each new day of features (or a new champion's days)
    <model>_monitoring       compare the predictions with what happened; start a retraining
    <model>_rollback         bring an earlier champion back, by a person's decision
    <model>_archival         archive retired versions past the retention period

The DAG files of ``dags/`` call one builder each. Imported at DAG parse time: Airflow's own
modules and the catalog's plain data only; everything else is imported inside the tasks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

# The Airflow modules the DAGs need, imported by the DAG files through this module, so that the
# dag-processor imports them once ([dag_processor] parsing_pre_import_modules).
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, Param, TriggerRule, task

from mlcycle.config import settings
from mlcycle.orchestration.names import dag_id, data_dag_id, data_range_dag_id
from mlcycle.orchestration.operators import (
    champion_asset,
    features_asset,
    model_asset,
    partitions_from_events,
    spark_job,
    spark_job_per_day,
)
from mlcycle.signoff.approval import DECISION_KEY, sign_off_task
from mlcycle.specs import catalog


def _day(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _start(model) -> datetime:
    """A model's DAGs start with the first day of its use case's data."""
    return _day(model.usecase.first_day)


def _tags(model, stage: str) -> list[str]:
    return [model.usecase.name, model.name, stage]


def _doc(model, text: str) -> str:
    return f"**{model.registered_name}** ({model.id}, {model.task}; folder `{model.folder}`)\n\n{text}"


# --- a use case's data --------------------------------------------------------------------------


def data_dag(usecase) -> DAG:
    """Land the day's upstream drop, gate it, keep the validated partition, build features.

    One run per day (data interval = that day); backfill it from the UI or the CLI. The raw gate
    quarantines bad rows and holds a day whose data as a whole is wrong (schema, volume,
    duplicates, too many bad rows, an empty or unreadable file, rows of another day): the task
    then fails at once, without retrying, and its log and its "Data quality" link say which rules
    held the day, what was observed and expected, where the quarantined rows and the Data Docs
    are. To gate files that another process delivered to ``landing/``, trigger with ``replay``
    off."""
    cfg = settings()
    data_root = cfg.data_root
    features = features_asset(usecase.name)
    with DAG(
        dag_id=data_dag_id(usecase),
        schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
        start_date=_day(usecase.first_day),
        end_date=_day(usecase.last_day),
        catchup=False,
        # One day at a time: a day's raw gate takes its volume band from the verdicts of the days
        # before it, and its features their history from the days before it validated; two days
        # at once would build a day before the one it reads (what it wrote would depend on which
        # finished first).
        max_active_runs=1,
        default_args={"retries": 1, "retry_delay": cfg.retry_delay},
        tags=[usecase.name, "data"],
        doc_md=f"**{usecase.name}**: {usecase.description}\n\n{data_dag.__doc__}",
        params={
            "replay": Param(
                True,
                type="boolean",
                description="Replay the day's drop into landing/ first (the use case's own replay). "
                "Off: gate the files already delivered to landing/<dataset>/ds=<day>/.",
            )
        },
    ) as dag:
        datasets = list(usecase.datasets)

        @task
        def land(ds: str, params=None) -> dict:
            """The use case's replay of the day's drop (its Spark code's ``land_day``), or the
            files another process delivered."""
            from mlcycle.quality.landing import landing_path

            code = usecase.code_module()
            code.load_reference(data_root)
            if params["replay"]:
                return code.land_day(data_root, ds)
            # delivered by someone else: the raw gate checks the files, missing ones included
            return {name: landing_path(data_root, name, ds) for name in datasets}

        args = ["--ds", "{{ ds }}", "--data-root", data_root, "--usecase", usecase.name]
        validate_raw = spark_job("validate_raw", "quality.py", args, name=usecase.name)
        build_features = spark_job("build_features", "features.py", args, name=usecase.name)

        @task(outlets=[features])
        def publish_features(ds: str, outlet_events=None) -> str:
            """Announce the day's features, so scoring of that day can start."""
            outlet_events[features].extra = {"ds": ds}
            return ds

        land() >> validate_raw >> build_features >> publish_features()
    return dag


def data_range_dag(usecase) -> DAG:
    """The data DAG's work for a month of days in one run: for backfills.

    Backfill this DAG over a span (in the UI: Trigger, then Backfill) instead of the daily one:
    each run lands, gates and builds every day of its month in one job per step, and writes what
    the daily runs would have written, day by day: each day its validated partition, its verdicts
    (``gates/<gate>/ds=D.json``), its features and feature views. A day held by a gate holds that
    day only: the others are written and announced, and the run fails (``all_days_done``) naming
    the held days (their verdicts say why; a held day's Data Docs are built). Fix the data, then clear the run, or run
    the day alone in the daily DAG. Scoring and monitoring start from the announced days as they
    do from a daily run, a month in one job."""
    cfg = settings()
    data_root = cfg.data_root
    features = features_asset(usecase.name)
    with DAG(
        dag_id=data_range_dag_id(usecase),
        schedule=CronDataIntervalTimetable("@monthly", timezone="UTC"),
        start_date=_day(usecase.first_day),
        end_date=_day(usecase.last_day),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 1, "retry_delay": cfg.retry_delay},
        tags=[usecase.name, "data", "backfill"],
        doc_md=f"**{usecase.name}**: {usecase.description}\n\n{data_range_dag.__doc__}",
        params={
            "replay": Param(
                True,
                type="boolean",
                description="Replay each day's drop into landing/ first. Off: gate the files already "
                "delivered to landing/<dataset>/ds=<day>/.",
            )
        },
    ) as dag:

        @task
        def land(data_interval_start=None, data_interval_end=None, params=None) -> list[str]:
            """The days of the run (within the use case's days), each day's drop replayed."""
            from mlcycle.quality.landing import interval_days

            days = interval_days(data_interval_start, data_interval_end, usecase.first_day, usecase.last_day)
            if not days:
                from airflow.sdk.exceptions import AirflowSkipException

                raise AirflowSkipException(
                    f"no day of {usecase.name} ({usecase.first_day}..{usecase.last_day}) in this interval"
                )
            code = usecase.code_module()
            code.load_reference(data_root)
            if params["replay"]:
                if hasattr(code, "land_days"):
                    code.land_days(data_root, days)
                else:
                    for ds in days:
                        code.land_day(data_root, ds)
            return days

        args = [
            "--start",
            "{{ ti.xcom_pull(task_ids='land')[0] }}",
            "--end",
            "{{ ti.xcom_pull(task_ids='land')[-1] }}",
            "--data-root",
            data_root,
            "--usecase",
            usecase.name,
        ]
        validate_raw = spark_job("validate_raw", "quality.py", args, name=usecase.name)
        # the days that passed are built even when others were held
        build_features = spark_job(
            "build_features", "features.py", args, name=usecase.name, trigger_rule=TriggerRule.ALL_DONE
        )

        @task(outlets=[features], trigger_rule=TriggerRule.ALL_DONE)
        def publish_features(days: list[str], outlet_events=None) -> list[str]:
            """Announce the days whose features were written, so scoring of them can start."""
            from mlcycle.quality.gates import read_result

            built = [ds for ds in days if (read_result(data_root, "features", ds) or {}).get("success")]
            if built:
                outlet_events[features].extra = {"ds": built}
            return built

        @task(trigger_rule=TriggerRule.ALL_DONE)
        def all_days_done(days: list[str]) -> list[str]:
            """Fail the run while a gate holds one of its days (the run's leaf: Airflow marks a run
            by its last tasks), naming the days; the others are written and announced."""
            from airflow.sdk.exceptions import AirflowFailException

            from mlcycle.quality.gates import held_days_message, read_result

            gates = {"validate_raw": usecase.raw_gates, "build_features": ("features",)}
            held = {
                task_id: [
                    ds
                    for ds in days
                    if any((read_result(data_root, g, ds) or {}).get("success") is False for g in of_task)
                ]
                for task_id, of_task in gates.items()
            }
            if any(held.values()):
                raise AirflowFailException(
                    "\n\n".join(held_days_message(data_root, t, days) for t, d in held.items() if d)
                )
            missing = [ds for ds in days if not (read_result(data_root, "features", ds) or {}).get("success")]
            if missing:
                raise AirflowFailException(
                    f"no features written for {', '.join(missing)}: see the tasks' logs"
                )
            return days

        landed = land()
        landed >> validate_raw >> build_features >> publish_features(landed) >> all_days_done(landed)
    return dag


# --- a model's lifecycle ------------------------------------------------------------------------


def training_dag(model) -> DAG:
    """Fit a challenger on a window of features, register it, compare it with the champion, ask a
    person, and promote on approval.

    Trigger it with a window (``train_start``..``train_end``); the last ``holdout_days`` of the
    window are the validation set on which challenger and champion are compared. The rules that
    reject a clearly worse challenger before anyone is asked are the model's ``[evaluation]``;
    a run may set its own."""
    cfg = settings().for_model(model)
    champion = champion_asset(model)
    ev = model.evaluation
    metric = model.deciding
    with DAG(
        dag_id=dag_id(model, "training"),
        schedule=None,
        start_date=_start(model),
        catchup=False,
        max_active_runs=1,
        params={
            "train_start": Param(model.usecase.first_day, type="string", format="date"),
            "train_end": Param(
                (_day(model.usecase.first_day) + timedelta(days=89)).date().isoformat(),
                type="string",
                format="date",
            ),
            "holdout_days": Param(int(model.retraining["holdout_days"]), type="integer", minimum=1),
            "min_improvement": Param(
                float(ev["min_improvement"]),
                type="number",
                description=f"Validation {metric} by which the challenger must beat the champion to "
                "reach a person; negative lets a slightly worse one through",
            ),
            "slice_tolerance": Param(
                float(ev["slice_tolerance"]),
                type="number",
                description=f"Validation {metric} by which the challenger may be worse than the "
                f"champion on any one {ev['slice']} (with at least min_slice_rows validation rows)",
            ),
            "min_slice_rows": Param(int(ev["min_slice_rows"]), type="integer", minimum=1),
            "grid": Param(
                cfg.training_grid,
                enum=["full", "smallest"],
                description="Tuning candidates: full, or smallest (one small model: a quick check that "
                "the whole training runs, not a model to serve)",
            ),
            "approval_timeout_hours": Param(
                None,
                type=["null", "number"],
                exclusiveMinimum=0,
                description="Hours the approvers have to answer in this run; no answer in time means "
                f"Reject. Empty: {model.timeout_hours:g} h (the model's [sign_off] timeout_hours)",
            ),
        },
        tags=_tags(model, "training"),
        doc_md=_doc(model, training_dag.__doc__),
    ) as dag:

        @task
        def check_inputs(params=None) -> list[str]:
            from mlcycle.training import check_training_inputs

            return check_training_inputs(
                cfg.data_root,
                params["train_start"],
                params["train_end"],
                params["holdout_days"],
                model.usecase,
            )

        train = spark_job(
            "train",
            "training.py",
            [
                "--start",
                "{{ params.train_start }}",
                "--end",
                "{{ params.train_end }}",
                "--holdout-days",
                "{{ params.holdout_days }}",
                "--data-root",
                cfg.data_root,
                "--model",
                model.name,
                "--airflow-run-id",
                "{{ run_id }}",
                "--grid",
                "{{ params.grid }}",
            ],
            name=model.name,
        )

        # The registry may be briefly away (a restart, a network blip): fail fast, retry, and find
        # the version again if a first try had registered it (one version per run, whatever the
        # tries).
        @task(retries=4, retry_delay=cfg.retry_delay)
        def register(run_id=None, dag=None) -> dict:
            from mlcycle.registry import register_training_run

            return register_training_run(cfg.tracking_uri, cfg.model_name, run_id, dag.dag_id)

        @task
        def evaluate(registered: dict, params=None, run_id=None) -> dict:
            from mlcycle.signoff.promotion import evaluate_challenger

            return evaluate_challenger(
                cfg,
                registered["version"],
                run_id,
                min_improvement=params["min_improvement"],
                slice_tolerance=params["slice_tolerance"],
                min_slice_rows=params["min_slice_rows"],
            )

        sign_off = sign_off_task(
            "Promote v{{ ti.xcom_pull(task_ids='register')['version'] }} of "
            + model.registered_name
            + " to champion?",
            evidence_task="evaluate",
            approvers=model.approvers,
            hours=model.timeout_hours,
        )

        @task(outlets=[champion], pool="model_promotion")
        def promote(registered: dict, params=None, run_id=None, ti=None, outlet_events=None) -> int:
            from mlcycle.signoff.promotion import promote_on_approval

            decision = ti.xcom_pull(task_ids="sign_off", key=DECISION_KEY)
            score_from = promote_on_approval(
                cfg, registered["version"], decision, run_id, params["train_end"]
            )
            outlet_events[champion].extra = {"version": registered["version"], "score_from": score_from}
            return registered["version"]

        @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
        def record_decision(registered: dict, run_id=None, ti=None) -> str:
            from mlcycle.signoff.promotion import record_decision

            decision = ti.xcom_pull(task_ids="sign_off", key=DECISION_KEY)
            auto_rejected = ti.xcom_pull(task_ids="evaluate")["auto_reject"]
            return record_decision(cfg, registered["version"], decision, auto_rejected, run_id)

        @task.short_circuit(ignore_downstream_trigger_rules=False)
        def needs_sign_off(evidence: dict) -> bool:
            """A clearly worse challenger is rejected by rule, before anyone is asked."""
            return not evidence["auto_reject"]

        registered = register()
        check_inputs() >> train >> registered
        needs_sign_off(evaluate(registered)) >> sign_off >> promote(registered) >> record_decision(registered)
    return dag


def scoring_dag(model) -> DAG:
    """Batch scoring: each new day of features (or a new champion) is scored by the current
    champion, into the model's own ``predictions/ds=D``.

    The champion is resolved once per run; each prediction row carries the model name, version
    and the run. A day scored before keeps the version recorded for it (a re-run writes the same
    predictions) unless the run sets ``rescore``."""
    cfg = settings().for_model(model)
    features, champion = features_asset(model.usecase.name), champion_asset(model)
    predictions = model_asset(model, "predictions")
    with DAG(
        dag_id=dag_id(model, "scoring"),
        schedule=features | champion,
        start_date=_start(model),
        catchup=False,
        max_active_runs=1,
        params={
            "days": Param([], type="array", description="Days to score (YYYY-MM-DD), for a manual run"),
            "rescore": Param(
                False,
                type="boolean",
                description="Score days that were scored before with the current champion, instead "
                "of the version recorded for each day",
            ),
        },
        tags=_tags(model, "scoring"),
        doc_md=_doc(model, scoring_dag.__doc__),
    ) as dag:

        @task
        def plan(params=None, triggering_asset_events=None, dag=None, run_id=None) -> list[list[str]]:
            """The days of the run (asked for, or announced by new features or a new champion),
            the champion resolved once and held for the run, and the job's arguments per day."""
            from mlcycle.scoring import days_to_score, resolve_champion, score_args

            days = days_to_score(cfg.data_root, params.get("days") or [], triggering_asset_events)
            champion = resolve_champion(cfg.tracking_uri, cfg.model_name, dag.dag_id, run_id)
            return score_args(cfg, days, champion, params["rescore"], dag.dag_id, run_id)

        @task(outlets=[predictions])
        def publish_predictions(args: list[list[str]], outlet_events=None) -> list[str]:
            from mlcycle.scoring import days_in

            days = sorted({ds for a in args for ds in days_in(a)})
            outlet_events[predictions].extra = {"ds": days}
            return days

        args = plan()
        score = spark_job_per_day("score", "scoring.py", args, name=model.name)
        score >> publish_predictions(args)
    return dag


def monitoring_dag(model) -> DAG:
    """Monitoring: once a day's predictions and its actual outcomes are in, compare them; when the
    champion has degraded for long enough, start its replacement.

    Each day's metrics (overall and per slice) and the drift of its features go to the model's
    ``monitoring/``, ``monitoring_slices/``, ``drift/`` and to MLflow. Then the champion's
    rolling value of the retraining metric is compared with its validation value: worse by
    ``retrain_tolerance`` on ``retrain_consecutive_days`` days in a row, and no training queued or
    running, and no retraining in the last ``cooling_off_days`` days, triggers the model's
    training on the most recent ``retrain_window_days`` days. The new challenger then goes
    through the usual evaluation and sign-off. The chart of the daily and rolling metric against
    the threshold is redrawn each run: the "Monitoring chart" link of any task of this DAG, and
    an artifact of the version's monitoring run."""
    from mlcycle.monitoring.retraining import RetrainRule

    cfg = settings().for_model(model)
    rule = RetrainRule.of(model)
    predictions, monitoring = model_asset(model, "predictions"), model_asset(model, "monitoring")
    training = dag_id(model, "training")
    with DAG(
        dag_id=dag_id(model, "monitoring"),
        schedule=predictions,
        start_date=_start(model),
        catchup=False,
        max_active_runs=1,
        render_template_as_native_obj=True,  # the retraining window goes to the training run as a dict
        params={
            "days": Param([], type="array", description="Days to monitor (YYYY-MM-DD), for a manual run"),
            "retrain_tolerance": Param(
                rule.tolerance,
                type="number",
                description=f"How much worse the rolling {rule.metric} may be than the champion's "
                "validation value",
            ),
            "retrain_consecutive_days": Param(rule.consecutive_days, type="integer", minimum=1),
            "rolling_days": Param(rule.window_days, type="integer", minimum=1),
            "cooling_off_days": Param(rule.cooling_off_days, type="integer", minimum=0),
            "retrain_window_days": Param(rule.train_days, type="integer", minimum=2),
            "retrain_holdout_days": Param(rule.holdout_days, type="integer", minimum=1),
        },
        tags=_tags(model, "monitoring"),
        doc_md=_doc(model, monitoring_dag.__doc__),
    ) as dag:

        @task
        def days_to_monitor(params=None, triggering_asset_events=None) -> list[list[str]]:
            """The days of the run, a month of days per monitoring job at most."""
            from mlcycle.scoring import chunks

            days = params.get("days") or partitions_from_events(
                (triggering_asset_events or {}).get(predictions, [])
            )
            return [
                [
                    *(arg for d in chunk for arg in ("--ds", d)),
                    "--data-root",
                    cfg.data_root,
                    "--model",
                    model.name,
                ]
                for chunk in chunks(sorted(set(days)))
            ]

        @task(outlets=[monitoring])
        def chart(args: list[list[str]], params=None, outlet_events=None) -> str:
            """Announce the monitored days; redraw the daily and rolling metric against the alert
            threshold, to the chart link and MLflow."""
            from mlcycle.monitoring.live import rule_from_params, write_chart
            from mlcycle.scoring import days_in

            days = sorted({ds for a in args for ds in days_in(a)})
            outlet_events[monitoring].extra = {"ds": days}
            return write_chart(cfg, rule_from_params(params, rule), days)

        @task.short_circuit
        def check_retraining(args: list[list[str]], params=None, ti=None):
            """The decision and its reason are in the log; the run goes on only to trigger."""
            from mlcycle.monitoring.live import retraining_decision, rule_from_params

            active = ti.get_dr_count(training, states=["queued", "running"]) > 0
            from mlcycle.scoring import days_in

            up_to = max(ds for a in args for ds in days_in(a))
            decision = retraining_decision(
                cfg, rule_from_params(params, rule), training_active=active, up_to=up_to
            )
            print(("retraining: " if decision["trigger"] else "no retraining: ") + decision["reason"])
            return decision if decision["trigger"] else False

        retrain = TriggerDagRunOperator(
            task_id="retrain",
            trigger_dag_id=training,
            trigger_run_id="retrain__{{ run_id }}",
            conf="{{ ti.xcom_pull(task_ids='check_retraining')['window'] }}",
            skip_when_already_exists=True,
        )

        @task
        def record_retraining(decision: dict, run_id=None) -> str:
            from mlcycle.monitoring.live import record_trigger

            record_trigger(cfg, decision, f"retrain__{run_id}")
            return f"retrain__{run_id}"

        args = days_to_monitor()
        monitored = spark_job_per_day("monitor", "monitoring.py", args, name=model.name)
        decision = check_retraining(args)
        monitored >> chart(args)
        monitored >> decision >> retrain >> record_retraining(decision)
    return dag


def rollback_dag(model) -> DAG:
    """Rollback: bring an earlier champion back, by a person's decision.

    Trigger it with the ``version`` to bring back (``mlcycle rollback --model M --to N`` does).
    The approvers see when that version served and how it compares; Approve moves ``champion`` to
    it (the current champion is retired), Reject or no answer changes nothing."""
    cfg = settings().for_model(model)
    champion = champion_asset(model)
    with DAG(
        dag_id=dag_id(model, "rollback"),
        schedule=None,
        start_date=_start(model),
        catchup=False,
        max_active_runs=1,
        params={
            "version": Param(
                1, type="integer", minimum=1, description="The version to bring back as champion"
            ),
            "reason": Param(None, type=["null", "string"], description="Why (shown to the approvers)"),
            "approval_timeout_hours": Param(None, type=["null", "number"], exclusiveMinimum=0),
        },
        tags=_tags(model, "rollback"),
        doc_md=_doc(model, rollback_dag.__doc__),
    ) as dag:

        @task
        def check(params=None, dag=None, run_id=None) -> dict:
            from mlcycle.signoff.rollback import check

            return check(cfg, params["version"], params.get("reason"), dag.dag_id, run_id)

        sign_off = sign_off_task(
            "Roll " + model.registered_name + " back to v{{ params.version }}?",
            evidence_task="check",
            approvers=model.approvers,
            hours=model.timeout_hours,
        )

        @task(outlets=[champion], pool="model_promotion")
        def promote(params=None, run_id=None, ti=None, outlet_events=None) -> int:
            from mlcycle.signoff.rollback import promote

            version = promote(
                cfg, params["version"], ti.xcom_pull(task_ids="sign_off", key=DECISION_KEY), run_id
            )
            outlet_events[champion].extra = {"version": version}
            return version

        @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
        def record_decision(evidence: dict, params=None, run_id=None, ti=None) -> str:
            """Runs after a rejection too (``promote`` is then skipped; ``check`` succeeded)."""
            from mlcycle.signoff.rollback import record

            return record(cfg, params["version"], ti.xcom_pull(task_ids="sign_off", key=DECISION_KEY), run_id)

        evidence = check()
        evidence >> sign_off >> promote() >> record_decision(evidence)
    return dag


def archival_dag(model) -> DAG:
    """Archival: retired versions past the model's retention period are copied to the archive with
    a model card, tagged archived, and lose their aliases. The champion is never touched, nor a
    version a running DAG run still uses (a scoring run's model, a pending rollback's target)."""
    cfg = settings().for_model(model)
    with DAG(
        dag_id=dag_id(model, "archival"),
        schedule="@daily",
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        params={
            "retention_days": Param(
                model.retention_days,
                type="number",
                minimum=0,
                description="Days a version stays retired before it is archived (the model's "
                "[retention] retention_days)",
            )
        },
        tags=_tags(model, "archival"),
        doc_md=_doc(model, archival_dag.__doc__),
    ) as dag:

        @task
        def archive_retired(params=None, dag_run=None, ti=None) -> list[int]:
            from mlcycle.archival import archive_retired
            from mlcycle.registry import ACTIVE_RUN_STATES

            def run_is_active(dag_id: str, run_id: str) -> bool:
                return ti.get_dr_count(dag_id, run_ids=[run_id], states=list(ACTIVE_RUN_STATES)) > 0

            return archive_retired(
                cfg.tracking_uri,
                cfg.model_name,
                cfg.archive_root,
                params["retention_days"],
                dag_run.run_after.isoformat(),
                run_is_active=run_is_active,
            )

        archive_retired()
    return dag


BUILDERS = {
    "training": training_dag,
    "scoring": scoring_dag,
    "monitoring": monitoring_dag,
    "rollback": rollback_dag,
    "archival": archival_dag,
}


def model_dags(stage: str) -> dict[str, DAG]:
    """The ``stage`` DAG of every model the catalog keeps (refused folders are reported by
    ``dags/refused_folders.py``), by DAG id."""
    build = BUILDERS[stage]
    return {dag.dag_id: dag for dag in (build(m) for m in catalog().models.values())}


def data_dags() -> dict[str, DAG]:
    """The data DAGs of every use case of the catalog (a day per run, a month per run), by DAG id."""
    usecases = list(catalog().usecases.values())
    return {
        dag.dag_id: dag for dag in [*(data_dag(u) for u in usecases), *(data_range_dag(u) for u in usecases)]
    }
