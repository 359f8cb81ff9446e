"""What the e2e tests read back from the stack (the registry through MLflow, XComs through Airflow),
and the few things they do the way a person does them (train, answer a sign-off at once)."""

from __future__ import annotations

MODEL = "flights_air_time"
TRAINING = "air_time_training"
ROLLBACK = "air_time_rollback"
FIRST_DAY, DAYS = "2013-01-01", 3
WINDOW = {"train_start": "2013-01-01", "train_end": "2013-01-02", "holdout_days": 1}
# Margins of 60 min let any challenger reach a person: the tests are about what happens around it.
LET_THROUGH = {"min_improvement": -60.0, "slice_tolerance": 60.0}
# How often a test looks for a parked sign-off: it answers as soon as the UI would show it.
AT_ONCE = 0.05


def mlflow_client(stack):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=stack["MLFLOW_TRACKING_URI"])


def versions(stack) -> dict[int, dict[str, str]]:
    """Every version of the model and its tags."""
    return {int(v.version): v.tags for v in mlflow_client(stack).search_model_versions(f"name = '{MODEL}'")}


def champion(stack) -> int | None:
    from mlcycle.registry import champion as champion_of

    return champion_of(stack["MLFLOW_TRACKING_URI"], MODEL)


def xcom(admin, dag_id: str, run_id: str, task_id: str):
    """The return value of a task of a run."""
    return admin.request(
        "GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    )["value"]


def former_champions(stack) -> list[int]:
    """Versions that served as champion, are retired and not archived (rollback targets), oldest
    first."""
    return sorted(
        v
        for v, tags in versions(stack).items()
        if tags.get("status") == "retired" and any(k.startswith("served.") for k in tags)
    )


def train(admin, **conf) -> str:
    """Trigger a training run on the test window that any challenger gets through."""
    return admin.trigger(TRAINING, conf={**WINDOW, **LET_THROUGH, **conf})


def answer_at_once(client, dag_id: str, run_id: str, option: str, comment: str = "") -> dict:
    """Answer the run's sign-off as soon as it is parked, as a person watching the UI can."""
    return client.respond(dag_id, run_id, "sign_off", option, comment=comment, poll=AT_ONCE)


def train_and_answer(admin, approver, option: str, comment: str = "", **conf) -> tuple[str, int]:
    """A training run answered at once; its run id and its version."""
    run_id = train(admin, **conf)
    answer_at_once(approver, TRAINING, run_id, option, comment=comment)
    assert admin.wait_for_run(TRAINING, run_id, timeout=900) == "success"
    return run_id, int(xcom(admin, TRAINING, run_id, "register")["version"])
