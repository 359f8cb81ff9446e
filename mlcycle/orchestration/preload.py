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


# What the DAG files import when they are parsed: the DAG factory and, through it, the project's
# modules it builds the DAGs with (``mlcycle.orchestration.dag_factory``). The dag-processor forks a
# process for every parse of a file; imported once in the dag-processor, they are loaded in every
# parse instead of imported again. The catalog is read once there too (``warm_catalog``); each parse
# still reads it, and parses again only the files changed since (``mlcycle.specs._read_toml``): a
# new or changed folder shows at the next parse. A change to the platform's own package needs the
# dag-processor restarted, as it needs the scheduler restarted for the tasks.
PARSING_MODULES = ("tomllib", "mlcycle.orchestration.dag_factory")


def modules_for(argv: list[str] | None = None, env: dict[str, str] | None = None) -> tuple[str, ...]:
    """What this Airflow process preloads: the tasks' libraries in the scheduler, whose executor
    forks the task processes; the DAG factory in the dag-processor, which forks a process per
    parse; nothing elsewhere, or when turned off (``MLCYCLE_PRELOAD=0``)."""
    argv = sys.argv if argv is None else argv
    env = os.environ if env is None else env
    if not switched_on("MLCYCLE_PRELOAD", env):
        return ()
    return {"scheduler": MODULES, "dag-processor": PARSING_MODULES}.get(argv[1] if len(argv) > 1 else "", ())


def setup(argv: list[str] | None = None, env: dict[str, str] | None = None) -> list[str]:
    """What ``airflow_local_settings`` does at the start of each Airflow process: preload what this
    process forks its children with (``modules_for``)."""
    modules = modules_for(argv, env)
    if not modules:
        return []
    loaded = preload(modules)
    if modules == PARSING_MODULES:
        warm_catalog()
    return loaded


def warm_catalog() -> None:
    """Read the catalog once, so that the parses forked from here find its files already read."""
    try:
        from mlcycle.specs import catalog

        catalog()
    except Exception as exc:  # the parses will say what is wrong, with the file and the fix
        print(f"mlcycle: the catalog was not read ahead of the parses: {exc}", file=sys.stderr, flush=True)


def wanted(argv: list[str] | None = None, env: dict[str, str] | None = None) -> bool:
    """Whether the scheduler's preload of the tasks' libraries applies to this process."""
    return modules_for(argv, env) == MODULES


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
        f"mlcycle: preloaded in {time.perf_counter() - t0:.1f} s: {', '.join(loaded)}",
        file=sys.stderr,
        flush=True,
    )
    return loaded
