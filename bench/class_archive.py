"""A fresh Spark process with and without the class-data archive of ``mlcycle.class_archive``,
side by side: the same ``spark-submit`` of a job, as a task of the local engine runs it, with the
driver's JVM mapping the archive or loading its classes itself, alternating in each round.

    .venv/bin/python bench/class_archive.py --data-root /tmp/class-archive [--rounds 5] [--job features]

- ``features``: the features job of a day (``spark_jobs/features.py --ds D``) with its history: the
  data root gets the first ``--days`` days of 2013 landed and gated once (kept for a rerun), and
  the last day is built again in every run.
- ``session``: a session and one small query, nothing else: what every Spark process pays first.
- ``server``: the embedded stack's Spark Connect server (``spark-submit --class
  SparkConnectServer``, as ``mlcycle stack`` starts it), from its start until it answers on its
  port: a JVM only, no Python.

Printed: each run's seconds, the medians and the ratio without / with the archive. The archive is
the environment's (``make venv`` makes it); none there, the benchmark says so and stops.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SETTINGS = ("without", "with")


def probe() -> None:
    """The ``session`` job: a local session, one small query."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("class-archive-probe").getOrCreate()
    assert spark.range(1000).selectExpr("sum(id) AS s").collect()[0]["s"] == 499500
    spark.stop()


def submit(job_args: list[str], archive: bool, env: dict) -> list[str]:
    """The ``spark-submit`` of a job, the driver's JVM with the archive or without it."""
    from mlcycle.config import spark_conf

    conf = spark_conf()
    conf.pop("spark.driver.extraJavaOptions", None)
    if archive:
        from mlcycle.class_archive import java_options

        conf["spark.driver.extraJavaOptions"] = java_options(env)
    return [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master",
        "local[2]",
        *(a for k, v in conf.items() for a in ("--conf", f"{k}={v}")),
        *job_args,
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_answering(command: list[str], port: int, env: dict, timeout: float = 300) -> float:
    """Seconds from starting the Connect server of ``command`` to its first taking a connection on
    ``port``; the server is stopped after (its stop not counted)."""
    began = time.monotonic()
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = began + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the Spark Connect server exited ({proc.returncode})")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return time.monotonic() - began
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"the Spark Connect server did not answer within {timeout:.0f} s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


def prepare(root: Path, days: list[str], env: dict) -> None:
    """The days landed and gated once (the range gate, in one job)."""
    from spark_jobs.flights.replay import land_days, load_reference

    if (root / "validated" / "flights" / f"ds={days[-1]}").is_dir():
        return
    load_reference(str(root))
    land_days(str(root), days)
    command = submit(
        [str(REPO / "spark_jobs" / "quality.py"), "--start", days[0], "--end", days[-1], "--data-root", str(root)],
        True,
        env,
    )
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"gating the days failed:\n{done.stderr[-3000:]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", help="where the days are landed and gated (job features)")
    parser.add_argument("--job", choices=["features", "session", "server"], default="features")
    parser.add_argument("--days", type=int, default=8, help="days landed; the last is built")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        probe()
        return 0
    from mlcycle.class_archive import ARCHIVE

    if not ARCHIVE.is_file():
        raise SystemExit(f"no class-data archive at {ARCHIVE}: make it with `make venv`")
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONPATH": str(REPO),
        "MLCYCLE_CLASS_ARCHIVE": "1",
    }
    env.pop("JAVA_TOOL_OPTIONS", None)  # the driver's options are the ones compared
    if args.job == "features":
        if not args.data_root:
            parser.error("--data-root is needed for the features job")
        root = Path(args.data_root).resolve()
        days = [(dt.date(2013, 1, 1) + dt.timedelta(days=d)).isoformat() for d in range(args.days)]
        prepare(root, days, env)
        job = [str(REPO / "spark_jobs" / "features.py"), "--ds", days[-1], "--data-root", str(root)]
        what = f"the features job of {days[-1]} ({args.days - 1} days of history)"
    elif args.job == "session":
        job = [str(Path(__file__).resolve()), "--probe"]
        what = "a session and one small query"
    else:
        from mlcycle.devstack.stack import CONNECT_SERVER

        port = _free_port()
        job = [
            "--class", CONNECT_SERVER,
            "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf", f"spark.connect.grpc.binding.port={port}",
            "spark-internal",
        ]  # fmt: skip
        what = "the Spark Connect server, until it answers"

    seconds: dict[str, list[float]] = {s: [] for s in SETTINGS}
    for round_ in range(args.rounds):
        for setting in SETTINGS if round_ % 2 == 0 else SETTINGS[::-1]:
            command = submit(job, setting == "with", env)
            if args.job == "server":
                seconds[setting].append(server_answering(command, port, env))
                continue
            began = time.monotonic()
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            seconds[setting].append(time.monotonic() - began)
            if done.returncode != 0:
                raise SystemExit(f"{setting} the archive: the job failed:\n{done.stderr[-3000:]}")
        print(
            f"round {round_ + 1}/{args.rounds}: "
            + ", ".join(f"{s} the archive {seconds[s][-1]:.2f} s" for s in SETTINGS),
            flush=True,
        )
    median = {s: statistics.median(v) for s, v in seconds.items()}
    print(f"\n{what}, a fresh spark-submit each run, medians of {args.rounds} rounds:")
    for s in SETTINGS:
        print(f"  {s + ' the archive':20} {median[s]:6.2f} s")
    print(f"without / with: {median['without'] / median['with']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
