"""Rollback: bring an earlier champion back, through the same sign-off as a new model.

The rollback DAG of a model (``<use case>_<model>_rollback``) checks the target (it served before, is not archived, is not the
champion), asks the approvers with the evidence, and on Approve moves ``champion`` with the same
promotion as training (one-slot pool, the former champion retired, a new stint recorded on the
target). On Reject or no answer nothing about the champion changes; the refusal is written on
the target version (``rollback.*`` tags).
"""

from __future__ import annotations

from mlcycle.config import Settings
from mlcycle.signoff.promotion import _decision_args


def check(cfg: Settings, version: int, reason: str | None, dag_id: str, airflow_run_id: str) -> dict:
    """The evidence for the approvers; the target is held for the run, so archival cannot take it
    away while the decision is pending."""
    from mlcycle import registry

    evidence = registry.rollback_evidence(
        cfg.tracking_uri, cfg.model_name, version, reason, cfg.model.deciding
    )
    registry.hold(cfg.tracking_uri, cfg.model_name, version, dag_id, airflow_run_id)
    return evidence


def promote(cfg: Settings, version: int, decision: dict, airflow_run_id: str) -> int:
    from mlcycle import registry

    chosen = (decision or {}).get("chosen_options") or []
    if chosen != ["Approve"]:
        raise ValueError(f"a rollback needs an approval, got {chosen!r}")
    registry.promote(cfg.tracking_uri, cfg.model_name, version, **_decision_args(decision, airflow_run_id))
    return version


def record(cfg: Settings, version: int, decision: dict | None, airflow_run_id: str) -> str:
    """Write a refused rollback on the target; check an approved one landed."""
    from mlcycle import registry

    if not decision:
        raise RuntimeError(f"no sign-off decision was recorded for the rollback to v{version}")
    if (decision.get("chosen_options") or []) == ["Approve"]:
        current = registry.champion(cfg.tracking_uri, cfg.model_name)
        if not registry.promotion_landed(cfg.tracking_uri, cfg.model_name, version, airflow_run_id):
            raise RuntimeError(f"approved rollback to v{version} did not land (champion is {current})")
        return "rolled back" if current == version else f"rolled back; since replaced by v{current}"
    args = _decision_args(decision, airflow_run_id)
    client = registry._client(cfg.tracking_uri)
    registry._set_tags(
        client,
        cfg.model_name,
        version,
        {
            "rollback.decision": "rejected",
            "rollback.by": args["decided_by"],
            "rollback.at": args["decided_at"],
            "rollback.comment": args["comment"],
            "rollback.airflow_run_id": airflow_run_id,
        },
    )
    return "rollback rejected"
