"""Heavy libraries the tasks use, imported once in the process that starts the task processes.

Airflow's LocalExecutor forks every task process from its workers, which are forked from the
scheduler. A library the scheduler has imported before it starts its workers is therefore loaded in
every task process from its first instruction, instead of being imported again by each task: MLflow
alone takes 2 to 6 s to import on two cores, Great Expectations about 4 s, pandas and matplotlib 1 to
2 s each, and most tasks of the DAGs need one of them. ``airflow_local_settings.py`` (under
``deploy/airflow/config``, which Airflow imports at the start of each of its processes) calls
``preload()`` in the scheduler only. ``MLCYCLE_PRELOAD=0`` turns it off.
"""

from __future__ import annotations

import importlib
import os
import sys
import time

from mlcycle.config import switched_on

# What the tasks of the DAGs import when they run. The Spark jobs on Spark Connect run in the task
# process (``mlcycle.orchestration.operators.SparkJob``): their client and Great Expectations (about 4 s to
# import) come from here too; jobs sent to spark-submit run in processes of their own.
MODULES = (
    "pandas",
    "pyarrow.parquet",
    "mlflow",
    "mlflow.tracking",
    "mlflow.artifacts",
    "matplotlib",
    "matplotlib.pyplot",
    "great_expectations",
    "pyspark.sql.connect.session",
    "pyspark.ml",
)


def wanted(argv: list[str] | None = None, env: dict[str, str] | None = None) -> bool:
    """Only in the scheduler, whose executor forks the task processes, and unless turned off."""
    argv = sys.argv if argv is None else argv
    env = os.environ if env is None else env
    return argv[1:2] == ["scheduler"] and switched_on("MLCYCLE_PRELOAD", env)


def preload(modules: tuple[str, ...] = MODULES) -> list[str]:
    """Import ``modules``; one that fails is left to the task that needs it, with a warning."""
    t0 = time.perf_counter()
    loaded = []
    for name in modules:
        try:
            if name == "matplotlib.pyplot":
                import matplotlib

                matplotlib.use("Agg")  # no display in a scheduler; the chart task uses Agg too
            importlib.import_module(name)
            loaded.append(name)
        except Exception as exc:  # a missing optional library must not stop the scheduler
            print(f"mlcycle: not preloaded for the tasks: {name} ({exc})", file=sys.stderr, flush=True)
    # Airflow's logging is not set up yet when its local settings are imported: say it on stderr,
    # which the scheduler's log keeps.
    print(
        f"mlcycle: preloaded for the task processes in {time.perf_counter() - t0:.1f} s: {', '.join(loaded)}",
        file=sys.stderr,
        flush=True,
    )
    return loaded
