"""Online scoring: the platform's scoring service against MLflow's own ``mlflow models serve`` of
the same version, side by side in one run.

    .venv/bin/python bench/serving.py [--home DIR] [--rounds 5] [--requests 400] [--clients 1 8 32]
                                      [--batches 10] [--day D] [--stop]

On the benchmark's stack (``bench_stack``: a week of 2013 backfilled, air_time's champion), for one
backfilled day: latency of one flight per request (p50, p99) at 1, 8 and 32 concurrent clients
(``--clients``), and rows per second for batches of 1,000 flights. The service is asked as a
scheduler asks (carrier, number, tail, airports, scheduled departure; it finds the features
itself); the stock server gets the finished feature rows of the same flights
(``dataframe_records``), so it is spared the lookups.
Rounds alternate the two servers, so machine noise hits both alike; the load generator runs on the
same two cores. Medians over the rounds are printed, with the ratios.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import bench_stack  # noqa: E402

CLIENTS = (1, 8, 32)
BATCH = 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    """A server and how a body of flights is made for it."""

    def __init__(self, name: str, port: int, path: str, headers: dict, body):
        self.name, self.port, self.path, self.headers, self.body = name, port, path, headers, body

    def call(self, connection: http.client.HTTPConnection, flights: list) -> float:
        payload = json.dumps(self.body(flights))
        started = time.perf_counter()
        connection.request("POST", self.path, body=payload, headers=self.headers)
        response = connection.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"{self.name} answered {response.status}: {data[:300]!r}")
        return elapsed


def latencies(target: Target, flights: list, clients: int, requests: int) -> list[float]:
    """``requests`` requests of one flight each, spread over ``clients`` threads, each with its own
    kept-alive connection, opened (and used once, untimed) before the clients start together: the
    figures are of requests, not of connections being set up."""
    out: list[float] = []
    failed: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def worker(share: list) -> None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=120)
            target.call(connection, [share[0]])
            start.wait()
            mine = [target.call(connection, [flight]) for flight in share]
            connection.close()
        except BaseException as exc:  # noqa: BLE001 (reported by the caller)
            failed.append(exc)
            start.abort()
            return
        with lock:
            out.extend(mine)

    shares = [
        [flights[(c + i * clients) % len(flights)] for i in range(requests // clients)]
        for c in range(clients)
    ]
    threads = [threading.Thread(target=worker, args=(share,)) for share in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        raise SystemExit(f"{target.name}: {failed[0]!r}")
    return out


def throughput(target: Target, flights: list, batches: int) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=600)
    batch = (flights * (BATCH // len(flights) + 1))[:BATCH]
    elapsed = sum(target.call(connection, batch) for _ in range(batches))
    connection.close()
    return BATCH * batches / elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def stock_server(tracking_uri: str, model_uri: str, port: int, log: Path) -> subprocess.Popen:
    """``mlflow models serve`` of the version, started (it loads the model while the flights are
    read: ``wait_answering``). Its JVM (the Spark pipeline's) maps the class-data archive, as the
    platform's JVMs do (``mlcycle.class_archive``; not with ``MLCYCLE_CLASS_ARCHIVE=0``): it starts
    sooner (the time it took is printed); what it answers, and how fast, is its own."""
    from mlcycle.class_archive import with_archive

    bin_dir = str(Path(sys.executable).parent)  # it starts uvicorn by name
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "JAVA_TOOL_OPTIONS": with_archive(os.environ.get("JAVA_TOOL_OPTIONS", "")),
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", model_uri, "-p", str(port),
             "-h", "127.0.0.1", "--env-manager", "local", "-w", "1"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip


def wait_answering(proc: subprocess.Popen, port: int, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"mlflow models serve exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                return
        except OSError:
            time.sleep(0.25)
    os.killpg(proc.pid, 15)
    raise SystemExit(f"mlflow models serve did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench_stack.add_arguments(parser)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=400, help="one-flight requests per measurement")
    parser.add_argument(
        "--clients",
        type=int,
        nargs="+",
        default=list(CLIENTS),
        help="concurrent clients of each latency figure",
    )
    parser.add_argument("--batches", type=int, default=10, help="batches of 1,000 per measurement")
    parser.add_argument(
        "--day", help="a day the stack has landed and built (default: the last day of its set-up week)"
    )
    args = parser.parse_args(argv)
    if args.requests < max(args.clients):
        parser.error(f"--requests {args.requests}: at least one request per client ({max(args.clients)})")

    bench_stack.ready(args)
    from mlcycle.devstack import stack

    env = stack.stack_env()
    model = "flights_air_time"
    version = bench_stack.champion_version(model)
    data_root = Path(env["MLCYCLE_DATA_ROOT"])
    # the stock server loads the version (a JVM, the Spark pipeline) while the flights are read
    port, log = _free_port(), data_root / "stock-serve.log"
    started = time.monotonic()
    proc = stock_server(env["MLFLOW_TRACKING_URI"], f"models:/{model}/{version}", port, log)
    try:
        return measure(args, env, data_root, version, (proc, port, log, started))
    finally:
        os.killpg(proc.pid, 15)
        if args.stop:
            stack.stop()


def measure(args, env: dict, data_root: Path, version: int, stock_started: tuple) -> int:
    """Both servers measured on the flights of the day (the stock one started: its process, port,
    log and when it was started); the table printed."""
    import pandas as pd

    proc, port, log, started = stock_started
    # by default the set-up's last day: its routes have history (the first day's have none, so every one of
    # its flights misses a feature)
    day = (
        args.day
        or (
            date.fromisoformat(bench_stack.SETUP_START) + timedelta(days=bench_stack.SETUP_DAYS - 1)
        ).isoformat()
    )
    landed = pd.read_csv(data_root / "landing" / "flights" / f"ds={day}" / "flights.csv", na_values=["NA"])
    features = pd.read_parquet(data_root / "features" / f"ds={day}")
    requests, rows = [], []
    by_key = features.set_index("flight_id")
    columns = [c for c in features.columns if c not in ("flight_id", "ds", "air_time", "arr_delay")]
    for r in landed.itertuples():
        hhmm = int(r.sched_dep_time)
        requests.append(
            {"carrier": r.carrier, "flight": int(r.flight), "tailnum": r.tailnum if isinstance(r.tailnum, str) else None,
             "origin": r.origin, "dest": r.dest, "sched_dep": f"{day}T{hhmm // 100:02d}:{hhmm % 100:02d}"}
        )  # fmt: skip
        key = f"{r.carrier}{int(r.flight)}-{r.origin}-{day.replace('-', '')}-{hhmm:04d}"
        row = by_key.loc[key, columns].to_dict()
        row = {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        if any(v is None for v in row.values()):
            # the stock server cannot take a one-row frame with a missing value (Spark infers no
            # type for it: 400); both servers are asked the flights it can answer
            requests.pop()
            continue
        rows.append(row)

    token = Path(env["MLCYCLE_SERVING_TOKEN_FILE"]).read_text().strip()
    ours = Target(
        "service",
        int(env["MLCYCLE_SERVING_URL"].rsplit(":", 1)[1]),
        "/v1/models/air_time/predict",
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        lambda flights: flights[0] if len(flights) == 1 else {"flights": flights},
    )
    stock = Target(
        "mlflow models serve", port, "/invocations", {"Content-Type": "application/json"},
        lambda flights: {"dataframe_records": flights},
    )  # fmt: skip
    inputs = {"service": requests, "mlflow models serve": rows}
    results: dict[tuple, list[float]] = {}
    latencies(ours, inputs[ours.name], 1, min(20, args.requests))  # warm each up
    wait_answering(proc, port, log)
    print(f"mlflow models serve answering {time.monotonic() - started:.1f} s after its start", flush=True)
    latencies(stock, inputs[stock.name], 1, min(20, args.requests))
    for round_ in range(args.rounds):
        order = (ours, stock) if round_ % 2 == 0 else (stock, ours)
        for target in order:
            flights = inputs[target.name]
            for clients in args.clients:
                times = latencies(target, flights, clients, args.requests)
                results.setdefault((target.name, clients, "p50"), []).append(percentile(times, 0.5))
                results.setdefault((target.name, clients, "p99"), []).append(percentile(times, 0.99))
            results.setdefault((target.name, "rows/s"), []).append(throughput(target, flights, args.batches))
        print(f"round {round_ + 1}/{args.rounds} done", flush=True)

    med = {k: statistics.median(v) for k, v in results.items()}
    print(
        f"\nair_time v{version}, {len(requests)} flights of {day} (of {len(landed)}: the ones without a missing"
        f" feature); {args.requests} one-flight requests per figure; medians of {args.rounds} interleaved rounds"
    )
    print(f"{'':28}{'service':>14}{'mlflow serve':>14}{'ratio':>8}")
    for clients in args.clients:
        for q in ("p50", "p99"):
            a, b = med[("service", clients, q)] * 1000, med[("mlflow models serve", clients, q)] * 1000
            print(f"{f'one flight, {clients} clients, {q}':28}{a:>11.2f} ms{b:>11.2f} ms{b / a:>7.1f}x")
    a, b = med[("service", "rows/s")], med[("mlflow models serve", "rows/s")]
    print(f"{'batches of 1,000: rows/s':28}{a:>14,.0f}{b:>14,.0f}{a / b:>7.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
