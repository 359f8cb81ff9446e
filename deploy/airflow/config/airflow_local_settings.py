"""Airflow imports this module at the start of each of its processes (from ``$AIRFLOW_HOME/config``).

In the scheduler, whose LocalExecutor forks every task process, it imports the heavy libraries the
tasks use (MLflow, pandas, matplotlib) once, so each task starts with them loaded; in the
dag-processor, which forks a process for every parse of a DAG file, the DAG factory: see
``mlcycle/orchestration/preload.py``. Other processes are left as they are.
"""

try:
    from mlcycle.orchestration.preload import setup
except ImportError:  # the project's package is not importable here: nothing to preload
    pass
else:
    setup()
