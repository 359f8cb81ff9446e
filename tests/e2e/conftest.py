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
            "MLCYCLE_APPROVERS": "approver",
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


@pytest.fixture(scope="session")
def admin(stack):
    from mlcycle.airflow_api import AirflowClient

    return AirflowClient(stack["MLCYCLE_AIRFLOW_URL"], "admin", "admin")


@pytest.fixture(scope="session")
def approver(stack):
    from mlcycle.airflow_api import AirflowClient

    return AirflowClient(stack["MLCYCLE_AIRFLOW_URL"], "approver", "approver")
