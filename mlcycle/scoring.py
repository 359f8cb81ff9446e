"""Which days a scoring run scores."""

from __future__ import annotations

from pathlib import Path

from mlcycle.config import partition_path
from mlcycle.gates import read_result


def days_to_score(data_root: str, requested: list[str], triggering_events) -> list[str]:
    """Days named by the run: asked for by hand, or announced by new features (``ds``) or by a new
    champion (``score_from``: the first day after its training window). Only days whose features
    exist are kept; a run with none is skipped with the reason."""
    days = set(requested)
    for events in (triggering_events or {}).values():
        for event in events:
            extra = event.extra or {}
            for key in ("ds", "score_from"):
                value = extra.get(key)
                if isinstance(value, str):
                    days.add(value)
                elif isinstance(value, list):
                    days.update(value)
    ready = sorted(d for d in days if Path(partition_path(data_root, "features", d)).is_dir())
    if not ready:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"nothing to score: no features partition for {sorted(days) or 'any day'}")
    return ready


def resolve_champion(tracking_uri: str, model_name: str, dag_id: str, airflow_run_id: str) -> dict:
    """The champion version every day of this run is scored with, held for the run (archival
    leaves it alone until the run ends); no champion yet means nothing to score (skipped, with the
    reason), not a failure."""
    from mlcycle.registry import champion, hold

    version = champion(tracking_uri, model_name)
    if version is None:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"{model_name} has no champion yet: approve a trained version first")
    hold(tracking_uri, model_name, version, dag_id, airflow_run_id)
    return {"version": int(version), "uri": f"models:/{model_name}/{version}"}


def recorded_version(data_root: str, ds: str) -> int | None:
    """The model version whose predictions of ``ds`` were written, from the day's predictions
    verdict (None when the day was never scored, or its predictions were rejected)."""
    try:
        verdict = read_result(data_root, "predictions", ds)
    except (OSError, ValueError):
        return None
    if not verdict or verdict.get("success") is not True:
        return None
    if verdict.get("model_version") is not None:
        return int(verdict["model_version"])
    uri = str(verdict.get("model_uri") or "")  # models:/NAME/VERSION, as older runs recorded it
    tail = uri.rsplit("/", 1)[-1]
    return int(tail) if uri.startswith("models:/") and tail.isdigit() else None


def scoring_plan(
    data_root: str, days: list[str], model_name: str, champion: dict, rescore: bool
) -> list[dict]:
    """The version each day is scored with: a day already scored keeps the version recorded for it
    (a re-run gives the same predictions), unless ``rescore`` asks for the current champion; a day
    never scored gets the champion resolved at the start of the run."""
    plan = []
    for ds in days:
        recorded = None if rescore else recorded_version(data_root, ds)
        version = recorded if recorded is not None else int(champion["version"])
        plan.append(
            {
                "ds": ds,
                "version": version,
                "uri": f"models:/{model_name}/{version}",
                "reason": "recorded for the day" if recorded is not None else "champion",
            }
        )
    return plan
