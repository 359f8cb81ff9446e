"""DAG parse cost: each DAG file's parse time against its same-shape no-op twin's, side by side.

    .venv/bin/python bench/parse_cost.py [--repeat 7] [--fork]

A file that builds ten tasks is not measured against an empty DAG but against its twin: a file made
here from the DAGs the real file builds (the same DAG ids, schedules, asset triggers, params with
their schemas, and tags; the same tasks, dependencies, outlets and mapped tasks), every task a
no-op ``@task`` (as the day's twins of ``bench/twin_dags``), nothing imported but Airflow. Each
round parses every file and every twin (and an empty DAG, for scale) in a fresh interpreter that
has already loaded what the dag-processor has loaded when it parses that file (its parsing module,
the models, the providers manager, the ``airflow.*`` modules the file names, which
``parsing_pre_import_modules`` imports beforehand, and what the project's
``airflow_local_settings`` imports in the dag-processor: ``mlcycle.orchestration.preload``), from
bytecode (the embedded stack compiles the project's files when it starts), in an interleaved order,
so machine noise hits all files alike; the ratios of medians are printed. A file's shape is read in
the first round's parse of it, after the timed part, and its twin written then. What is left is the
file's own cost: the non-Airflow modules it imports and the building of its DAGs, against the
building of the same shapes from Airflow's cheapest operator.

With ``--fork``, each round is one such interpreter, and every parse a process forked from it, as
the dag-processor forks one per parse: what a parse writes to the memory it shares with its parent
(reference counts of the modules it uses) is copied then, and counted.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mlcycle.devstack import stack  # noqa: E402

EMPTY_DAG = """
from datetime import datetime
from airflow.sdk import DAG
with DAG(dag_id="empty", schedule=None, start_date=datetime(2013, 1, 1)):
    pass
"""
TIMER = r"""
import importlib, importlib.util, json, os, sys, time
# What the dag-processor has loaded before it parses a file: its own parsing module (with the SDK,
# the models and SQLAlchemy), the providers manager, and the ``airflow.*`` modules the file names
# (``[dag_processor] parsing_pre_import_modules``, on by default, imports them in the parent).
import airflow.dag_processing.processor
import airflow.models
import airflow.providers_manager
import airflow.sdk
from airflow.utils.file import iter_airflow_imports
# and what the project's local settings import in the dag-processor (mlcycle.orchestration.preload)
from mlcycle.orchestration.preload import setup
setup(["airflow", "dag-processor"])
def shape_of(module):
    from airflow.sdk import DAG

    def schedule(dag):
        kind = type(dag.timetable).__name__
        if hasattr(dag.timetable, "expression"):  # a cron timetable, either kind
            return {"cron": dag.timetable.expression, "kind": kind}
        condition = getattr(dag.timetable, "asset_condition", None)
        if condition is not None:
            return {"assets": condition_of(condition)}
        return {}

    def upstream_first(dag):
        done, ordered, left = set(), [], list(dag.tasks)
        while left:
            ready = [t for t in left if t.upstream_task_ids <= done]
            ordered += ready
            done |= {t.task_id for t in ready}
            left = [t for t in left if t.task_id not in done]
        return ordered

    def condition_of(condition):
        if hasattr(condition, "uri"):
            return [condition.name, condition.uri]
        return {type(condition).__name__: [condition_of(c) for c in condition.objects]}

    shapes = [
        {
            "dag_id": dag.dag_id,
            "schedule": schedule(dag),
            "params": {
                k: [dag.params[k], dag.params.get_param(k).schema, dag.params.get_param(k).description]
                for k in dag.params
            },
            "tags": sorted(dag.tags),
            "tasks": [
                {
                    "task_id": t.task_id,
                    "upstream": sorted(t.upstream_task_ids),
                    "outlets": [[o.name, o.uri] for o in t.outlets if hasattr(o, "uri")],
                    "mapped": bool(getattr(t, "is_mapped", False)),
                }
                for t in upstream_first(dag)
            ],
        }
        for dag in sorted({d.dag_id: d for d in vars(module).values() if isinstance(d, DAG)}.values(), key=lambda d: d.dag_id)
    ]
    return shapes


