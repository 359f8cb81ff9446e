"""The embedded stack, started by the project's own launcher in a folder of its own, on ports of
its own, so a person's demo stack can stay up beside the tests."""

from __future__ import annotations

import os
import socket

import pytest


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
