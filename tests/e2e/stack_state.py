"""What the e2e tests read back from the stack: the registry through MLflow, XComs through Airflow."""

from __future__ import annotations

MODEL = "flights_air_time"


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
