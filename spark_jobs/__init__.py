"""Spark entry points (run with spark-submit) and pure DataFrame functions. No Airflow imports."""
