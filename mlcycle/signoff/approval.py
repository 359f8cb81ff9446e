"""The human sign-off: Airflow's ApprovalOperator, keeping the decision where later tasks read it.

On Reject the ApprovalOperator skips its downstream tasks, which ends it before its return value
reaches XCom; the decision (who, when, which option, the comment) is pushed first, under the key
``decision``, so the rejection can be recorded on the model version.

The time allowed for an answer is the operator's ``response_timeout`` unless the run says
otherwise: a positive DAG param ``approval_timeout_hours`` replaces it for that run. No answer in
time means the defaults (Reject), recorded as decided by the timeout.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param

DECISION_KEY = "decision"


class SignOff(ApprovalOperator):
    def execute(self, context) -> Any:
        hours = (context.get("params") or {}).get("approval_timeout_hours")
        if hours:
            self.response_timeout = timedelta(hours=float(hours))
        return super().execute(context)

    def execute_complete(self, context, event: dict[str, Any]) -> Any:
        if "error" not in event:
            responded_at = event.get("responded_at")
            context["ti"].xcom_push(
                key=DECISION_KEY,
                value={
                    "chosen_options": list(event.get("chosen_options") or []),
                    "params_input": dict(event.get("params_input") or {}),
                    "responded_by_user": event.get("responded_by_user"),
                    "responded_at": responded_at.isoformat()
                    if hasattr(responded_at, "isoformat")
                    else responded_at,
                },
            )
        return super().execute_complete(context, event)


def sign_off_task(subject: str, evidence_task: str, approvers, hours: float = 24.0) -> SignOff:
    """The ``sign_off`` task of a DAG that moves ``champion``: the markdown evidence returned by
    ``evidence_task`` as its body, asked of ``approvers``, an optional comment, Reject by default
    and on timeout."""
    return SignOff(
        task_id="sign_off",
        subject=subject,
        body="{{ ti.xcom_pull(task_ids='" + evidence_task + "')['markdown'] }}",
        defaults="Reject",
        assigned_users=[{"id": name, "name": name} for name in approvers],
        params={
            "comment": Param(
                None, type=["null", "string"], description="Why, optional (recorded on the model version)"
            )
        },
        response_timeout=timedelta(hours=hours),
    )
