"""Airflow: the training DAG of every model of the catalog (``usecases/<use case>/models/<model>``),
one per model, named ``<model>_training``: built by ``mlcycle.orchestration.dag_factory``."""

# The Airflow modules the factory's DAGs use, named here so that the dag-processor imports them
# once, before it starts a parser for this file ([dag_processor] parsing_pre_import_modules).
import airflow.providers.apache.spark.operators.spark_submit  # noqa: F401
import airflow.providers.standard.decorators.python  # noqa: F401
import airflow.providers.standard.operators.hitl  # noqa: F401
import airflow.providers.standard.operators.trigger_dagrun  # noqa: F401

from mlcycle.orchestration.dag_factory import model_dags

globals().update(model_dags("training"))
