"""Settings that differ between machines, read from the environment at call time.

Every default points at the embedded stack: all state under one git-ignored folder (``.mlcycle``
beside the repository), MLflow on 127.0.0.1. A cluster deployment sets the same variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def switched_on(name: str, env=None) -> bool:
    """A switch in the environment: on unless set to 0, false, no or off."""
    env = os.environ if env is None else env
    return env.get(name, "1").strip().lower() not in ("0", "false", "no", "off")


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


@dataclass(frozen=True)
class Settings:
    home: Path
    data_root: str
    tracking_uri: str
    airflow_url: str
    # Seconds before a failed task is tried again (its own retries: a registry away, a Spark
    # engine restarted). Shorter in the end-to-end tests, which meet these faults on purpose.
    retry_delay: timedelta = timedelta(seconds=30)
    # The tuning candidates a training run uses unless it says otherwise (its param ``grid``).
    training_grid: str = "full"
    # The model (``mlcycle.specs.Model``) these settings are for; None outside a model's lifecycle.
    model: object = None

    @property
    def archive_root(self) -> str:
        return f"{self.data_root}/archive"

    def for_model(self, model) -> Settings:
        """These settings for one model of the catalog."""
        return replace(self, model=model)

    def _model(self):
        if self.model is None:
            raise ValueError("these settings name no model: use settings().for_model(model)")
        return self.model

    @property
    def model_name(self) -> str:
        """The model's name in the registry (and its experiment's)."""
        return self._model().registered_name

    @property
    def approvers(self) -> tuple[str, ...]:
        return tuple(self._model().approvers)

    @property
    def model_root(self) -> str:
        """Where the model's own records live: predictions, monitoring, drift, verdicts, charts."""
        return model_root(self.data_root, self._model().name)


def settings() -> Settings:
    home = Path(_env("MLCYCLE_HOME", str(REPO_ROOT / ".mlcycle")))
    return Settings(
        home=home,
        data_root=_env("MLCYCLE_DATA_ROOT", str(home / "data")),
        tracking_uri=_env("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"),
        airflow_url=_env("MLCYCLE_AIRFLOW_URL", "http://127.0.0.1:8080"),
        retry_delay=timedelta(seconds=float(_env("MLCYCLE_RETRY_DELAY_SECONDS", "30"))),
        training_grid=_env("MLCYCLE_TRAINING_GRID", "full"),
    )


def partition_path(data_root: str, dataset: str, ds: str) -> str:
    """Where one day of a dataset lives, e.g. ``<root>/validated/flights/ds=2013-01-01``."""
    return f"{data_root}/{dataset}/ds={ds}"


def model_root(data_root: str, model: str) -> str:
    """The folder of one model's records under a data root, e.g. ``<root>/models/air_time``: its
    ``predictions/ds=D``, ``monitoring/ds=D``, ``gates/predictions/ds=D.json``, ``reports/``."""
    return f"{data_root}/models/{model}"


def days_between(start: str, end: str) -> list[str]:
    """Every day of the window ``start``..``end``, both included, as YYYY-MM-DD."""
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    if last < first:
        raise ValueError(f"window ends ({end}) before it starts ({start})")
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def next_day(ds: str) -> str:
    return (date.fromisoformat(ds) + timedelta(days=1)).isoformat()


# Classes Spark generates for its queries, kept per JVM. Spark keeps 100; the features job of one
# day alone generates about 120, so on a long-lived server (or any session running one job after
# another) each is evicted before it is asked for again and every day compiles its code anew. With
# room for every job's classes, a new day compiles only those whose constants changed
# (bench/day_pipeline.py --codegen-cache both).
CODEGEN_CACHE = {"spark.sql.codegen.cache.maxEntries": "2000"}


def spark_conf() -> dict[str, str]:
    """Small defaults for one machine, the driver's JVM with the class-data archive of
    ``mlcycle.class_archive`` when there is one; a cluster overrides them through MLCYCLE_SPARK_CONF
    (``key=value,key=value``) without touching the DAGs."""
    conf = {
        "spark.sql.shuffle.partitions": "4",
        **CODEGEN_CACHE,
        "spark.driver.memory": "2g",
        "spark.ui.enabled": "false",
        "spark.log.level": "WARN",
    }
    from mlcycle.class_archive import java_options

    if java_options():  # the driver's JVM maps the classes it loads (mlcycle.class_archive)
        conf["spark.driver.extraJavaOptions"] = java_options()
    for item in filter(None, os.environ.get("MLCYCLE_SPARK_CONF", "").split(",")):
        key, _, value = item.partition("=")
        conf[key.strip()] = value.strip()
    return conf
