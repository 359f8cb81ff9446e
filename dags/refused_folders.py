"""Use case and model folders that cannot be used: Airflow lists this file under DAG Import
Errors with each refused folder, the field and the fix (``mlcycle.specs``). It holds no DAG; the
other models' DAGs load from their own files."""

from mlcycle.specs import refuse_bad_folders

refuse_bad_folders()
