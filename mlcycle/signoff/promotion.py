"""The steps of a DAG that moves ``champion`` around the sign-off: weigh the evidence (a clearly
worse challenger is rejected by rule before anyone is asked), promote on approval, and record the
decision on the version whatever it was. Plain functions of explicit arguments, testable without
Airflow."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mlcycle.config import Settings, next_day


def evaluate_challenger(cfg: Settings, version: int, airflow_run_id: str, **overrides) -> dict:
    """The evidence for the sign-off; a clearly worse challenger is rejected by rule here. The
    rules are the model's ``[evaluation]``; ``overrides`` (``min_improvement``,
    ``slice_tolerance``, ``min_slice_rows``) are a run's own."""
    from mlcycle import evaluation, registry
    from mlcycle.evaluation import Rules
    from mlcycle.monitoring import shadow

    evidence = evaluation.evidence(
        cfg.tracking_uri,
        cfg.model_name,
        version,
        rules=Rules.of(cfg.model, **overrides),
        metrics=tuple(cfg.model.metrics),
    )
    # beside the holdout comparison, the challenger's live record so far, scored in the shadow
    days = shadow.shadow_days(cfg.model_root, version)
    evidence["live_shadow"] = shadow.pooled(days, tuple(cfg.model.metrics))
    evidence["markdown"] = (
        evidence.get("markdown", "")
        + shadow.markdown(cfg.model, version, days)
        + _links(cfg, version, evidence)
    )
    if evidence["auto_reject"]:
        rules = sorted({reason.split(":", 1)[0] for reason in evidence["reasons"]})
        registry.record_rejection(
            cfg.tracking_uri,
            cfg.model_name,
            version,
            decided_by="rule:" + ",".join(rules),
            comment="; ".join(evidence["reasons"]),
            airflow_run_id=airflow_run_id,
            decided_at=_iso(None),
        )
    return evidence


def _links(cfg: Settings, version: int, evidence: dict) -> str:
    from mlcycle.ui.pages import MOUNT

    run_id = evidence.get("run_id") or evidence.get("challenger_run_id")
    lines = ["", "", "**Links**", ""]
    lines.append(f"- Model version: {_mlflow_ui(cfg)}/#/models/{cfg.model_name}/versions/{version}")
    if run_id:
        run = f"{_mlflow_ui(cfg)}/#/experiments/{evidence.get('experiment_id', '0')}/runs/{run_id}"
        lines.append(f"- Training run: {run}")
        lines.append(
            f"- Per-{evidence.get('slice', 'slice')} comparison and data-quality record: {run}/artifacts"
        )
    lines.append(
        f"- Live record, the shadow included (updated by each monitoring run): "
        f"{cfg.airflow_url.rstrip('/')}{MOUNT}/monitoring/{cfg.model.name}"
    )
    if evidence.get("code_version"):
        lines.append(f"- Code version: {evidence['code_version']}")
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
        if not registry.promotion_landed(cfg.tracking_uri, cfg.model_name, version, airflow_run_id):
            current = registry.champion(cfg.tracking_uri, cfg.model_name)
            raise RuntimeError(f"approved version {version} was not promoted (champion is {current})")
        current = registry.champion(cfg.tracking_uri, cfg.model_name)
        return "approved" if current == version else f"approved; since replaced by v{current}"
    registry.record_rejection(
        cfg.tracking_uri,
        cfg.model_name,
        version,
        **_decision_args(decision, airflow_run_id),
    )
    return "rejected"
