"""The accounts of the MLflow server of docker-compose.yaml (one-shot service `mlflow-auth-init`).

Runs as the MLflow admin (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD) once the server is
healthy, at every `docker compose up`, and can run any number of times:

1. the pipeline account (MLFLOW_PIPELINE_USER, password MLFLOW_PIPELINE_PASSWORD) exists, is not
   an admin, and has the password of the environment (a password changed in .env is applied at
   the next start);
2. the registered model of every model of the catalog (the `registered_name` of each
   usecases/<use case>/models/<model>/model.toml, mounted read-only) and the pipeline's
   experiments (the model's name for the training runs, `<name>-monitoring` for the monitoring
   runs) exist; the admin creates them here, so that no other account can create them first and
   own them;
3. the pipeline account, and no other, is granted MANAGE on them.

Every other account has the server's `default_permission`, READ (deploy/mlflow/basic_auth.ini):
it can look at runs, versions and aliases, and cannot register a version or move an alias. The
Airflow components log in as the pipeline account, so `champion` moves only through the DAGs'
sign-off and promotion tasks.

Nothing secret is in this file: every password comes from the environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

PERMISSION = "MANAGE"
MIN_PASSWORD_LENGTH = 12  # what the MLflow auth store accepts


def model_names(environ: Mapping[str, str]) -> list[str]:
    """The registered names to set up: MLCYCLE_MODEL_NAMES (comma-separated) when set, else those of
    the catalog (``mlcycle.specs``, reading MLCYCLE_USECASES)."""
    listed = [n.strip() for n in (environ.get("MLCYCLE_MODEL_NAMES") or "").split(",") if n.strip()]
    if listed:
        return listed
    from mlcycle.specs import catalog

    found = catalog()
    for error in found.errors:
        print(f"refused model folder (no grants for it): {error}", file=sys.stderr)
    if not found.models:
        raise SystemExit("no model in the catalog: mount the use case folders (MLCYCLE_USECASES)")
    return sorted(m.registered_name for m in found.models.values())


def experiment_names(model_name: str) -> list[str]:
    """The experiments the pipeline writes to (spark_jobs/training.py, mlcycle/monitoring/live.py)."""
    return [model_name, f"{model_name}-monitoring"]


def _error_code(exc: Exception) -> str | None:
    """The MLflow error code of a failed call (``MlflowException.error_code``), else None."""
    return getattr(exc, "error_code", None)


def ensure_user(auth, username: str, password: str) -> str:
    """Create the account, or reset its password to ``password``; never an admin."""
    try:
        user = auth.get_user(username)
    except Exception as exc:
        if _error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
            raise
        auth.create_user(username, password)
        return "created"
    auth.update_user_password(username, password)
    if getattr(user, "is_admin", False):
        auth.update_user_admin(username, False)
    return "updated"


def ensure_registered_model(tracking, name: str) -> None:
    try:
        tracking.get_registered_model(name)
        return
    except Exception as exc:
        if _error_code(exc) != "RESOURCE_DOES_NOT_EXIST":
            raise
    try:
        tracking.create_registered_model(name)
    except Exception as exc:
        if _error_code(exc) != "RESOURCE_ALREADY_EXISTS":
            raise


def ensure_experiment(tracking, name: str) -> str:
    """The id of the experiment ``name``, created (or restored from deletion) if need be."""
    experiment = tracking.get_experiment_by_name(name)
    if experiment is None:
        return str(tracking.create_experiment(name))
    if experiment.lifecycle_stage == "deleted":
        tracking.restore_experiment(experiment.experiment_id)
    return str(experiment.experiment_id)


def grant(auth, username: str, resource_type: str, resource_id: str, permission: str = PERMISSION) -> None:
    """Give ``username`` exactly ``permission`` on one resource, replacing an earlier grant."""
    try:
        auth.grant_user_permission(username, resource_type, resource_id, permission)
    except Exception as exc:
        if _error_code(exc) != "RESOURCE_ALREADY_EXISTS":
            raise
        auth.revoke_user_permission(username, resource_type, resource_id)
        auth.grant_user_permission(username, resource_type, resource_id, permission)


def _required(environ: Mapping[str, str], name: str) -> str:
    value = (environ.get(name) or "").strip()
    if not value:
        raise SystemExit(f"{name} is not set (see .env.example)")
    return value


def setup(environ: Mapping[str, str], auth=None, tracking=None) -> list[tuple[str, str, str, str]]:
    """Do the three steps above; returns the grants made, as (user, resource type, id, permission)."""
    tracking_uri = _required(environ, "MLFLOW_TRACKING_URI")
    admin = _required(environ, "MLFLOW_TRACKING_USERNAME")
    _required(environ, "MLFLOW_TRACKING_PASSWORD")
    username = _required(environ, "MLFLOW_PIPELINE_USER")
    password = _required(environ, "MLFLOW_PIPELINE_PASSWORD")
    names = model_names(environ)
    if username == admin:
        raise SystemExit("MLFLOW_PIPELINE_USER must not be the MLflow admin account")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SystemExit(f"MLFLOW_PIPELINE_PASSWORD needs at least {MIN_PASSWORD_LENGTH} characters")

    if auth is None:
        from mlflow.server import get_app_client

        auth = get_app_client("basic-auth", tracking_uri=tracking_uri)
    if tracking is None:
        from mlflow import MlflowClient

        tracking = MlflowClient(tracking_uri=tracking_uri)

    print(f"MLflow account {username}:", ensure_user(auth, username, password))
    grants = []
    for model_name in names:
        ensure_registered_model(tracking, model_name)
        grants.append((username, "registered_model", model_name, PERMISSION))
        for name in experiment_names(model_name):
            grants.append((username, "experiment", ensure_experiment(tracking, name), PERMISSION))
    for user, resource_type, resource_id, permission in grants:
        grant(auth, user, resource_type, resource_id, permission)
        print(f"{user}: {permission} on {resource_type} {resource_id}")
    return grants


if __name__ == "__main__":
    setup(os.environ)
    sys.exit(0)
