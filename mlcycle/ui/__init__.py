"""The pages the Airflow plugins serve (no Airflow, no Spark: plain HTML from the records)."""
