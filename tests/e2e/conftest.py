"""The embedded stack, started by the project's own launcher in a folder of its own, on ports of
its own, so a person's demo stack can stay up beside the tests."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest
import short_jvm

_FAILED = pytest.StashKey[bool]()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A model from a folder of the tests, added to the stack's catalog and nothing else.
THIRD_MODEL = Path(__file__).parent / "models" / "arrival_delay"
REPO = Path(__file__).resolve().parents[2]


# The benchmarks' no-op twins of the day's DAGs (bench/twin_dags), beside the project's DAGs: the
# benchmarks of bench/ run on this stack at their smallest size (test_benchmarks_on_the_stack.py).
TWIN_DAGS = REPO / "bench" / "twin_dags" / "flights_twins.py"
# The flights use case ends early on this stack, so that a month run of the backfill benchmark
# (February) takes two days; the tests use days of January.
LAST_DAY = "2013-02-02"


def _dags_folder(where: Path) -> Path:
    where.mkdir()
    for source in [*sorted((REPO / "dags").glob("*.py")), TWIN_DAGS]:
        (where / source.name).symlink_to(source)
    return where


def _catalog(where: Path, usecases_copy) -> Path:
    # the repository's use cases and models, and the third model's folder beside them
    root = usecases_copy(where, extra_models=[THIRD_MODEL])
    spec = root / "flights" / "usecase.toml"
    text, found = re.subn(r'(?m)^last_day = ".*"$', f'last_day = "{LAST_DAY}"', spec.read_text())
    assert found == 1, spec
    spec.write_text(text)
    return root


@pytest.fixture(scope="session")
def stack_home(tmp_path_factory, usecases_copy):
    home = tmp_path_factory.mktemp("stack")
    saved = dict(os.environ)
    os.environ.update(
        {
            "MLCYCLE_HOME": str(home),
            "MLCYCLE_USECASES": str(_catalog(home / "catalog", usecases_copy)),
            "MLCYCLE_DAGS_FOLDER": str(_dags_folder(home / "dags")),
            "MLCYCLE_AIRFLOW_PORT": str(_free_port()),
            "MLCYCLE_MLFLOW_PORT": str(_free_port()),
            "MLCYCLE_SPARK_CONNECT_PORT": str(_free_port()),
            "MLCYCLE_SERVING_PORT": str(_free_port()),
            # The faults these tests cause on purpose are retried after 2 s instead of 30 s, and a
            # training is tuned on one small candidate unless a test asks for the full grid: the
            # tests are about the lifecycle around the model, not its quality.
            "MLCYCLE_RETRY_DELAY_SECONDS": "2",
            "MLCYCLE_TRAINING_GRID": "smallest",
            # A cluster's executors with the tests' JVM options (see short_jvm); the Connect server,
            # which runs most of the tier's Spark work for its whole length, with the JVM's own.
            "MLCYCLE_SPARK_CONF": f"spark.executor.extraJavaOptions={short_jvm.OPTIONS}",
            # The DAG files do not change while the tests run: parsed once, not every 30 s.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
            # New DAGs wait paused: the tests unpause what they run (``dags``, a test's own model,
            # the benchmarks' twins), so the other models' runs do not share the two cores.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        }
    )
    os.environ.pop("MLCYCLE_DATA_ROOT", None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield home
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def stack(stack_home):
    from mlcycle.devstack import stack as launcher

    launcher.start()
    try:
        yield launcher.stack_env()
    finally:
        # the stack is thrown away: a component still busy at the end is not given the 30 s a
        # user's stop gives it to finish (the tier's teardown took the whole 30 s in half the runs)
        launcher.stop(timeout=5)


def _login(stack, user: str):
    from mlcycle.devstack import stack as launcher
    from mlcycle.orchestration.client import AirflowClient

    # Two looks a second while waiting: a run that ends is seen at once, at a cost of a small read.
    return AirflowClient(stack["MLCYCLE_AIRFLOW_URL"], user, launcher.passwords()[user], poll=0.5)


@pytest.fixture(scope="session")
def admin(stack):
    return _login(stack, "admin")


@pytest.fixture(scope="session")
def approver(stack):
    return _login(stack, "approver")


@pytest.fixture(scope="session")
def approver2(stack):
    """A second configured approver: two people may answer the same sign-off."""
    return _login(stack, "approver2")


@pytest.fixture(scope="session")
def analyst(stack):
    """An "op" user who may run DAGs but is not among the approvers."""
    return _login(stack, "analyst")


def pytest_collection_modifyitems(session, config, items):
    """The benchmarks' smoke runs last: the stack has a champion by then (the tests before train
    and approve several), so their set-up trains none, and they time a stack in the state a
    long-lived one is in, its Spark Connect server having run the tier's jobs, not its first ones."""
    last = [item for item in items if item.path.name == "test_benchmarks_on_the_stack.py"]
    items[:] = [item for item in items if item not in last] + last


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture(autouse=True)
def _a_failed_test_leaves_no_run_behind(request):
    """The end-to-end tests share one stack. A test that fails midway may leave a training run
    parked at its sign-off, which would hold every later training (one active run at a time) and
    fail the tests after it for no fault of theirs. After a failure, the unfinished runs are
    stopped, so each later test still shows its own outcome."""
    admin = request.getfixturevalue("admin") if "stack" in request.fixturenames else None
    yield
    if admin is not None and request.node.stash.get(_FAILED, False):
        stopped = admin.stop_unfinished()
        if stopped:
            print(f"after the failure, stopped the unfinished runs: {stopped}")


# The state the tests start from. Each test asks for what it needs; a fixture makes it when the
# stack does not have it yet, so the files pass in any order and alone.


@pytest.fixture(scope="session")
def dags(admin):
    """Every DAG parsed; the data DAG and air_time's unpaused (another model's are unpaused by the
    test about it: their runs would share the two cores with every other test)."""
    from mlcycle.devstack.cli import all_dags

    everything = all_dags()
    admin.wait_for_dags(everything)
    for dag_id in everything:
        if dag_id == "flights_data" or dag_id.startswith("air_time_"):
            admin.unpause(dag_id)
    return everything


@pytest.fixture(scope="session")
def data_days(stack, admin, dags) -> list[dict]:
    """The first days of 2013 landed, gated and built through Airflow's own backfill: its runs."""
    from stack_state import DAYS, FIRST_DAY

    from mlcycle.devstack.cli import run_data_window

    return run_data_window(admin, FIRST_DAY, DAYS)


@pytest.fixture
def champion(stack, admin, approver, data_days) -> int:
    """The champion of the moment; when there is none, one is trained and approved."""
    from stack_state import champion as champion_now
    from stack_state import train_and_answer

    if champion_now(stack) is None:
        train_and_answer(admin, approver, "Approve", comment="a champion to start from")
    version = champion_now(stack)
    assert version is not None
    return version


@pytest.fixture
def former_champion(stack, admin, approver, champion) -> int:
    """A version that served as champion before the current one and is not archived: what a
    rollback can bring back. When there is none, another training is approved."""
    from stack_state import former_champions, train_and_answer

    if not former_champions(stack):
        train_and_answer(admin, approver, "Approve", comment="a second champion")
    return former_champions(stack)[-1]


@pytest.fixture
def paused(admin):
    """Pause DAGs a test does not need (scoring, monitoring: started by every promotion), so the
    two cores go to what the test is about; they are unpaused afterwards and catch up."""
    held: list[str] = []

    def pause(*dag_ids: str) -> None:
        for dag_id in dag_ids:
            admin.pause(dag_id)
            held.append(dag_id)

    yield pause
    for dag_id in held:
        admin.unpause(dag_id)
