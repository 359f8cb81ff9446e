"""Which days a scoring run scores."""

from __future__ import annotations

from pathlib import Path

from mlcycle.config import Settings, model_root, partition_path
from mlcycle.quality.gates import read_result


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


def recorded_version(records: str, ds: str) -> int | None:
    """The model version whose predictions of ``ds`` were written, from the day's predictions
    verdict under the model's records (None when the day was never scored, or its predictions were
    rejected)."""
    try:
        verdict = read_result(records, "predictions", ds)
    except (OSError, ValueError):
        return None
    if not verdict or verdict.get("success") is not True:
        return None
    if verdict.get("model_version") is not None:
        return int(verdict["model_version"])
    uri = str(verdict.get("model_uri") or "")  # models:/NAME/VERSION, as older runs recorded it
    tail = uri.rsplit("/", 1)[-1]
    return int(tail) if uri.startswith("models:/") and tail.isdigit() else None


def scoring_plan(records: str, days: list[str], model_name: str, champion: dict, rescore: bool) -> list[dict]:
    """The version each day is scored with: a day already scored keeps the version recorded for it
    (a re-run gives the same predictions), unless ``rescore`` asks for the current champion; a day
    never scored gets the champion resolved at the start of the run."""
    plan = []
    for ds in days:
        recorded = None if rescore else recorded_version(records, ds)
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


def score_args(
    cfg: Settings, days: list[str], champion: dict, rescore: bool, dag_id: str, airflow_run_id: str
) -> list[list[str]]:
    """The arguments of the score job, one list per task: the days scored by the same version, up
    to ``DAYS_PER_TASK`` per task (a day alone in its run keeps a task of its own; a month of a
    backfill is one job); a version other than the champion kept for a day is held for the run too
    (archival leaves it alone until the run ends)."""
    from mlcycle.registry import hold

    plan = scoring_plan(model_root(cfg.data_root, cfg.model.name), days, cfg.model_name, champion, rescore)
    for version in sorted({p["version"] for p in plan} - {champion["version"]}):
        hold(cfg.tracking_uri, cfg.model_name, version, dag_id, airflow_run_id)
    for p in plan:
        print(f"ds={p['ds']}: v{p['version']} ({p['reason']})")
    by_version: dict[tuple, list[str]] = {}
    for p in plan:
        by_version.setdefault((p["version"], p["uri"]), []).append(p["ds"])
    tasks = []
    for (version, uri), of_version in sorted(by_version.items()):
        for chunk in chunks(sorted(of_version)):
            tasks.append(
                [
                    *(arg for ds in chunk for arg in ("--ds", ds)),
                    "--data-root",
                    cfg.data_root,
                    "--model",
                    cfg.model.name,
                    "--model-uri",
                    uri,
                    "--model-version",
                    str(version),
                    "--airflow-run-id",
                    airflow_run_id,
                ]
            )
    return tasks


DAYS_PER_TASK = 31  # days of one scoring or monitoring job: a month of a backfill


def chunks(days: list[str], size: int = DAYS_PER_TASK) -> list[list[str]]:
    return [days[i : i + size] for i in range(0, len(days), size)]


def days_in(args: list[str]) -> list[str]:
    """The days (``--ds``) of one job's arguments."""
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--ds"]
