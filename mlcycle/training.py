"""The steps of the training DAG around the Spark job: check the inputs, weigh the evidence, act on
the person's decision. Plain functions of explicit arguments, testable without Airflow."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from mlcycle.config import Settings, days_between, next_day, partition_path


class TrainingInputError(ValueError):
    """The window cannot be trained on; the message says which days are missing or failed."""


def check_training_inputs(data_root: str, start: str, end: str, holdout_days: int) -> list[str]:
    """Every day of the window has a features partition that passed its gate."""
    days = days_between(start, end)
    if len(days) <= holdout_days:
        raise TrainingInputError(
            f"window {start}..{end} has {len(days)} days: it needs more than holdout_days={holdout_days}"
        )
    missing = [d for d in days if not Path(partition_path(data_root, "features", d)).is_dir()]
    if missing:
        raise TrainingInputError(
            f"no features for {len(missing)} day(s) of {start}..{end}: {', '.join(missing[:10])}"
            f"{' ...' if len(missing) > 10 else ''}. Backfill flights_data over them first."
        )
    failed = []
    for d in days:
        gate = Path(data_root) / "gates" / "features" / f"ds={d}.json"
        if gate.exists() and not json.loads(gate.read_text()).get("success", False):
            failed.append(d)
    if failed:
        raise TrainingInputError(f"features gate failed for: {', '.join(failed)}")
    return days


def evaluate_challenger(cfg: Settings, version: int, min_improvement: float, airflow_run_id: str) -> dict:
    """The evidence for the sign-off; a clearly worse challenger is rejected by rule here."""
    from mlcycle import registry

    evidence = registry.evidence(cfg.tracking_uri, cfg.model_name, version, min_improvement=min_improvement)
    evidence["markdown"] = evidence.get("markdown", "") + _links(cfg, version, evidence)
    if evidence["auto_reject"]:
        registry.record_rejection(
            cfg.tracking_uri,
            cfg.model_name,
            version,
            decided_by="rule:min_improvement",
            comment=f"challenger MAE worse than champion by more than {min_improvement}",
            airflow_run_id=airflow_run_id,
            decided_at=_iso(None),
        )
    return evidence


def _links(cfg: Settings, version: int, evidence: dict) -> str:
    run_id = evidence.get("run_id") or evidence.get("challenger_run_id")
    lines = ["", "", "**Links**", ""]
    lines.append(f"- Model version: {_mlflow_ui(cfg)}/#/models/{cfg.model_name}/versions/{version}")
    if run_id:
        lines.append(f"- Training run: {_mlflow_ui(cfg)}/#/experiments/0/runs/{run_id}")
    return "\n".join(lines)


def _mlflow_ui(cfg: Settings) -> str:
    return cfg.tracking_uri.rstrip("/")


def _iso(value: Any) -> str:
    """A decision's time as ISO-8601; a timeout carries none, so it is the time of recording."""
    if value is None:
        return datetime.now().astimezone().isoformat()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _decider(decision: dict) -> str:
    user = decision.get("responded_by_user") or {}
    if isinstance(user, dict) and (user.get("name") or user.get("id")):
        return str(user.get("name") or user.get("id"))
    return "timeout (default: Reject)"


def _comment(decision: dict) -> str:
    return str((decision.get("params_input") or {}).get("comment") or "")


def _decision_args(decision: dict, airflow_run_id: str) -> dict:
    """Who decided, when, why, in which run: what every decision writes on the version."""
    return {
        "decided_by": _decider(decision),
        "comment": _comment(decision),
        "airflow_run_id": airflow_run_id,
        "decided_at": _iso(decision.get("responded_at")),
    }


def promote_on_approval(
    cfg: Settings, version: int, decision: dict, airflow_run_id: str, train_end: str
) -> str:
    """Move ``champion`` to the approved version; return the first day it should score."""
    from mlcycle import registry

    chosen = (decision or {}).get("chosen_options") or []
    if chosen != ["Approve"]:
        raise ValueError(f"promotion needs an approval, got {chosen!r}")
    registry.promote(
        cfg.tracking_uri,
        cfg.model_name,
        version,
        **_decision_args(decision, airflow_run_id),
    )
    return next_day(train_end)


def record_decision(
    cfg: Settings, version: int, decision: dict | None, auto_rejected: bool, airflow_run_id: str
) -> str:
    """Write a rejection (by a person or by timeout) on the version; check an approval landed."""
    from mlcycle import registry

    if not decision:
        if auto_rejected:
            return "rejected by rule"
        raise RuntimeError(f"no sign-off decision was recorded for version {version}")
    chosen = decision.get("chosen_options") or []
    if chosen == ["Approve"]:
        current = registry.champion(cfg.tracking_uri, cfg.model_name)
        if current != version:
            raise RuntimeError(f"approved version {version} is not champion (champion is {current})")
        return "approved"
    registry.record_rejection(
        cfg.tracking_uri,
        cfg.model_name,
        version,
        **_decision_args(decision, airflow_run_id),
    )
    return "rejected"
