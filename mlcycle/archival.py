"""Archival: retired versions past their model's retention period are copied out of the registry's
way with a model card, tagged ``archived``, and lose their aliases. The champion is never touched,
nor a version a running DAG run still holds (``mlcycle.registry.hold``).

``mlflow`` is imported inside the functions: DAG files import this module while being parsed.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mlcycle.registry import (
    ARCHIVED_AT,
    CHAMPION,
    DECISION,
    DECISION_AT,
    DECISION_BY,
    DECISION_COMMENT,
    DECISION_RUN_ID,
    IN_USE,
    MODEL_ARTIFACT,
    RETIRED_AT,
    STATUS,
    _alias_version,
    _client,
    _set_tags,
    _stints,
    _versions,
    holders,
)


def _parse_utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def archive_retired(
    tracking_uri: str,
    model_name: str,
    archive_root: str,
    retention_days: int,
    as_of: str,
    run_is_active=None,
    log=print,
) -> list[int]:
    """Archive retired versions whose retirement is older than the retention period.

    For each: the model artifacts and a ``model_card.json`` go to
    ``{archive_root}/<NAME>/v<VERSION>/``, then the version is tagged ``archived`` and loses its
    aliases. The champion is never archived, nor a version held (``hold``) by a DAG run that
    ``run_is_active(dag_id, run_id)`` says is queued or running; a hold whose run has ended (or no
    longer exists) is dropped. Without ``run_is_active`` every hold counts as active. Returns the versions archived by this call
    (a re-run returns ``[]``).
    """
    import mlflow.artifacts

    client = _client(tracking_uri)
    cutoff = _parse_utc(as_of) - timedelta(days=retention_days)
    champion_version = _alias_version(client, model_name, CHAMPION)
    archived = []
    for mv in _versions(client, model_name):
        version = int(mv.version)
        if mv.tags.get(STATUS) != "retired" or version == champion_version:
            continue
        retired_at = mv.tags.get(RETIRED_AT)
        if retired_at is None or _parse_utc(retired_at) > cutoff:
            continue
        active = []
        for key, dag_id, run_id in holders(mv.tags):
            if run_is_active is None or run_is_active(dag_id, run_id):
                active.append(f"{dag_id} {run_id}")
            else:
                client.delete_model_version_tag(model_name, str(version), key)
        if active:
            log(f"{model_name} v{version}: retired {retired_at}, kept: in use by " + ", ".join(active))
            continue
        target = Path(archive_root) / model_name / f"v{version}"
        if target.exists():  # left by an attempt that failed before tagging: start over
            shutil.rmtree(target)
        target.mkdir(parents=True)
        # The version's own source (runs:/... or a storage URI), not models:/: resolving models:/
        # would go through the process-wide registry URI instead of ``tracking_uri``.
        downloaded = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=client.get_model_version_download_uri(model_name, str(version)),
                dst_path=str(target),
                tracking_uri=tracking_uri,
            )
        )
        if downloaded != target / MODEL_ARTIFACT:
            downloaded.rename(target / MODEL_ARTIFACT)
        (target / "model_card.json").write_text(
            json.dumps(_model_card(client, mv, archived_at=as_of), indent=2, sort_keys=True) + "\n"
        )
        _set_tags(client, model_name, version, {STATUS: "archived", ARCHIVED_AT: as_of})
        # Aliases from the registered model: version search results leave ``aliases`` empty.
        for alias, aliased in client.get_registered_model(model_name).aliases.items():
            if int(aliased) == version:
                client.delete_registered_model_alias(model_name, alias)
        log(f"{model_name} v{version}: retired {retired_at}, archived to {target}")
        archived.append(version)
    return archived


def _model_card(client, mv, *, archived_at: str) -> dict:
    run = client.get_run(mv.run_id) if mv.run_id else None
    params = dict(run.data.params) if run else {}
    return {
        "model_name": mv.name,
        "version": int(mv.version),
        "source": mv.source,
        "run_id": mv.run_id,
        "created_at_ms": mv.creation_timestamp,
        "archived_at": archived_at,
        "data_window": {
            "start": params.get("window_start"),
            "end": params.get("window_end"),
            "validation_days": params.get("val_days"),
        },
        "approval": {
            key: mv.tags.get(key)
            for key in (DECISION, DECISION_BY, DECISION_AT, DECISION_COMMENT, DECISION_RUN_ID)
        },
        "served": _stints(mv.tags),
        "metrics": dict(run.data.metrics) if run else {},
        "params": params,
        "tags": {
            **{k: v for k, v in mv.tags.items() if not k.startswith(f"{IN_USE}.")},
            STATUS: "archived",
            ARCHIVED_AT: archived_at,
        },
    }
