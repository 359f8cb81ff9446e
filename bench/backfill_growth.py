"""Backfill growth: Airflow's own backfill of the data DAG over 7, 30 and 90 days of 2013, with the
scoring and monitoring that the new features start, and how the cost grows with the days.

    .venv/bin/python bench/backfill_growth.py [--sizes 7 30 90] [--repeat 1] [--start 2013-02-01] [--data-only]

On the embedded stack of ``bench/day_pipeline.py`` (same folder, same champion). Each backfill
covers ``size`` days from ``--start`` (the larger ones include the smaller; Airflow reprocesses
completed days), with the DAG's ``max_active_runs``. Timed from the backfill being created to the
last of its runs ending ("data"), and to the scoring and monitoring runs the features started
ending ("chain"), by the scheduler's timestamps. The sizes alternate order between rounds.
Printed: seconds per size, seconds per day, and the ratio of each size to the next smaller one
against the ratio of days (target: 90 days at most 3.3x of 30 days).

``--data-only`` pauses the scoring and monitoring DAGs for the measurement, so only the data DAG's
runs are timed (about half the work), and drops the asset events they would have started from.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date, timedelta

import bench_stack

from mlcycle.orchestration.client import AirflowError


def runs_between(admin, dag_id: str, start: str, end: str) -> list[dict]:
    """Every run of ``dag_id`` with a logical date in [start, end], page by page."""
    runs, offset = [], 0
    while True:
        page = admin.dag_runs(
            dag_id,
            logical_date_gte=f"{start}T00:00:00Z",
            logical_date_lte=f"{end}T00:00:00Z",
            order_by="id",
            limit=100,
            offset=offset,
        )
        runs += page
        if len(page) < 100:
            return runs
        offset += 100


DOWNSTREAM = ("air_time_scoring", "air_time_monitoring")


def backfill(admin, start: str, days: int, chain: bool = True) -> dict:
    end = (date.fromisoformat(start) + timedelta(days=days - 1)).isoformat()
    downstream = DOWNSTREAM if chain else ()
    known = {d: {r["dag_run_id"] for r in bench_stack.latest_runs(admin, d, limit=100)} for d in downstream}
    bench_stack.no_running_backfill(admin, "flights_data")  # the previous size's, being closed
    created = time.time()
    job = admin.backfill("flights_data", start, end, max_active_runs=1)  # the DAG's
    bench_stack.wait_for_backfill(
        admin, job, "flights_data", start, end, days, since=created, timeout=6 * 3600
    )
    runs = runs_between(admin, "flights_data", start, end)  # one per day; reprocessed ones rerun in place
    failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
    if len(runs) != days or failed:
        raise SystemExit(f"backfill {job['id']}: {len(runs)} runs of {days}, failed: {failed}")
    if downstream:
        admin.wait_until_idle(list(downstream), timeout=3600)
    data_end = max(bench_stack.ts(r["end_date"]) for r in runs)
    chain_end = data_end
    for dag_id in downstream:
        for r in bench_stack.latest_runs(admin, dag_id, limit=100):
            if r["dag_run_id"] not in known[dag_id] and r.get("end_date"):
                chain_end = max(chain_end, bench_stack.ts(r["end_date"]))
    return {"data": data_end - created, "chain": chain_end - created}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[7, 30, 90])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--start", default="2013-02-01")
    parser.add_argument("--data-only", action="store_true", help="time the data DAG alone")
    bench_stack.add_arguments(parser)
    args = parser.parse_args(argv)

    admin = bench_stack.ready(args)
    from mlcycle.devstack import stack

    results: dict[int, list[dict]] = {n: [] for n in args.sizes}
    if args.data_only:
        for dag_id in DOWNSTREAM:
            admin.request("PATCH", f"dags/{dag_id}", json={"is_paused": True})
    try:
        for i in range(args.repeat):
            for n in args.sizes if i % 2 == 0 else args.sizes[::-1]:
                got = backfill(admin, args.start, n, chain=not args.data_only)
                results[n].append(got)
                print(
                    f"{n:3d} days: data {got['data']:7.1f} s ({got['data'] / n:5.1f} s/day), "
                    f"chain {got['chain']:7.1f} s ({got['chain'] / n:5.1f} s/day)",
                    flush=True,
                )
    finally:
        if args.data_only:  # what the paused DAGs would have started is not run later either
            for dag_id in DOWNSTREAM:
                try:
                    admin.request("DELETE", f"dags/{dag_id}/assets/queuedEvents")
                except AirflowError:  # 404: none queued
                    pass
                admin.request("PATCH", f"dags/{dag_id}", json={"is_paused": False})
        if args.stop:
            stack.stop()
    print()
    med = {
        n: {k: statistics.median(r[k] for r in rs) for k in ("data", "chain")} for n, rs in results.items()
    }
    sizes = sorted(med)
    for small, big in zip(sizes, sizes[1:], strict=False):
        print(
            f"{big} days / {small} days: data {med[big]['data'] / med[small]['data']:.2f}x, "
            f"chain {med[big]['chain'] / med[small]['chain']:.2f}x, against {big / small:.2f}x the days"
        )


if __name__ == "__main__":
    main()
