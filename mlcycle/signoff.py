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