def parse(n, path):
    for name in iter_airflow_imports(path):
        importlib.import_module(name)
    t0 = time.perf_counter()
    spec = importlib.util.spec_from_file_location(f"dag_under_test_{n}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return time.perf_counter() - t0, module


def forked(n, path):
    # the parse in a process forked from this one, as the dag-processor forks one per parse
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, repr(parse(n, path)[0]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        seconds = answer.read()
    if os.waitpid(pid, 0)[1] != 0 or not seconds:
        sys.exit(f"parsing {path} failed")
    return float(seconds)


shape, fork = "--shape" in sys.argv, "--fork" in sys.argv
for n, path in enumerate(a for a in sys.argv[1:] if a not in ("--shape", "--fork")):
    if fork:
        print(forked(n, path))
        continue
    seconds, module = parse(n, path)
    print(seconds)
    if shape:
        print(json.dumps(shape_of(module), default=str))
"""
# The twin of a DAG file: the same DAGs, built from their shapes, every task a no-op ``@task`` (as
# the day's twins of ``bench/twin_dags`` are), a mapped task mapped over its first upstream's output.
TWIN = """
from datetime import datetime
import airflow.providers.standard.decorators.python  # (pre-imported by the dag-processor)
from airflow.sdk import DAG, Asset, AssetAll, AssetAny, CronDataIntervalTimetable, CronTriggerTimetable, Param, task
SHAPES = {shapes!r}


@task
def noop(value=None):
    return None


def condition(c):
    if isinstance(c, list):
        return Asset(name=c[0], uri=c[1])
    ((kind, parts),) = c.items()
    return {{"AssetAny": AssetAny, "AssetAll": AssetAll}}[kind](*[condition(p) for p in parts])


for shape in SHAPES:
    when = shape["schedule"]
    if "cron" in when:
        kind = {{"CronDataIntervalTimetable": CronDataIntervalTimetable, "CronTriggerTimetable": CronTriggerTimetable}}
        schedule = kind[when["kind"]](when["cron"], timezone="UTC")
    elif "assets" in when:
        schedule = condition(when["assets"])
    else:
        schedule = None
    with DAG(
        dag_id=shape["dag_id"],
        schedule=schedule,
        start_date=datetime(2013, 1, 1),
        params={{k: Param(v, description=d, **schema) for k, (v, schema, d) in shape["params"].items()}},
        tags=shape["tags"],
    ) as dag:
        tasks = {{}}
        for t in shape["tasks"]:  # upstream first
            made = noop.override(task_id=t["task_id"], outlets=[Asset(name=n, uri=u) for n, u in t["outlets"]])
            if t["mapped"] and t["upstream"]:
                tasks[t["task_id"]] = made.expand(value=tasks[t["upstream"][0]])
            else:
                tasks[t["task_id"]] = made()
            for upstream in t["upstream"]:
                tasks[upstream] >> tasks[t["task_id"]]
    globals()[shape["dag_id"]] = dag
"""


def _timer(env: dict[str, str], *args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", TIMER, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"parsing {args[0]} failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()


def parse_seconds(path: Path, env: dict[str, str]) -> float:
    return float(_timer(env, str(path))[-1])


def parse_seconds_and_shapes(path: Path, env: dict[str, str]) -> tuple[float, list[dict]]:
    """``parse_seconds`` of a file, and the shapes of the DAGs it built (read after the timed
    parse: ``shapes_of``)."""
    seconds, shapes = _timer(env, str(path), "--shape")[-2:]
    return float(seconds), json.loads(shapes)


def forked_parse_seconds(paths: list[Path], env: dict[str, str]) -> list[float]:
    """Each file's parse time, in that order, each in a process forked from one interpreter that
    has loaded what the dag-processor has (``--fork``)."""
    return [float(line) for line in _timer(env, *map(str, paths), "--fork")[-len(paths) :]]


def shapes_of(path: Path, env: dict[str, str]) -> list[dict]:
    """The DAGs a file builds: ids, schedules, params, tags, and their tasks (ids, upstream,
    outlets, mapped or not), upstream first."""
    return shapes_of_files([path], env)[0]


def shapes_of_files(paths: list[Path], env: dict[str, str]) -> list[list[dict]]:
    """``shapes_of`` for each of ``paths``, all read in one process."""
    lines = _timer(env, *map(str, paths), "--shape")[-2 * len(paths) :]
    return [json.loads(line) for line in lines[1::2]]


def twin_of(path: Path, folder: Path, env: dict[str, str]) -> Path | None:
    """The same-shape no-op twin of a DAG file, written under ``folder`` (None: it builds no DAG)."""
    return twins_of([path], folder, env)[path]


def twins_of(paths: list[Path], folder: Path, env: dict[str, str]) -> dict[Path, Path | None]:
    """``twin_of`` for each of ``paths``, their shapes read in one process."""
    shapes = shapes_of_files(paths, env)
    return {p: write_twin(s, folder / f"twin_{p.name}") for p, s in zip(paths, shapes, strict=True)}


def write_twin(shapes: list[dict], twin: Path) -> Path | None:
    if not shapes:
        return None
    twin.write_text(TWIN.format(shapes=shapes))
    return twin


def main(argv=None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--files", nargs="*", help="DAG files (default: every file of dags/)")
    parser.add_argument(
        "--fork",
        action="store_true",
        help="each round in one interpreter, every parse in a process forked from it (as the "
        "dag-processor forks its parses) instead of an interpreter per parse",
    )
    args = parser.parse_args(argv)
    dag_files = [Path(f) for f in args.files] if args.files else sorted((REPO / "dags").glob("*.py"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        empty = folder / "empty_dag.py"
        empty.write_text(EMPTY_DAG)
        env = dict(os.environ, MLCYCLE_HOME=tmp, AIRFLOW_HOME=str(folder / "airflow"))
        # every file read from bytecode, as the embedded stack compiles it (stack.compile_bytecode)
        stack.compile_bytecode({"AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags")})
        compileall.compile_dir(folder, quiet=2)
        times: dict[Path, list[float]] = {empty: []}
        if args.fork:
            twins = twins_of(dag_files, folder, env)
            compileall.compile_dir(folder, quiet=2)
        else:  # the first round reads each file's shape after its timed parse, and writes its twin
            times[empty].append(parse_seconds(empty, env))
            twins = {}
            for f in dag_files:
                seconds, shapes = parse_seconds_and_shapes(f, env)
                times[f] = [seconds]
                twins[f] = write_twin(shapes, folder / f"twin_{f.name}")
                if twins[f] is not None:
                    compileall.compile_file(twins[f], quiet=2)
                    times[twins[f]] = [parse_seconds(twins[f], env)]
        files = [empty, *[p for f, t in twins.items() for p in (f, t) if p is not None]]
        for _ in range(args.repeat - (0 if args.fork else 1)):
            each = forked_parse_seconds(files, env) if args.fork else [parse_seconds(f, env) for f in files]
            for f, seconds in zip(files, each, strict=True):
                times.setdefault(f, []).append(seconds)
    med = {f: statistics.median(v) for f, v in times.items()}
    print(f"{'DAG file':28} {'median ms':>9} {'twin ms':>9} {'x twin':>7} {'x empty':>8}")
    print(f"{'(empty DAG)':28} {med[empty] * 1000:9.2f}")
    ratios = {}
    for f, t in twins.items():
        if t is None:  # no DAG, no twin: its own time only
            print(f"{f.name:28} {med[f] * 1000:9.2f} {'-':>9} {'-':>7} {med[f] / med[empty]:8.1f}")
            continue
        ratios[f.name] = med[f] / med[t]
        print(f"{f.name:28} {med[f] * 1000:9.2f} {med[t] * 1000:9.2f} {ratios[f.name]:7.2f} {med[f] / med[empty]:8.1f}")
    return ratios


if __name__ == "__main__":
    main()
