"""What the DAG files share: the assets that chain them, the Spark job operator, and reading the
partitions an asset-triggered run is about. Imported at DAG parse time, so nothing heavy here."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

from mlcycle.config import REPO_ROOT, model_root, settings, spark_conf
from mlcycle.quality.gates import GATE_FAILED_EXIT, held_days_message

SPARK_JOBS = REPO_ROOT / "spark_jobs"


def features_asset(usecase: str) -> Asset:
    """The feature table of a use case: a new day of it starts the scoring of each of its models."""
    return Asset(name=f"{usecase}_features", uri=f"file://{settings().data_root}/features")


def model_asset(model, stage: str) -> Asset:
    """One stage of a model's own records (``predictions``, ``monitoring``)."""
    return Asset(
        name=f"{model.name}_{stage}", uri=f"file://{model_root(settings().data_root, model.name)}/{stage}"
    )


def champion_asset(model) -> Asset:
    """The ``champion`` alias of a model: moved by a promotion or a rollback."""
    return Asset(name=f"{model.name}_champion", uri=f"mlcycle://models/{model.registered_name}/champion")


def _arg(args: Sequence[str], name: str) -> str | None:
    args = list(args or [])
    return args[args.index(name) + 1] if name in args[:-1] else None


def days_of_args(args: Sequence[str]) -> list[str]:
    """The days a Spark job's arguments name: each ``--ds``, or every day of ``--start``..``--end``."""
    from mlcycle.config import days_between

    args = [str(a) for a in args or []]
    days = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--ds"]
    start, end = _arg(args, "--start"), _arg(args, "--end")
    if start and end:
        days += days_between(start, end)
    return sorted(set(days))


CONNECT_CONN_ID = "spark_connect"
# Extra of the ``spark_connect`` connection: the task ids submitted through ``spark_default``
# although a Connect server is there, e.g. ``{"submit": ["train"]}`` to give a heavy training a
# driver of its own instead of the server's shared one (the compose stack does).
SUBMIT_EXTRA = "submit"


def connect_url(task_id: str | None = None) -> str | None:
    """The ``sc://`` URL of the ``spark_connect`` connection; None when there is none, or when its
    extra lists ``task_id`` under ``submit``."""
    from airflow.providers.apache.spark.hooks.spark_connect import SparkConnectHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    hook = SparkConnectHook(CONNECT_CONN_ID)
    try:
        url = hook.get_connection_url()
        submitted = hook.get_connection(CONNECT_CONN_ID).extra_dejson.get(SUBMIT_EXTRA) or []
    except AirflowNotFoundException:
        return None
    if isinstance(submitted, str):
        submitted = [submitted]
    return None if task_id is not None and task_id in submitted else url


def connect_answers(url: str, timeout: float = 3.0) -> bool:
    """Whether something listens at the host and port of an ``sc://`` URL."""
    import socket
    from urllib.parse import urlparse

    where = urlparse(url)
    try:
        with socket.create_connection((where.hostname, where.port or 15002), timeout=timeout):
            return True
    except OSError:
        return False


class SparkJob(SparkSubmitOperator):
    """A Spark entry point of ``spark_jobs/``, run where the Airflow connections say.

    - With a ``spark_connect`` connection (the embedded stack keeps one to its own long-lived
      Spark Connect server), the entry point's ``main`` runs in the task's own process, with
      ``SPARK_REMOTE`` set to the server: no JVM is started for the task, and the job's code is
      exactly the code spark-submit would run. A server that does not answer is reported in the
      log and the job is submitted instead.
    - Otherwise (or when the connection's extra lists the task under ``submit``) it is a
      ``spark-submit`` through ``spark_default``.

    A day held by a data-quality gate (the job's exit status ``GATE_FAILED_EXIT``) fails the task
    at once, without its retries, and the log says which rules held the day and where to look.
    Any other failure keeps the usual retries."""

    def execute(self, context):
        url = connect_url(self.task_id)
        if url and not connect_answers(url):
            self.log.warning(
                "The Spark Connect server of connection %r at %s does not answer; submitting the job "
                "through %r instead. Start the server (make start) to run jobs on it.",
                CONNECT_CONN_ID,
                url,
                self._conn_id,
            )
            url = None
        try:
            return self._on_connect(url) if url else super().execute(context)
        except Exception as exc:
            if f"Error code is: {GATE_FAILED_EXIT}." not in str(exc):
                raise
            days = days_of_args(self.application_args) or [context["ds"]]
            data_root = _arg(self.application_args, "--data-root") or settings().data_root
            model = _arg(self.application_args, "--model")
            if model:  # a model's own gates keep their verdicts with its records
                data_root = model_root(data_root, model)
            raise AirflowFailException(held_days_message(data_root, self.task_id, days)) from None

    def _on_connect(self, url: str) -> None:
        import importlib
        from pathlib import Path

        from airflow.sdk.exceptions import AirflowException

        module = f"{SPARK_JOBS.name}.{Path(self.application).stem}"
        args = [str(a) for a in self.application_args or []]
        self.log.info("Running %s %s on the Spark Connect server at %s", module, " ".join(args), url)
        previous = os.environ.get("SPARK_REMOTE")
        os.environ["SPARK_REMOTE"] = url
        self._connect_url = url
        try:
            code = importlib.import_module(module).main(args)
        finally:
            if previous is None:
                os.environ.pop("SPARK_REMOTE", None)
            else:
                os.environ["SPARK_REMOTE"] = previous
        if code:
            # The same words as a failed spark-submit, so a held day is told apart the same way.
            raise AirflowException(f"{module} on Spark Connect failed. Error code is: {code}.")

    def on_kill(self) -> None:
        """A task marked failed or stopped in the UI stops its work: on Spark Connect, every
        operation of the task's session is interrupted on the server."""
        if getattr(self, "_connect_url", None) is None:
            return super().on_kill()
        from pyspark.sql.connect.session import SparkSession

        session = SparkSession.getActiveSession()
        if session is not None:
            self.log.info("Interrupting the job's operations on the Spark Connect server")
            session.interruptAll()


def _spark_kwargs(task_id: str, script: str, name: str) -> dict:
    return {
        "task_id": task_id,
        "application": str(SPARK_JOBS / script),
        "conn_id": "spark_default",
        "name": f"{name}-{task_id}",
        "conf": spark_conf(),
    }


def spark_job(task_id: str, script: str, args: Sequence[str], *, name: str, **kwargs) -> SparkJob:
    """A Spark entry point of ``spark_jobs/``, on Spark Connect or submitted (see ``SparkJob``);
    ``name`` (the use case or model) prefixes the Spark application's name."""
    return SparkJob(**_spark_kwargs(task_id, script, name), application_args=list(args), **kwargs)


def spark_job_per_day(task_id: str, script: str, args_per_day, *, name: str, **kwargs):
    """The same entry point once per day, one mapped task each (``args_per_day``: an XCom of
    argument lists), so each day shows, fails and retries on its own."""
    return SparkJob.partial(**_spark_kwargs(task_id, script, name), **kwargs).expand(
        application_args=args_per_day
    )


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
