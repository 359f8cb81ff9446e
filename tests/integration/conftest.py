"""Services the integration tier runs for real, each on a free local port: an MLflow tracking
server, and a Spark Connect server started as the embedded stack starts it; and one real day
built through the data path's entry points on the classic session, which the data path's tests
check and the Spark Connect ones compare with. (The ``spark`` fixture comes from
``tests/conftest.py``.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import short_jvm

from mlcycle.config import CODEGEN_CACHE

VENV_BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# How long a server may take to start: generous, for a machine busy with other work.
START_TIMEOUT = 300.0


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"mlflow server not healthy after {timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """Tracking URI of a real MLflow server (SQLite backend, proxied local artifacts)."""
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(VENV_BIN / "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{root}/mlflow.db",
                "--artifacts-destination",
                str(root / "artifacts"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MLFLOW_TRACKING_URI": "", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            # Its workers share the group, stopped together below; a group, not a session: the
            # server stays in the session of the tests, with its scheduling priority.
            process_group=0,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a server started in a process group of its own (its children with it), politely, then
    not."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def connect_url(tmp_path_factory):
    """The ``sc://`` address of a Spark Connect server started the way the stack starts it."""
    from mlcycle.devstack.stack import CONNECT_SERVER

    port = _free_port()
    log = tmp_path_factory.mktemp("connect") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(VENV_BIN / "spark-submit"),
                "--class",
                CONNECT_SERVER,
                "--master",
                "local[2]",
                "--conf",
                "spark.connect.grpc.binding.address=127.0.0.1",
                "--conf",
                f"spark.connect.grpc.binding.port={port}",
                "--conf",
                "spark.sql.shuffle.partitions=2",
                "--conf",
                "spark.ui.enabled=false",
                *(arg for key, value in CODEGEN_CACHE.items() for arg in ("--conf", f"{key}={value}")),
                "--conf",
                f"spark.driver.extraJavaOptions={short_jvm.OPTIONS}",
                "spark-internal",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable},
            process_group=0,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"Connect server exited:\n{log.read_text()[-3000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Connect server not listening after {START_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield f"sc://127.0.0.1:{port}"
    finally:
        _stop(proc)


REAL_DAY = "2013-01-02"


@dataclass
class BuiltDay:
    ds: str
    root: Path
    validate_code: int
    validate_output: str
    features_code: int
    features_output: str


@pytest.fixture(scope="session")
def real_day(tmp_path_factory, spark) -> BuiltDay:
    """A real day landed, gated and built by the entry points the DAG runs (each job's ``main``,
    in-process on the test session), with what each printed. Built once: the data path's tests
    check it, and the Spark Connect tests compare what the Connect server writes with it."""
    import contextlib
    import io

    from spark_jobs import features as build_features
    from spark_jobs import quality as validate_raw
    from spark_jobs.flights.replay import land_day, load_reference

    root = tmp_path_factory.mktemp("real_day")
    load_reference(str(root))
    land_day(str(root), REAL_DAY)
    done = []
    for job in (validate_raw, build_features):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = job.main(["--ds", REAL_DAY, "--data-root", str(root)])
        done += [code, out.getvalue()]
    return BuiltDay(REAL_DAY, root, *done)
