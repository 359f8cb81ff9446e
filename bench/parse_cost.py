"""DAG parse cost: each DAG file's parse time against an empty DAG file's, side by side.

    .venv/bin/python bench/parse_cost.py [--repeat 7]

Each round parses every file in a fresh interpreter that has already loaded what the dag-processor
has loaded when it parses that file (its parsing module, the models, the providers manager, and the
``airflow.*`` modules the file names, which ``parsing_pre_import_modules`` imports beforehand), in
an interleaved order, so machine noise hits all files alike; the ratio of medians is printed. What
is left is the file's own cost: the non-Airflow modules it imports and the building of its DAG.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EMPTY_DAG = """
from datetime import datetime
from airflow.sdk import DAG
with DAG(dag_id="empty", schedule=None, start_date=datetime(2013, 1, 1)):
    pass
"""
TIMER = r"""
import importlib, importlib.util, sys, time
# What the dag-processor has loaded before it parses a file: its own parsing module (with the SDK,
# the models and SQLAlchemy), the providers manager, and the ``airflow.*`` modules the file names
# (``[dag_processor] parsing_pre_import_modules``, on by default, imports them in the parent).
import airflow.dag_processing.processor
import airflow.models
import airflow.providers_manager
import airflow.sdk
from airflow.utils.file import iter_airflow_imports
path = sys.argv[1]
for name in iter_airflow_imports(path):
    importlib.import_module(name)
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("dag_under_test", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(time.perf_counter() - t0)
"""


def parse_seconds(path: Path, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", TIMER, str(path)], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty_dag.py"
        empty.write_text(EMPTY_DAG)
        env = dict(os.environ, MLCYCLE_HOME=tmp, AIRFLOW_HOME=str(Path(tmp) / "airflow"))
        files = [empty, *sorted((REPO / "dags").glob("*.py"))]
        times: dict[Path, list[float]] = {f: [] for f in files}
        for _ in range(args.repeat):
            for f in files:
                times[f].append(parse_seconds(f, env))
    base = statistics.median(times[empty])
    print(f"{'DAG file':28} {'median s':>9} {'x empty':>8}")
    for f in files:
        med = statistics.median(times[f])
        print(f"{f.name:28} {med:9.3f} {med / base:8.2f}")


if __name__ == "__main__":
    main()
