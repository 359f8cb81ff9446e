"""The launcher's checks and the environment it gives every component."""

from __future__ import annotations

import json
import socket

import pytest

from mlcycle.devstack import stack


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCYCLE_HOME", str(tmp_path))
    monkeypatch.delenv("MLCYCLE_DATA_ROOT", raising=False)
    return tmp_path


def test_a_busy_port_is_one_line_that_says_what_to_do(home, monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setenv("MLCYCLE_AIRFLOW_PORT", str(port))
        with pytest.raises(stack.StackError) as err:
            stack.check_prerequisites()
    message = str(err.value)
    assert "\n" not in message
    assert f"Port {port} for Airflow is already in use" in message
    assert "MLCYCLE_AIRFLOW_PORT" in message


def test_missing_java_is_one_line_that_says_what_to_do(home, monkeypatch):
    monkeypatch.setattr(stack.shutil, "which", lambda name: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(stack.StackError, match=r"^Java not found: install a Java 17 runtime"):
        stack.check_prerequisites()


def test_every_component_shares_one_home_and_reaches_spark_through_the_connection(home, monkeypatch):
    monkeypatch.setenv("MLCYCLE_AIRFLOW_PORT", "18080")
    monkeypatch.setenv("MLCYCLE_MLFLOW_PORT", "15000")
    monkeypatch.delenv("MLCYCLE_AIRFLOW_EXECUTOR", raising=False)
    env = stack.stack_env()
    assert env["AIRFLOW_HOME"] == str(home / "airflow")
    assert env["MLCYCLE_DATA_ROOT"] == str(home / "data")
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:15000"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert (
        env["AIRFLOW__CORE__EXECUTOR"] == "mlcycle.orchestration.executor.LocalExecutor"
    )  # see test_executor.py
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite:///" + str(home))
    assert "AIRFLOW_CONN_SPARK_DEFAULT" not in env  # in the database, where the UI can change it
    spark = stack.spark_connection()
    assert spark["host"] is None and json.loads(spark["extra"])["spark-binary"] == "spark-submit"
    monkeypatch.setenv("MLCYCLE_SPARK_MASTER", "spark://127.0.0.1:7077")
    assert stack.spark_connection()["host"] == "spark://127.0.0.1:7077"
    assert "approver:op" in env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]


def test_status_of_a_stack_never_started(home):
    assert stack.status() == {name: "stopped" for name in stack.COMPONENTS}


def test_passwords_are_made_once_kept_out_of_the_repository_and_env_wins(home, monkeypatch):
    monkeypatch.delenv("MLCYCLE_PASSWORD_ADMIN", raising=False)
    first = stack.passwords()
    assert set(first) == {"admin", "approver", "analyst", "approver2", "delays_approver"}
    assert all(len(pw) >= 12 and pw != user for user, pw in first.items())
    kept = home / "airflow" / "passwords.json"
    assert json.loads(kept.read_text()) == first
    assert kept.stat().st_mode & 0o077 == 0  # readable by its owner only
    assert stack.passwords() == first  # the same logins at every start
    monkeypatch.setenv("MLCYCLE_PASSWORD_ADMIN", "from-the-environment")
    assert stack.passwords()["admin"] == "from-the-environment"
    assert json.loads(kept.read_text())["admin"] == "from-the-environment"  # what Airflow reads
    assert stack.stack_env()["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(kept)


def test_the_default_home_and_its_passwords_are_ignored_by_git(monkeypatch):
    """With no MLCYCLE_HOME, the stack's state (the passwords among it) sits in the checkout, in a
    folder git ignores: nothing there can be committed by mistake."""
    import shutil
    import subprocess

    from mlcycle.config import REPO_ROOT

    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.fail("this test reads the checkout's .gitignore through git: run it in a git checkout")
    monkeypatch.delenv("MLCYCLE_HOME", raising=False)
    passwords_file = stack._passwords_file()
    assert passwords_file.is_relative_to(REPO_ROOT)
    relative = str(passwords_file.relative_to(REPO_ROOT))
    checked = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", relative], cwd=REPO_ROOT, capture_output=True
    )
    assert checked.returncode == 0, f"{relative} is not ignored by git"


