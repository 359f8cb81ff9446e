"""Model registry operations of the lifecycle, on MLflow 3 aliases and tags.

``champion`` and ``challenger`` are aliases; everything a person may later ask (which Airflow run
made a version, who approved it, when it served, where its archive is) is a tag on the version.
Every operation is safe to re-run: it looks at the registry before changing it. Timestamps are
passed in by the caller (the Airflow run's logical time), never read from the clock, so a retried
task writes the same tags.

``mlflow`` is imported inside the functions: DAG files import this module while being parsed.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

CHAMPION = "champion"
CHALLENGER = "challenger"

RUN_ID = "airflow.run_id"
DAG_ID = "airflow.dag_id"
STATUS = "status"
DECISION = "decision"
DECISION_BY = "decision.by"
DECISION_AT = "decision.at"
DECISION_COMMENT = "decision.comment"
DECISION_RUN_ID = "decision.airflow_run_id"
PROMOTED_AT = "promoted_at"
RETIRED_AT = "retired_at"
ARCHIVED_AT = "archived_at"

MODEL_ARTIFACT = "model"
# A DAG run that will load or promote a version holds it: in_use.<dag_id>.<digest of run id> = run
# id. Archival leaves a held version alone while its run is queued or running, and drops the hold
# once the run has ended; nothing else needs to release it.
IN_USE = "in_use"
ACTIVE_RUN_STATES = ("queued", "running")
# Each time a version serves as champion is a stint, kept on the version as served.<n>.from / .to /
# .by / .run (n = 1, 2, ... for a version brought back by a rollback).
SERVED = "served"


def _client(tracking_uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


class TrackingServerDown(RuntimeError):
    """The MLflow tracking server does not answer; nothing was written to it."""


def require_tracking_server(tracking_uri: str, timeout: float = 10.0) -> None:
    """Fail at once, saying so, when the tracking server does not answer its health check.

    The MLflow client retries a refused connection for minutes before giving up, with a message
    about urllib3 retries; a task should instead fail fast, say what is wrong, and let Airflow retry
    it. Only for an http(s) server (a local store has no server to be down)."""
    import urllib.error
    import urllib.request

    if not tracking_uri.startswith(("http://", "https://")):
        return
    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            if resp.status == 200:
                return
            problem = f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        problem = f"HTTP {exc.code}"
    except OSError as exc:
        problem = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    raise TrackingServerDown(
        f"The MLflow tracking server at {tracking_uri} is not answering ({problem} from {url}). "
        "Nothing was registered. Airflow retries this task; if the retries run out, start the "
        "server (for the embedded stack: make start) and clear the task."
    )


def _is_missing(exc) -> bool:
    return getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def _alias_version(client, model_name: str, alias: str) -> int | None:
    from mlflow.exceptions import MlflowException

    try:
        return int(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException as exc:
        if _is_missing(exc) or exc.error_code == "INVALID_PARAMETER_VALUE":
            return None
        raise


def _versions(client, model_name: str) -> list:
    """All versions of a model, oldest first ([] if the model is not registered yet)."""
    versions = client.search_model_versions(f"name = '{model_name}'")
    return sorted(versions, key=lambda v: int(v.version))


def _set_tags(client, model_name: str, version: int | str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(model_name, str(version), key, str(value))


def find_training_run(tracking_uri: str, model_name: str, airflow_run_id: str) -> str:
    """The finished training run of an Airflow run (experiment named after the model)."""
    client = _client(tracking_uri)
    experiment = client.get_experiment_by_name(model_name)
    runs = []
    if experiment is not None:
        runs = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.`{RUN_ID}` = '{airflow_run_id}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
    if not runs:
        raise LookupError(
            f"No finished training run tagged {RUN_ID}={airflow_run_id!r} in MLflow experiment "
            f"{model_name!r} at {tracking_uri}. Check that the train task of this Airflow run "
            f"succeeded (its log prints mlflow_run_id=...), then clear it to run it again."
        )
    return runs[0].info.run_id


@contextmanager
def _few_client_retries(retries: int = 2):
    """The MLflow client asks a refusing server again for about two minutes (seven tries with a
    doubling wait) before it gives up. A task that Airflow retries itself should fail within
    seconds instead, and come back when the server does."""
    names = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({names[0]: str(retries), names[1]: "1"})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def register_training_run(tracking_uri: str, model_name: str, airflow_run_id: str, dag_id: str) -> dict:
    """The ``register`` task of a training run: its MLflow run's model as the ``challenger``.

    Safe to retry after a fault at any point: the version is created together with its run tag
    (never a version that no run owns), and a retry finds it by that tag and finishes the job
    (tags, alias) instead of registering another. A server that is down or refuses fails the task
    within seconds, for Airflow to retry."""
    require_tracking_server(tracking_uri)
    with _few_client_retries():
        mlflow_run = find_training_run(tracking_uri, model_name, airflow_run_id)
        version = register_challenger(tracking_uri, model_name, mlflow_run, airflow_run_id, dag_id)
    return {"version": version, "mlflow_run_id": mlflow_run}


def register_challenger(
    tracking_uri: str, model_name: str, run_id: str, airflow_run_id: str, dag_id: str
) -> int:
    """Register ``runs:/<run_id>/model`` as the ``challenger``; a retry returns the same version."""
    client = _client(tracking_uri)
    existing = [v for v in _versions(client, model_name) if v.tags.get(RUN_ID) == airflow_run_id]
    if existing:
        version = int(existing[-1].version)
        print(f"{model_name} v{version} was registered by {airflow_run_id} already: finishing it")
    else:
        from mlflow.exceptions import MlflowException

        try:
            client.create_registered_model(model_name)
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        # Waits until the version is READY (or raises).
        created = client.create_model_version(
            model_name,
            source=f"runs:/{run_id}/{MODEL_ARTIFACT}",
            run_id=run_id,
            tags={RUN_ID: airflow_run_id, DAG_ID: dag_id, STATUS: CHALLENGER},
            await_creation_for=300,
        )
        version = int(created.version)
    current = client.get_model_version(model_name, str(version))
    if current.status != "READY":
        raise RuntimeError(f"{model_name} v{version} is {current.status}, not READY; retry the task")
    if current.tags.get(STATUS) in (None, CHALLENGER):
        _set_tags(client, model_name, version, {RUN_ID: airflow_run_id, DAG_ID: dag_id, STATUS: CHALLENGER})
        client.set_registered_model_alias(model_name, CHALLENGER, str(version))
    return version


def _json_artifact(client, run_id: str, path: str) -> dict | None:
    """A JSON artifact of a run, or None when the run has none (older runs)."""
    import tempfile

    from mlflow.exceptions import MlflowException

    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = client.download_artifacts(run_id, path, tmp)
            return json.loads(Path(local).read_text())
    except (MlflowException, OSError, ValueError):
        return None


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _decision_tags(decision: str, decided_by: str, comment: str, decided_at: str, airflow_run_id: str):
    return {
        DECISION: decision,
        DECISION_BY: decided_by,
        DECISION_AT: decided_at,
        DECISION_COMMENT: comment or "",
        DECISION_RUN_ID: airflow_run_id,
    }


def _drop_alias_if_on(client, model_name: str, alias: str, version: int) -> None:
    if _alias_version(client, model_name, alias) == int(version):
        client.delete_registered_model_alias(model_name, alias)


def promote(
    tracking_uri: str,
    model_name: str,
    version: int,
    *,
    decided_by: str,
    comment: str,
    airflow_run_id: str,
    decided_at: str,
) -> None:
    """Make ``version`` the champion and retire whichever version served before it.

    Order matters for a crash in the middle: the decision is written first, then the alias moves,
    then every other version still tagged champion is retired. A re-run finds the alias in place
    and only completes the tags.
    """
    client = _client(tracking_uri)
    mv = client.get_model_version(model_name, str(version))
    if mv.tags.get(STATUS) == "archived":
        raise ValueError(
            f"{model_name} v{version} is archived (its artifacts live in the archive); register it "
            "again from its run before promoting it."
        )
    current = _alias_version(client, model_name, CHAMPION)
    tags = _decision_tags("approved", decided_by, comment, decided_at, airflow_run_id)
    if current == int(version) and mv.tags.get(STATUS) == CHAMPION:
        tags = {k: v for k, v in tags.items() if k not in mv.tags}  # keep the first decision
    tags[STATUS] = CHAMPION
    if PROMOTED_AT not in mv.tags or current != int(version):
        tags[PROMOTED_AT] = decided_at
    stints = _stints(mv.tags)
    if current != int(version) and not (stints and stints[-1]["to"] is None):
        n = len(stints) + 1  # a new stint (a retried promotion finds the open one and adds none)
        tags.update(
            {
                f"{SERVED}.{n}.from": decided_at,
                f"{SERVED}.{n}.by": decided_by,
                f"{SERVED}.{n}.run": airflow_run_id,
            }
        )
    _set_tags(client, model_name, version, tags)
    if RETIRED_AT in mv.tags and current != int(version):  # a rollback to a retired version
        client.delete_model_version_tag(model_name, str(version), RETIRED_AT)
    if current != int(version):
        client.set_registered_model_alias(model_name, CHAMPION, str(version))
    for other in _versions(client, model_name):
        if int(other.version) != int(version) and other.tags.get(STATUS) == CHAMPION:
            closed = {STATUS: "retired", RETIRED_AT: decided_at}
            open_stints = [st for st in _stints(other.tags) if st["to"] is None]
            if open_stints:
                closed[f"{SERVED}.{open_stints[-1]['n']}.to"] = decided_at
            _set_tags(client, model_name, other.version, closed)
    _drop_alias_if_on(client, model_name, CHALLENGER, version)


def record_rejection(
    tracking_uri: str,
    model_name: str,
    version: int,
    *,
    decided_by: str,
    comment: str,
    airflow_run_id: str,
    decided_at: str,
) -> None:
    """Write a rejection on ``version``; the champion is never touched.

    A challenger becomes ``rejected``. A version that already served (a rejected rollback) keeps
    its status and only records the decision.
    """
    client = _client(tracking_uri)
    mv = client.get_model_version(model_name, str(version))
    if _alias_version(client, model_name, CHAMPION) == int(version):
        raise ValueError(f"{model_name} v{version} is the champion: a rejection cannot apply to it")
    tags = _decision_tags("rejected", decided_by, comment, decided_at, airflow_run_id)
    if mv.tags.get(STATUS) in (None, CHALLENGER, "rejected"):
        tags[STATUS] = "rejected"
    _set_tags(client, model_name, version, tags)
    _drop_alias_if_on(client, model_name, CHALLENGER, version)


def hold(tracking_uri: str, model_name: str, version: int, dag_id: str, airflow_run_id: str) -> None:
    """Mark ``version`` as used by a DAG run, so archival does not take it away meanwhile."""
    import hashlib

    digest = hashlib.sha1(airflow_run_id.encode()).hexdigest()[:12]
    _client(tracking_uri).set_model_version_tag(
        model_name, str(version), f"{IN_USE}.{dag_id}.{digest}", airflow_run_id
    )


def holders(tags: dict) -> list[tuple[str, str, str]]:
    """(tag key, dag id, run id) of every run that holds a version, from its tags."""
    return [
        (key, key.split(".")[1], value)
        for key, value in sorted(tags.items())
        if key.startswith(f"{IN_USE}.") and key.count(".") == 2
    ]


def promotion_landed(tracking_uri: str, model_name: str, version: int, airflow_run_id: str) -> bool:
    """Whether the promotion of ``version`` by this Airflow run happened: the version has a stint
    as champion opened by that run. True also when a later promotion has since replaced it (two
    approvals in a row are served one after the other)."""
    mv = _client(tracking_uri).get_model_version(model_name, str(version))
    return any(stint["run"] == airflow_run_id for stint in _stints(mv.tags))


def champion(tracking_uri: str, model_name: str) -> int | None:
    return _alias_version(_client(tracking_uri), model_name, CHAMPION)


def _stints(tags: dict) -> list[dict]:
    """The times a version served, from its ``served.<n>.*`` tags, in order."""
    numbers = sorted(
        {int(k.split(".")[1]) for k in tags if k.startswith(f"{SERVED}.") and k.split(".")[1].isdigit()}
    )
    return [
        {
            "n": n,
            "from": tags.get(f"{SERVED}.{n}.from"),
            "to": tags.get(f"{SERVED}.{n}.to"),
            "by": tags.get(f"{SERVED}.{n}.by"),
            "run": tags.get(f"{SERVED}.{n}.run"),
        }
        for n in numbers
    ]


def champion_history(tracking_uri: str, model_name: str) -> list[dict]:
    """Every time a version served as champion (a version brought back by a rollback serves
    twice), in order, from the registry's tags alone: version, from, to (None while serving),
    approved by, and the Airflow run of the decision."""
    history = []
    for v in _versions(_client(tracking_uri), model_name):
        stints = _stints(v.tags)
        if not stints and PROMOTED_AT in v.tags:  # promoted before stints were recorded
            stints = [
                {
                    "from": v.tags[PROMOTED_AT],
                    "to": v.tags.get(RETIRED_AT),
                    "by": v.tags.get(DECISION_BY),
                    "run": None,
                }
            ]
        for stint in stints:
            history.append(
                {
                    "version": int(v.version),
                    "promoted_at": stint["from"],
                    "retired_at": stint["to"],
                    "decided_by": stint["by"],
                    "airflow_run_id": stint["run"],
                    "status": v.tags.get(STATUS),
                }
            )
    return sorted(history, key=lambda h: (h["promoted_at"] or "", h["version"]))


def rollback_evidence(
    tracking_uri: str, model_name: str, version: int, reason: str | None = None, metric: str = "mae"
) -> dict:
    """What an approver needs to bring ``version`` back as champion; refuses a version that never
    served, that is archived, or that is the champion already."""
    client = _client(tracking_uri)
    mv = client.get_model_version(model_name, str(version))
    current = _alias_version(client, model_name, CHAMPION)
    if current == int(version):
        raise ValueError(f"{model_name} v{version} is the champion already: nothing to roll back")
    if mv.tags.get(STATUS) == "archived":
        raise ValueError(f"{model_name} v{version} is archived: register it again from its run first")
    stints = _stints(mv.tags) or (
        [{"from": mv.tags[PROMOTED_AT], "to": mv.tags.get(RETIRED_AT)}] if PROMOTED_AT in mv.tags else []
    )
    if not stints:
        raise ValueError(f"{model_name} v{version} never served as champion: it cannot be rolled back to")
    metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
    current_metrics = {}
    if current is not None:
        current_mv = client.get_model_version(model_name, str(current))
        current_metrics = client.get_run(current_mv.run_id).data.metrics if current_mv.run_id else {}
    served = ", ".join(f"{st['from']} .. {st['to'] or 'now'}" for st in stints)
    lines = [
        f"**Roll back {model_name} to v{version}** (champion now: "
        + (f"v{current}" if current is not None else "none")
        + ")",
        "",
        f"v{version} served {served}.",
        "",
        "| | target | current champion |",
        "|---|---|---|",
        f"| version | v{version} | {'v' + str(current) if current is not None else 'none'} |",
        f"| validation {metric} at training | {_fmt(metrics.get(f'val_{metric}'))} | "
        f"{_fmt(current_metrics.get(f'val_{metric}'))} |",
        "",
        f"Reason given: {reason or '(none)'}",
    ]
    return {
        "model_name": model_name,
        "version": int(version),
        "current_champion_version": current,
        "served": stints,
        "markdown": "\n".join(lines),
    }
