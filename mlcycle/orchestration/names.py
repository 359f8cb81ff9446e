"""The names of the DAGs the factory builds (``mlcycle.orchestration.dag_factory``), without
Airflow: the command-line tool and the benchmarks name a DAG without importing Airflow (about 2.5 s
on two cores)."""

from __future__ import annotations

STAGES = ("training", "scoring", "monitoring", "rollback", "archival")


def dag_id(model, stage: str) -> str:
    """``<model>_<stage>``, e.g. ``air_time_training`` (model names are unique in the catalog)."""
    return f"{model.name}_{stage}"


def data_dag_id(usecase) -> str:
    return f"{usecase.name}_data"


def data_range_dag_id(usecase) -> str:
    return f"{usecase.name}_data_by_month"
