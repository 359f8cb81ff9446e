"""Fixtures shared by every test tier."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path

import pytest
import short_jvm

from mlcycle.config import CODEGEN_CACHE

# py4j says goodbye at interpreter exit, after pytest has closed the streams it logs to.
logging.getLogger("py4j").setLevel(logging.WARNING)


# Test files that share a session fixture's work (the integration tier's real day): under
# ``--dist loadfile`` (``make test``) they go to the same worker, which builds it once.
TOGETHER = {
    "tests/integration/test_on_spark_connect.py": "tests/integration/test_data_path.py",
    "tests/integration/test_bench_smoke.py": "tests/integration/test_data_path.py",
}


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Together(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return TOGETHER.get(scope, scope)

    return Together(config, log)


# A benchmark's smoke run (test_bench_smoke.py, test_bench_scale_smoke.py,
# test_benchmarks_on_the_stack.py) records its own wall time under this name; the end of a test run
# sums them, so what the smoke runs cost is in every run's output.
SMOKE_SECONDS = "benchmark smoke run seconds"


class MachineLock:
    """A benchmark is timed with nothing else running, and so is its smoke run: under ``pytest -n``
    (``make test``'s first tier) each test of a worker holds the machine shared, and a smoke run
    holds it alone, the other worker waiting between two tests until it ends. A second lock lets
    no test start while a smoke run waits for the tests running to end (no smoke run waits for
    ever behind a stream of them). Without xdist (one test at a time) it does nothing."""

    def __init__(self):
        self.files = None
        if os.environ.get("PYTEST_XDIST_WORKER"):  # the workers are children of the run's controller
            self.files = {k: open(path, "a+") for k, path in self.paths(os.getppid()).items()}  # noqa: SIM115

    @staticmethod
    def paths(controller: int) -> dict[str, Path]:
        """The run's two lock files, named by its controller's pid."""
        import tempfile

        return {
            k: Path(tempfile.gettempdir()) / f"mlcycle-tests-{controller}.{k}.lock"
            for k in ("gate", "machine")
        }

    def _flock(self, name: str, how: int) -> None:
        import fcntl

        fcntl.flock(self.files[name], how)

    @contextlib.contextmanager
    def shared(self):
        if self.files is None:
            yield
            return
        import fcntl

        self._flock("gate", fcntl.LOCK_SH)  # no smoke run is waiting
        self._flock("machine", fcntl.LOCK_SH)
        self._flock("gate", fcntl.LOCK_UN)
        try:
            yield
        finally:
            self._flock("machine", fcntl.LOCK_UN)

    @contextlib.contextmanager
    def alone(self):
        """Inside ``shared`` (the test's own hold is let go while it waits, and taken back)."""
        if self.files is None:
            yield
            return
        import fcntl

        self._flock("machine", fcntl.LOCK_UN)
        self._flock("gate", fcntl.LOCK_EX)
        self._flock("machine", fcntl.LOCK_EX)
        self._flock("gate", fcntl.LOCK_UN)
        try:
            yield
        finally:
            self._flock("machine", fcntl.LOCK_SH)  # a downgrade: no one else got in between


MACHINE = MachineLock()


def pytest_unconfigure(config):
    """The run's lock files go with it (the controller's end, once its workers have ended)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        for path in MachineLock.paths(os.getpid()).values():
            path.unlink(missing_ok=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    with MACHINE.shared():  # the test's set-up (a session fixture it is the first to ask for), call, teardown
        return (yield)


@pytest.fixture
def smoke_run(record_property):
    """``with smoke_run(): ...`` around a benchmark's smoke run: it runs with the machine to itself
    (``MachineLock``), and its wall time is recorded."""

    @contextlib.contextmanager
    def timed():
        with MACHINE.alone():
            began = time.monotonic()
            yield
            record_property(SMOKE_SECONDS, round(time.monotonic() - began, 1))

    return timed


@pytest.fixture
def smoke_seconds(record_property):
    """``smoke_seconds(s)``: a smoke run timed elsewhere (in a fixture shared by a module's tests)."""
    return lambda seconds: record_property(SMOKE_SECONDS, round(seconds, 1))


def pytest_terminal_summary(terminalreporter):
    runs = [
        (report.nodeid.rsplit("::", 1)[-1], value)
        for report in terminalreporter.stats.get("passed", [])
        for key, value in report.user_properties
        if key == SMOKE_SECONDS
    ]
    if runs:
        each = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in sorted(runs))
        total = sum(seconds for _, seconds in runs)
        terminalreporter.write_line(f"benchmark smoke runs: {len(runs)}, {total:.1f} s in all ({each})")


@pytest.fixture(scope="session")
def spark():
    """One small local session for the whole run: Spark code is tested on frames built in the
    test, with the session settings the jobs use (UTC, dynamic partition overwrite)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("mlcycle-tests")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.extraJavaOptions", short_jvm.OPTIONS)
        .config(map=CODEGEN_CACHE)  # as the jobs' sessions (one test's classes reused by the next)
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def usecases_copy():
    """``usecases_copy(where, registered, extra_models)`` (see ``_usecases_copy``)."""
    return _usecases_copy


def _usecases_copy(where, registered: dict[str, str] | None = None, extra_models=()):
    """A copy of the repository's use case folders under ``where`` (the suites they point at
    reached through a link to ``expectations/``), for ``MLCYCLE_USECASES``: models named in
    ``registered`` register under the given names (tests sharing one MLflow server keep apart),
    and each folder of ``extra_models`` becomes one more model of the flights use case."""
    import re
    import shutil
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    where = Path(where)
    root = where / "usecases"
    shutil.copytree(repo / "usecases", root)
    (where / "expectations").symlink_to(repo / "expectations", target_is_directory=True)
    for model, name in (registered or {}).items():
        spec = root / "flights" / "models" / model / "model.toml"
        text = re.sub(r'(?m)^registered_name = ".*"$', f'registered_name = "{name}"', spec.read_text())
        spec.write_text(text)
    for folder in extra_models:
        shutil.copytree(folder, root / "flights" / "models" / Path(folder).name)
    return root
