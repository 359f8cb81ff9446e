"""What the DAG files share: the assets that chain them, the Spark job operator, and reading the
partitions an asset-triggered run is about. Imported at DAG parse time, so nothing heavy here."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

from mlcycle.config import REPO_ROOT, settings
from mlcycle.gates import GATE_FAILED_EXIT, held_day_message

PROJECT = "flights"
SPARK_JOBS = REPO_ROOT / "spark_jobs"


def asset(stage: str) -> Asset:
    """The asset of one stage of the project's data (features, predictions, monitoring) or of its
    registered model (champion)."""
    return Asset(name=f"{PROJECT}_{stage}", uri=f"file://{settings().data_root}/{stage}")


FEATURES = asset("features")
PREDICTIONS = asset("predictions")
MONITORING = asset("monitoring")
CHAMPION = Asset(name=f"{PROJECT}_champion", uri=f"mlcycle://models/{settings().model_name}/champion")


def spark_conf() -> dict[str, str]:
    """Small defaults for one machine; a cluster overrides them through MLCYCLE_SPARK_CONF
    (``key=value,key=value``) without touching the DAGs."""
    conf = {
        "spark.sql.shuffle.partitions": "4",
        "spark.driver.memory": "2g",
        "spark.ui.enabled": "false",
        "spark.log.level": "WARN",
    }
    for item in filter(None, os.environ.get("MLCYCLE_SPARK_CONF", "").split(",")):
        key, _, value = item.partition("=")
        conf[key.strip()] = value.strip()
    return conf


def _arg(args: Sequence[str], name: str) -> str | None:
    args = list(args or [])
    return args[args.index(name) + 1] if name in args[:-1] else None


class SparkJob(SparkSubmitOperator):
    """``spark-submit`` of an entry point, where a day held by a data-quality gate (the job's exit
    status ``GATE_FAILED_EXIT``) fails the task at once, without its retries, and the log says
    which rules held the day and where to look. Any other failure keeps the usual retries."""

    def execute(self, context):
        try:
            return super().execute(context)
        except Exception as exc:
            if f"Error code is: {GATE_FAILED_EXIT}." not in str(exc):
                raise
            ds = _arg(self.application_args, "--ds") or context["ds"]
            data_root = _arg(self.application_args, "--data-root") or settings().data_root
            raise AirflowFailException(held_day_message(data_root, self.task_id, ds)) from None


def _spark_kwargs(task_id: str, script: str) -> dict:
    return {
        "task_id": task_id,
        "application": str(SPARK_JOBS / script),
        "conn_id": "spark_default",
        "name": f"{PROJECT}-{task_id}",
        "conf": spark_conf(),
    }


def spark_job(task_id: str, script: str, args: Sequence[str], **kwargs) -> SparkJob:
    """A Spark entry point of ``spark_jobs/`` submitted through the ``spark_default`` connection."""
    return SparkJob(**_spark_kwargs(task_id, script), application_args=list(args), **kwargs)


def spark_job_per_day(task_id: str, script: str, args_per_day, **kwargs):
    """The same entry point once per day, one mapped task each (``args_per_day``: an XCom of
    argument lists), so each day shows, fails and retries on its own."""
    return SparkJob.partial(**_spark_kwargs(task_id, script), **kwargs).expand(application_args=args_per_day)


def partitions_from_events(events: Iterable, key: str = "ds") -> list[str]:
    """The ``ds`` partitions named by the asset events that triggered a run, sorted, unique."""
    days: set[str] = set()
    for event in events:
        value = (getattr(event, "extra", None) or {}).get(key)
        if isinstance(value, str):
            days.add(value)
        elif isinstance(value, list):
            days.update(value)
    return sorted(days)
