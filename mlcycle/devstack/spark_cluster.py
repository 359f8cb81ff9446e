"""A Spark standalone cluster on this machine, from the installed PySpark: one master and some
workers, each its own JVM (``pyspark/bin/spark-class``), as on a real cluster.

The jobs reach it by the master URL alone (``spark://host:port``): set it as the host of the
Airflow connection ``spark_default`` (``MLCYCLE_SPARK_MASTER`` in the embedded stack) and nothing
else changes. The master's and workers' web UIs answer ``/json/``, which is how this module checks
that the workers are up and which executors ran on them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from mlcycle.class_archive import with_archive


class ClusterError(RuntimeError):
    """The cluster did not come up; the message says which part and where its log is."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def _json(url: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class StandaloneCluster:
    """``workers`` workers of ``cores`` cores and ``memory`` each, under ``home`` (logs, work
    dirs). Ports are free ones unless given."""

    home: Path
    workers: int = 2
    cores: int = 1
    memory: str = "1g"
    host: str = "127.0.0.1"
    port: int = 0
    webui_port: int = 0
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    worker_ui_ports: list[int] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.port}"

    @property
    def master_ui(self) -> str:
        return f"http://{self.host}:{self.webui_port}"

    def _spawn(self, name: str, *args: str) -> None:
        log = self.home / f"{name}.log"
        env = {
            **os.environ,
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOCAL_IP": self.host,
            "SPARK_NO_DAEMONIZE": "1",
            # the master's and workers' JVMs map their classes (mlcycle.class_archive)
            "SPARK_DAEMON_JAVA_OPTS": with_archive(os.environ.get("SPARK_DAEMON_JAVA_OPTS", "")),
        }
        with log.open("ab") as out:
            self._procs[name] = subprocess.Popen(
                [str(spark_home() / "bin" / "spark-class"), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def _wait(self, what: str, ready, log: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise ClusterError(
                        f"Spark {name} exited ({proc.returncode}); see {self.home / (name + '.log')}"
                    )
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise ClusterError(f"{what} not ready within {timeout:.0f} s; see {self.home / log}")

    def start(self, timeout: float = 90.0) -> StandaloneCluster:
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        self.webui_port = self.webui_port or _free_port()
        self._spawn(
            "master",
            "org.apache.spark.deploy.master.Master",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--webui-port",
            str(self.webui_port),
        )
        self._wait(
            "Spark master",
            lambda: _json(self.master_ui + "/json/")["status"] == "ALIVE",
            "master.log",
            timeout,
        )
        for i in range(self.workers):
            ui = _free_port()
            self.worker_ui_ports.append(ui)
            work_dir = self.home / f"worker-{i}"
            work_dir.mkdir(exist_ok=True)
            self._spawn(
                f"worker-{i}",
                "org.apache.spark.deploy.worker.Worker",
                self.master_url,
                "--host",
                self.host,
                "--cores",
                str(self.cores),
                "--memory",
                self.memory,
                "--webui-port",
                str(ui),
                "--work-dir",
                str(work_dir),
            )
        self._wait(
            f"{self.workers} Spark workers",
            lambda: len(self.alive_workers()) >= self.workers,
            "worker-0.log",
            timeout,
        )
        return self

    def alive_workers(self) -> list[dict]:
        return [w for w in _json(self.master_ui + "/json/").get("workers", []) if w.get("state") == "ALIVE"]

    def applications(self) -> list[dict]:
        """Every application the master has seen, running or completed (id, name, cores...)."""
        state = _json(self.master_ui + "/json/")
        return [*state.get("activeapps", []), *state.get("completedapps", [])]

    def executors_by_worker(self) -> dict[int, list[dict]]:
        """Per worker (by index), the executors it ran or runs: ``appid``, ``id``, ``cores``."""
        out = {}
        for i, ui in enumerate(self.worker_ui_ports):
            state = _json(f"http://{self.host}:{ui}/json/")
            out[i] = [*state.get("executors", []), *state.get("finishedexecutors", [])]
        return out

    def stop(self, timeout: float = 20.0) -> None:
        for name in sorted(self._procs, key=lambda n: n == "master"):  # workers first
            proc = self._procs[name]
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self._procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._procs.clear()

    def __enter__(self) -> StandaloneCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
