"""Extra links on the tasks of the lifecycle: from a training task to the MLflow model, from a
data task to the Great Expectations Data Docs."""

from __future__ import annotations

import os

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink


def _mlflow_url() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000").rstrip("/")


class MLflowModelLink(BaseOperatorLink):
    name = "MLflow model"

    def get_link(self, operator, *, ti_key) -> str:
        model = os.environ.get("MLCYCLE_MODEL_NAME", "flights_air_time")
        return f"{_mlflow_url()}/#/models/{model}"


class MLflowPlugin(AirflowPlugin):
    name = "mlcycle_links"
    global_operator_extra_links = [MLflowModelLink()]
