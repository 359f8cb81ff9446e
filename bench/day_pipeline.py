"""One day's pipeline against its no-op twin: the share of a day's wall time that is real work.

    .venv/bin/python bench/day_pipeline.py [--repeat 5] [--preload on|off|both] [--engine connect|submit|both]
                                           [--gates one-pass|gx|both] [--side-by-side on|off|both]
                                           [--codegen-cache ours|spark|both]
                                           [--home .mlcycle-bench] [--stop]

On the embedded stack (started here by the project's launcher, with a champion made on the first
week of 2013 if there is none), each round takes a new day of 2013 through the real chain,
``flights_data`` -> ``air_time_scoring`` -> ``air_time_monitoring`` (the two later DAGs started by
their assets, as in production), and the same day through the twins of ``bench/twin_dags``: the
same task graphs, assets, mapped tasks and branches, with tasks that do nothing. A day's time runs
from the data run being queued to the monitoring run ending, by the scheduler's timestamps. The
two kinds alternate which goes first, so noise hits both alike. Printed: each round, the medians,
their ratio (target: at most 1.5), the part of the real day spent inside the Spark tasks, and each
run's and task's median time (a run's from queued to its end, and to its start: what the scheduler
takes before the run's first task).

Settings are compared in one run, taking turns day by day (the order alternating between rounds),
the scheduler restarted whenever its switches change: ``--engine both`` (the default) runs the
Spark jobs through spark-submit (a JVM per task: the ``spark_connect`` connection removed) and on
the stack's long-lived Spark Connect server (the connection back); ``--preload both`` without and
with the tasks' libraries preloaded in the scheduler (``mlcycle/orchestration/preload.py``);
``--gates both`` with each passing day validated by Great Expectations itself
(``MLCYCLE_ONE_PASS_GATES=0``) and judged in one pass with its Data Docs page rendered from that
verdict (``mlcycle.quality.by_day.gate_day``, the default); ``--side-by-side both`` with a job's
independent Spark passes one after the other (``MLCYCLE_SIDE_BY_SIDE=0``) and side by side (the
default: ``spark_jobs.common.side_by_side``: the raw datasets' gates, the monitor's passes);
``--codegen-cache both`` (on the Connect server) with Spark's own 100 generated classes kept per
JVM and with the platform's room for 2,000 (``mlcycle.config.CODEGEN_CACHE``): a second Connect
server, started beside the stack's with Spark's number, takes the days of the first setting (the
``spark_connect`` connection pointed at it), so both servers stay warm from day to day. The
scheduler and the connection are left with the defaults.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from datetime import date, timedelta

import bench_stack

ENGINES = {"connect": "on the Spark Connect server", "submit": "through spark-submit"}
CODEGEN = {"ours": "room for 2,000 generated classes", "spark": "Spark's 100 generated classes"}
SPARK_CODEGEN_CACHE = {"spark.sql.codegen.cache.maxEntries": "100"}  # Spark's own default
GATES = {"one-pass": "gates in one pass", "gx": "gates validated by GX"}
SIDE_BY_SIDE = {"on": "independent passes side by side", "off": "one pass after the other"}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--first-day",
        help="the first day measured (later days follow); default: the day after the stack's latest",
    )
    parser.add_argument(
        "--preload",
        choices=["on", "off", "both"],
        default="both",
        help="the scheduler preloads the tasks' libraries (mlcycle.orchestration.preload): on, off, or both in turn",
    )
    parser.add_argument(
        "--engine",
        choices=["connect", "submit", "both"],
        default="both",
        help="the Spark jobs on the stack's Spark Connect server, through spark-submit, or both in turn",
    )
    parser.add_argument(
        "--gates",
        choices=["one-pass", "gx", "both"],
        default="one-pass",
        help="a passing day's gates judged in one pass (the default), validated by GX itself, or both in turn",
    )
    parser.add_argument(
        "--side-by-side",
        choices=["on", "off", "both"],
        default="on",
        help="a job's independent Spark passes side by side (the default), one after the other, or both in turn",
    )
    parser.add_argument(
        "--codegen-cache",
        choices=["ours", "spark", "both"],
        default="ours",
        help="the Connect server keeps room for 2,000 generated classes (the default), Spark's 100, or both in turn",
    )
    bench_stack.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.codegen_cache != "ours" and args.engine != "connect":
        parser.error("--codegen-cache spark|both: with --engine connect (a server's setting)")

    admin = bench_stack.ready(args)
    from mlcycle.devstack import stack

    first = date.fromisoformat(args.first_day or bench_stack.next_free_day(admin))
    preloads = ["off", "on"] if args.preload == "both" else [args.preload]
    engines = ["submit", "connect"] if args.engine == "both" else [args.engine]
    gates = ["gx", "one-pass"] if args.gates == "both" else [args.gates]
    sides = ["off", "on"] if args.side_by_side == "both" else [args.side_by_side]
    caches = ["spark", "ours"] if args.codegen_cache == "both" else [args.codegen_cache]
    modes = list(itertools.product(preloads, engines, gates, sides, caches))
    summaries: dict[str, list] = {}
    current = None
    second = bench_stack.SecondConnectServer(SPARK_CODEGEN_CACHE) if "spark" in caches else None
    try:
        # the modes of a comparison take turns, day by day, in an order that alternates between
        # rounds (A B, B A, ...), so the days' growing history and the machine's noise hit them alike
        for i in range(args.repeat):
            for preload, engine, gate, side, cache in modes if i % 2 == 0 else modes[::-1]:
                mode = f"preload {preload}, Spark jobs {ENGINES[engine]}, {GATES[gate]}, {SIDE_BY_SIDE[side]}"
                if len(caches) > 1 or cache != "ours":
                    mode += f", {CODEGEN[cache]}"
                wanted = {
                    "preload": preload == "on",
                    "one_pass": gate == "one-pass",
                    "side_by_side": side == "on",
                }
                if bench_stack.scheduler_switches() != wanted:
                    bench_stack.restart_scheduler(**wanted)
                bench_stack.use_spark_connect(engine == "connect")
                if second is not None:
                    second.point(cache == "spark")
                if mode != current:
                    print(f"-- {mode}", flush=True)
                    current = mode
                day = first.isoformat()
                first += timedelta(days=1)
                order = ("real", "twin") if i % 2 == 0 else ("twin", "real")
                got = {kind: bench_stack.run_day(admin, kind, day) for kind in order}
                summaries.setdefault(mode, []).append(got)
                print(
                    f"{day}: real {got['real']['seconds']:6.1f} s (Spark tasks {got['real']['spark_tasks']:5.1f} s)"
                    f"   no-op twin {got['twin']['seconds']:6.1f} s"
                    f"   ratio {got['real']['seconds'] / got['twin']['seconds']:.2f}",
                    flush=True,
                )
    finally:
        bench_stack.use_spark_connect(True)
        if second is not None:
            second.point(False)
            second.stop()
        switches = bench_stack.scheduler_switches()
        if not (switches["one_pass"] and switches["side_by_side"]):
            bench_stack.restart_scheduler(one_pass=True, side_by_side=True)
        if args.stop:
            stack.stop()
    for mode, rows in summaries.items():
        summarize(mode, rows)


def summarize(mode: str, rows: list[dict]) -> None:
    real = statistics.median(r["real"]["seconds"] for r in rows)
    twin = statistics.median(r["twin"]["seconds"] for r in rows)
    spark = statistics.median(r["real"]["spark_tasks"] for r in rows)
    ratios = [r["real"]["seconds"] / r["twin"]["seconds"] for r in rows]
    print()
    print(f"== {mode}: median of {len(rows)} days: real {real:.1f} s, no-op twin {twin:.1f} s")
    print(
        f"real / twin: {real / twin:.2f} (median of the per-day ratios {statistics.median(ratios):.2f}; "
        "target <= 1.5)"
    )
    print(
        f"inside the Spark tasks (validate_raw, build_features, score, monitor): {spark:.1f} s of the real day"
    )
    print("where the time goes (median seconds per day)   real    no-op twin")
    for part in ("data", "scoring", "monitoring"):
        real_s = statistics.median(r["real"]["runs"][part] for r in rows)
        twin_s = statistics.median(r["twin"]["runs"][part] for r in rows)
        print(f"  {part} run, queued to end{'':22s}{real_s:6.1f}   {twin_s:6.1f}")
    for part in ("data", "scoring", "monitoring"):
        real_s = statistics.median(r["real"]["waits"][part] for r in rows)
        twin_s = statistics.median(r["twin"]["waits"][part] for r in rows)
        print(f"  {part} run, queued to started{'':18s}{real_s:6.1f}   {twin_s:6.1f}")
    for name in sorted(rows[0]["real"]["tasks"]):
        real_s = statistics.median(r["real"]["tasks"].get(name, 0.0) for r in rows)
        twin_s = statistics.median(r["twin"]["tasks"].get(name, 0.0) for r in rows)
        print(f"  task {name:40s}{real_s:6.1f}   {twin_s:6.1f}")


if __name__ == "__main__":
    main()
