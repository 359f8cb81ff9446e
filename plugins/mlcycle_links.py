"""Extra links on the tasks of the lifecycle: from a training task to the MLflow model, from a
gated data task to its data-quality page (verdicts, quarantine, Data Docs), from a monitoring task
to the chart of the model's live record.

Both are global links: the api-server computes them when the UI asks, from the task instance
key alone, so they are there for a task that failed as for one that succeeded (no XCom pushed by
the worker is needed). A link whose URL is empty is not shown by the UI: "Data quality" appears
only on the tasks of ``mlcycle.quality.gates.GATED_TASKS``, "Monitoring chart" only on a model's monitoring
DAG's, "MLflow model" only on the DAGs of a model.
"""

from __future__ import annotations

import os

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperatorLink

from mlcycle.quality.gates import GATED_TASKS
from mlcycle.ui.pages import MOUNT, model_of, quality_url


def _model(dag_id: str):
    from mlcycle.specs import catalog

    return model_of(dag_id, catalog().models.values())


def _mlflow_url() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000").rstrip("/")


def _airflow_url() -> str:
    """Where people reach Airflow: ``MLCYCLE_AIRFLOW_URL`` (the embedded stack sets it), else
    Airflow's ``[api] base_url``, else the embedded stack's default."""
    url = os.environ.get("MLCYCLE_AIRFLOW_URL", "").strip()
    if not url:
        from airflow.configuration import conf

        url = conf.get("api", "base_url", fallback="") or "http://127.0.0.1:8080"
    return url.rstrip("/")


class MLflowModelLink(BaseOperatorLink):
    name = "MLflow model"

    def get_link(self, operator, *, ti_key) -> str:
        model = _model(ti_key.dag_id)
        return f"{_mlflow_url()}/#/models/{model.registered_name}" if model else ""


class DataQualityLink(BaseOperatorLink):
    name = "Data quality"

    def get_link(self, operator, *, ti_key) -> str:
        if ti_key.task_id not in GATED_TASKS:
            return ""
        return quality_url(_airflow_url(), ti_key.dag_id, ti_key.run_id, ti_key.task_id, ti_key.map_index)


class MonitoringChartLink(BaseOperatorLink):
    name = "Monitoring chart"

    def get_link(self, operator, *, ti_key) -> str:
        model = _model(ti_key.dag_id) if ti_key.dag_id.endswith("_monitoring") else None
        return f"{_airflow_url()}{MOUNT}/monitoring/{model.name}" if model else ""


class MLflowPlugin(AirflowPlugin):
    name = "mlcycle_links"
    global_operator_extra_links = [MLflowModelLink(), DataQualityLink(), MonitoringChartLink()]
