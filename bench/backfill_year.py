"""A year's backfill against one job: Airflow's own backfill of 2013 through the whole chain,
against the same work done by one Spark job over the year, on the same stack.

    .venv/bin/python bench/backfill_year.py [--start 2013-01-01] [--months 12] [--rounds 1]

- **Airflow**: a backfill of ``flights_data_by_month`` over the months (a run per month: land,
  raw gates, features of every day of the month), and what the features it announces start:
  ``air_time_scoring`` with the champion, then ``air_time_monitoring``. Timed from the backfill
  being created to the last scoring or monitoring run ending, by the scheduler's timestamps; every
  run must succeed, and every day must end with its partition and verdicts (checked after).
- **One job**: one Python process with one Spark Connect session on the stack's own server, which
  calls the same entry points once each over all the days (``quality.py``, ``features.py``,
  ``scoring.py``, ``monitoring.py`` with ``--start``/``--end``; the replay of every day before),
  into a data root of its own. Timed from the process starting to its end.

The two alternate which goes first between rounds. The stack is ``bench/bench_stack.py``'s (its
set-up backfills a week, trains and approves a champion); the training DAG stays paused, so a
retraining that monitoring asks for does not run during the measurement. Printed: each side's
seconds, the days and flights, and the ratio Airflow / one job (target: at most 3).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import bench_stack

DATA_DAG = "flights_data_by_month"
CHAIN = (f"{bench_stack.MODEL}_scoring", f"{bench_stack.MODEL}_monitoring")


def months(start: str, count: int) -> list[date]:
    first = date.fromisoformat(start).replace(day=1)
    return [
        date(first.year + (first.month - 1 + k) // 12, (first.month - 1 + k) % 12 + 1, 1)
        for k in range(count)
    ]


def last_day(month_start: date) -> date:
    from datetime import timedelta

    following = date(month_start.year + month_start.month // 12, month_start.month % 12 + 1, 1)
    return following - timedelta(days=1)


def airflow_backfill(admin, first: date, last: date) -> dict:
    """Airflow's backfill of the month DAG over [first, last], and the chain it starts."""
    known = {d: {r["dag_run_id"] for r in bench_stack.latest_runs(admin, d, limit=100)} for d in CHAIN}
    # each round backfills months that have no run yet (a run of an earlier round is deleted: its
    # data stays, and is written again)
    for r in admin.dag_runs(DATA_DAG, limit=100):
        admin.request("DELETE", f"dags/{DATA_DAG}/dagRuns/{r['dag_run_id']}")
    bench_stack.no_running_backfill(admin, DATA_DAG)  # an earlier round's, being closed
    created = time.time()
    job = admin.backfill(DATA_DAG, first.isoformat(), last.replace(day=1).isoformat(), max_active_runs=1)
    month_runs = (last.year - first.year) * 12 + last.month - first.month + 1
    bench_stack.wait_for_backfill(
        admin,
        job,
        DATA_DAG,
        first.isoformat(),
        last.replace(day=1).isoformat(),
        month_runs,
        since=created,
        timeout=4 * 3600,
    )
    runs = admin.dag_runs(
        DATA_DAG,
        logical_date_gte=f"{first.isoformat()}T00:00:00Z",
        logical_date_lte=f"{last.replace(day=1).isoformat()}T00:00:00Z",
    )
    held = []
    for r in runs:  # a run fails for a day its gates held, and writes and announces the others
        if r["state"] == "success":
            continue
        states = {
            t["task_id"]: t["state"]
            for t in admin.request("GET", f"dags/{DATA_DAG}/dagRuns/{r['dag_run_id']}/taskInstances")[
                "task_instances"
            ]
        }
        if states.get("validate_raw") != "failed" or states.get("publish_features") != "success":
            raise SystemExit(f"backfill {job['id']}: run {r['dag_run_id']} failed: {states}")
        held.append(r["dag_run_id"])
    admin.wait_until_idle(list(CHAIN), timeout=4 * 3600)
    end = max(bench_stack.ts(r["end_date"]) for r in runs)
    chained = {d: [] for d in CHAIN}
    for dag_id in CHAIN:
        for r in bench_stack.latest_runs(admin, dag_id, limit=100):
            if r["dag_run_id"] not in known[dag_id] and r.get("end_date"):
                chained[dag_id].append(r)
                end = max(end, bench_stack.ts(r["end_date"]))
    bad = [r["dag_run_id"] for rs in chained.values() for r in rs if r["state"] != "success"]
    if bad:
        raise SystemExit(f"chain runs failed: {bad}")
    return {
        "seconds": end - created,
        "runs": len(runs),
        "runs_with_held_days": held,
        **{d: len(rs) for d, rs in chained.items()},
    }


def one_job_command(data_root: str, first: date, last: date, model: str, uri: str, version: int) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--one-job",
        json.dumps(
            {
                "data_root": data_root,
                "start": first.isoformat(),
                "end": last.isoformat(),
                "model": model,
                "uri": uri,
                "version": version,
            }
        ),
    ]


