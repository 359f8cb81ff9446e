"""Airflow: the data DAG of every use case of the catalog (``usecases/<use case>``), named
``<use case>_data``: built by ``mlcycle.orchestration.dag_factory.data_dag``."""

# The Airflow modules the factory's DAGs use, named here so that the dag-processor imports them
# once, before it starts a parser for this file ([dag_processor] parsing_pre_import_modules).
import airflow.providers.apache.spark.operators.spark_submit  # noqa: F401
import airflow.providers.standard.decorators.python  # noqa: F401
import airflow.providers.standard.operators.hitl  # noqa: F401
import airflow.providers.standard.operators.trigger_dagrun  # noqa: F401

from mlcycle.orchestration.dag_factory import data_dags

globals().update(data_dags())
