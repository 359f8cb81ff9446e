"""Answers to a sign-off are taken one at a time by the api-server (see ``mlcycle.signoff.one_answer``):
two approvers answering together get one decision, and the second is told so (409)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from mlcycle.signoff.one_answer import OneAnswerAtATime


class SignOffPlugin(AirflowPlugin):
    name = "mlcycle_sign_off"
    fastapi_root_middlewares = [
        {"middleware": OneAnswerAtATime, "args": [], "kwargs": {}, "name": "one answer per sign-off"}
    ]
