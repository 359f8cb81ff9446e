"""Sign-off and promotion: the human approval in Airflow, acting on the decision, rollback."""