def run_one_job(spec: dict) -> None:
    """The one job: every step over all the days, in one process and one Spark session."""
    from spark_jobs import features, monitoring, quality, scoring
    from spark_jobs.common import days_of, get_spark
    from spark_jobs.flights.replay import land_days, load_reference

    root, start, end = spec["data_root"], spec["start"], spec["end"]
    days = days_of(argparse.Namespace(ds=None, start=date.fromisoformat(start), end=date.fromisoformat(end)))
    spark = get_spark("one-job-year")  # held for the whole job: the entry points use it
    t0 = time.monotonic()
    load_reference(root)
    land_days(root, days)
    steps = {"land": time.monotonic() - t0}
    span = ["--start", start, "--end", end, "--data-root", root]
    for name, job, args in (("validate_raw", quality, span), ("build_features", features, span)):
        began = time.monotonic()
        code = job.main(args)
        steps[name] = time.monotonic() - began
        if code not in (0, 3):  # 3: days held by a gate, as in the backfill
            raise SystemExit(f"{name} exited {code}")
    # scoring and monitoring take the days that have features, as the scoring DAG's plan does
    built = [arg for ds in days if Path(root, "features", f"ds={ds}").is_dir() for arg in ("--ds", ds)]
    for name, job, args in (
        (
            "score",
            scoring,
            [
                *built,
                "--data-root",
                root,
                "--model",
                spec["model"],
                "--model-uri",
                spec["uri"],
                "--model-version",
                str(spec["version"]),
                "--airflow-run-id",
                "one-job",
            ],
        ),
        ("monitor", monitoring, [*built, "--data-root", root, "--model", spec["model"]]),
    ):
        began = time.monotonic()
        code = job.main(args)
        steps[name] = time.monotonic() - began
        if code not in (0, 3):  # 3: days held by a gate, as in the backfill
            raise SystemExit(f"{name} exited {code}")
    spark.stop()
    print("steps: " + json.dumps({k: round(v, 1) for k, v in steps.items()}), flush=True)


def one_job(home: Path, first: date, last: date) -> dict:
    from mlcycle.config import settings
    from mlcycle.devstack import stack
    from mlcycle.specs import find_model

    env = stack.stack_env()
    cfg = settings().for_model(find_model(bench_stack.MODEL))
    version = bench_stack.champion_version(cfg.model_name)
    root = home / "one_job" / "data"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    connect = stack.connect_connection()
    url = f"sc://{connect['host']}:{connect['port']}"
    command = one_job_command(
        str(root), first, last, bench_stack.MODEL, f"models:/{cfg.model_name}/{version}", version
    )
    started = time.monotonic()
    done = subprocess.run(
        command,
        env={**os.environ, **env, "SPARK_REMOTE": url, "PYTHONPATH": str(bench_stack.REPO)},
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    if done.returncode:
        raise SystemExit(
            f"the one job failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    steps = next((line for line in done.stdout.splitlines() if line.startswith("steps: ")), "")
    return {"seconds": seconds, "steps": steps.removeprefix("steps: "), "root": str(root)}


def written_days(data_root: str, first: date, last: date) -> dict:
    """Days with a features partition, a predictions partition and a monitoring partition."""
    root = Path(data_root)
    out = {}
    for name, folder in (
        ("features", root / "features"),
        ("predictions", root / "models" / bench_stack.MODEL / "predictions"),
        ("monitoring", root / "models" / bench_stack.MODEL / "monitoring"),
    ):
        out[name] = sum(
            1
            for p in folder.glob("ds=*")
            if first.isoformat() <= p.name.removeprefix("ds=") <= last.isoformat()
        )
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2013-01-01", help="first month")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--sides", nargs="+", default=["airflow", "one_job"], choices=["airflow", "one_job"])
    parser.add_argument("--one-job", help=argparse.SUPPRESS)
    bench_stack.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.one_job:
        run_one_job(json.loads(args.one_job))
        return

    admin = bench_stack.ready(args)
    from mlcycle.config import settings
    from mlcycle.devstack import stack
    from mlcycle.specs import find_model

    spans = months(args.start, args.months)
    # the days the month runs take: those of the months within the use case's days
    usecase = find_model(bench_stack.MODEL).usecase
    first = max(spans[0], date.fromisoformat(usecase.first_day))
    last = min(last_day(spans[-1]), date.fromisoformat(usecase.last_day))
    print(f"{first} .. {last}: {(last - first).days + 1} days, {len(spans)} month runs", flush=True)
    results = {"airflow": [], "one_job": []}
    try:
        for i in range(args.rounds):
            for side in args.sides if i % 2 == 0 else args.sides[::-1]:
                if side == "airflow":
                    got = airflow_backfill(admin, first, last)
                    got["written"] = written_days(settings().data_root, first, last)
                else:
                    got = one_job(Path(args.home), first, last)
                    got["written"] = written_days(got["root"], first, last)
                results[side].append(got)
                print(f"round {i + 1} {side}: {json.dumps(got)}", flush=True)
    finally:
        if args.stop:
            stack.stop()
    if not all(results.values()):
        return
    a = statistics.median(r["seconds"] for r in results["airflow"])
    b = statistics.median(r["seconds"] for r in results["one_job"])
    print()
    print(f"Airflow backfill of {len(spans)} month runs and their chain: {a:.1f} s (median of {args.rounds})")
    print(f"one job over the same days: {b:.1f} s (median of {args.rounds})")
    print(f"Airflow / one job: {a / b:.2f}x (target: at most 3x)")


if __name__ == "__main__":
    main()