def test_only_the_approvers_of_the_models_and_an_analyst_besides_the_admin(home, monkeypatch):
    """air_time's approvers and late_arrival's own (usecases/flights/models/*/model.toml)."""
    users = stack.stack_env()["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",")
    assert sorted(users) == sorted(
        ["admin:admin", "approver:op", "analyst:op", "approver2:op", "delays_approver:op"]
    )


def test_the_spark_connect_server_is_a_component_with_the_jobs_defaults_and_can_be_turned_off(
    home, monkeypatch
):
    monkeypatch.setenv("MLCYCLE_SPARK_CONNECT_PORT", "15333")
    monkeypatch.setenv("MLCYCLE_SPARK_CONF", "spark.sql.shuffle.partitions=8")
    monkeypatch.delenv("MLCYCLE_SPARK_CONNECT", raising=False)
    command = stack._commands(stack.stack_env())["spark-connect"]
    assert command[0].endswith("spark-submit") and command[-1] == "spark-internal"
    assert command[command.index("--class") + 1] == stack.CONNECT_SERVER
    assert "spark.connect.grpc.binding.port=15333" in command
    assert "spark.sql.shuffle.partitions=8" in command  # a cluster's overrides reach the server too
    # room for the classes of every job it runs (the features job of a day alone generates more than
    # Spark's 100): one day's code is reused by the next
    assert "spark.sql.codegen.cache.maxEntries=2000" in command
    assert "spark-connect" in stack.components()
    assert stack.connect_connection() == {
        "conn_id": "spark_connect",
        "conn_type": "spark_connect",
        "host": "127.0.0.1",
        "port": 15333,
        "description": stack.CONNECT_DESCRIPTION,
    }

    monkeypatch.setenv("MLCYCLE_SPARK_CONNECT", "0")
    assert "spark-connect" not in stack.components()
    assert stack.connect_connection() is None
    assert "spark-connect" not in stack.status()  # not started, not reported


def test_a_failed_migration_stops_what_started_beside_it_so_the_next_start_is_fresh(home, monkeypatch):
    """MLflow and the Spark Connect server start while Airflow's database is migrated; when the
    migration fails they are stopped again, and no component is left for a later start to keep."""
    import sys

    started = []
    monkeypatch.setattr(stack, "check_prerequisites", lambda: None)
    monkeypatch.setattr(
        stack,
        "_commands",
        lambda env: {n: [sys.executable, "-c", "import time; time.sleep(60)"] for n in stack.COMPONENTS},
    )

    def failing_migration(env):
        started.extend(n for n in stack.components() if stack._pid(n) is not None)
        raise stack.StackError("airflow db migrate failed")

    monkeypatch.setattr(stack, "_migrate", failing_migration)
    with pytest.raises(stack.StackError, match="migrate failed"):
        stack.start()
    assert sorted(started) == sorted(n for n in ("mlflow", "spark-connect") if n in stack.components())
    assert all(stack._pid(name) is None for name in stack.COMPONENTS)


def test_stop_leaves_no_process_a_component_started_behind(home, monkeypatch):
    """A component whose first process ends on SIGTERM but leaves a child that ignores it (as the
    scheduler's executor workers may): stopping the stack ends the child too."""
    import os
    import subprocess
    import sys
    import time

    child_pid = home / "child.pid"
    ignoring = (  # the child says it is there once it ignores SIGTERM
        "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"open({str(child_pid)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    )
    script = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {ignoring!r}]); time.sleep(120)"
    leader = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    pid_file = stack._pid_file("serving")
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(leader.pid))
    for _ in range(100):
        if child_pid.exists() and child_pid.read_text():
            break
        time.sleep(0.05)
    child = int(child_pid.read_text())

    assert stack.stop(timeout=5) == ["serving"]
    leader.wait(timeout=5)
    for _ in range(50):  # the child, reparented, is reaped by whoever adopted it
        if not os.path.exists(f"/proc/{child}") or stack._is_zombie(child):
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{child}") or stack._is_zombie(child)
