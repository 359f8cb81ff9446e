"""Airflow: the DAG factory, the Spark job operator and assets, the executor, the REST client."""
