"""The embedded stack, started by the project's own launcher in a folder of its own, on ports of
its own, so a person's demo stack can stay up beside the tests."""

from __future__ import annotations

import os
import socket

import pytest

_FAILED = pytest.StashKey[bool]()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def stack_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("stack")
    saved = dict(os.environ)
    os.environ.update(
        {
            "MLCYCLE_HOME": str(home),
            "MLCYCLE_AIRFLOW_PORT": str(_free_port()),
            "MLCYCLE_MLFLOW_PORT": str(_free_port()),
            "MLCYCLE_SPARK_CONNECT_PORT": str(_free_port()),
            "MLCYCLE_APPROVERS": "approver,approver2",
        }
    )
    os.environ.pop("MLCYCLE_DATA_ROOT", None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield home
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def stack(stack_home):
    from mlcycle import stack as launcher

    launcher.start()
    try:
        yield launcher.stack_env()
    finally:
        launcher.stop()


def _login(stack, user: str):
    from mlcycle import stack as launcher
    from mlcycle.airflow_api import AirflowClient

    return AirflowClient(stack["MLCYCLE_AIRFLOW_URL"], user, launcher.passwords()[user])


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
