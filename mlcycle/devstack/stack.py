"""The embedded stack: Airflow (api-server, scheduler, dag-processor, triggerer; LocalExecutor on
SQLite), an MLflow tracking server (SQLite backend, local artifacts), and Spark: a long-lived
Spark Connect server in local mode (the ``spark_connect`` connection), on which the data, scoring
and monitoring jobs run without starting a JVM each, and ``spark-submit`` through the
``spark_default`` connection for the training job. All state lives under one folder
(``MLCYCLE_HOME``).

The same DAGs run on a cluster by changing the environment this module builds, not the code.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mlcycle.config import REPO_ROOT, settings, spark_conf, switched_on

# The embedded Airflow keeps its metadata in SQLite, where one writer at a time holds the database.
# Python's sqlite3 gives up after 5 s of waiting ("database is locked"), which a busy scheduler on
# two cores can exceed; the API then answers 500 to a person's trigger. Airflow imports these.
SQLITE_CONNECT_ARGS = {"timeout": 20}
SQLITE_CONNECT_ARGS_ASYNC = {"timeout": 20}

COMPONENTS = ("mlflow", "spark-connect", "api-server", "scheduler", "dag-processor", "triggerer", "serving")
CONNECT_SERVER = "org.apache.spark.sql.connect.service.SparkConnectServer"
# User name -> role of the simple auth manager. Every approver of a model of the catalog (its
# ``[sign_off] approvers``) is added as an "op"; "analyst" is an "op" who is not an approver (may
# run DAGs, may not sign off).
USERS = {"admin": "admin", "analyst": "op"}


class StackError(RuntimeError):
    """Something the person starting the stack has to fix; the message says what."""


@dataclass(frozen=True)
class Ports:
    airflow: int
    mlflow: int
    spark_connect: int
    serving: int


def ports() -> Ports:
    return Ports(
        airflow=int(os.environ.get("MLCYCLE_AIRFLOW_PORT", "8080")),
        mlflow=int(os.environ.get("MLCYCLE_MLFLOW_PORT", "5000")),
        spark_connect=int(os.environ.get("MLCYCLE_SPARK_CONNECT_PORT", "15002")),
        serving=int(os.environ.get("MLCYCLE_SERVING_PORT", "8790")),
    )


def spark_connect_enabled() -> bool:
    """The Spark Connect server runs unless ``MLCYCLE_SPARK_CONNECT=0`` (every job is then a
    ``spark-submit``, as without a ``spark_connect`` connection)."""
    return switched_on("MLCYCLE_SPARK_CONNECT")


def components() -> tuple[str, ...]:
    """The components this stack runs."""
    return tuple(n for n in COMPONENTS if n != "spark-connect" or spark_connect_enabled())


def _home() -> Path:
    return settings().home


def _bin_dir() -> Path:
    return Path(sys.executable).parent


def users() -> dict[str, str]:
    """Every login of the embedded Airflow and its role: ``USERS`` plus the approvers of every model
    of the catalog."""
    from mlcycle.specs import catalog

    out = dict(USERS)
    for model in catalog().models.values():
        for name in model.approvers:
            out.setdefault(name, "op")
    return out


def _passwords_file() -> Path:
    return _home() / "airflow" / "passwords.json"


def passwords() -> dict[str, str]:
    """The password of each login: ``MLCYCLE_PASSWORD_<USER>`` when set, else a random one made the
    first time and kept in ``<MLCYCLE_HOME>/airflow/passwords.json`` (git-ignored, mode 600), which
    is also the file Airflow's simple auth manager reads. None is ever taken from the repository."""
    path = _passwords_file()
    try:
        kept = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        kept = {}
    out = {}
    for user in users():
        from_env = os.environ.get(f"MLCYCLE_PASSWORD_{user.upper()}", "").strip()
        out[user] = from_env or kept.get(user) or secrets.token_urlsafe(12)
    if out != kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(json.dumps(out, indent=1))
    return out


def serving_token_file() -> Path:
    return _home() / "serving" / "token"


def serving_token() -> str:
    """The bearer token of the scoring service: ``MLCYCLE_SERVING_TOKEN`` when set, else a random
    one made the first time and kept in ``<MLCYCLE_HOME>/serving/token`` (git-ignored, mode 600)."""
    from_env = os.environ.get("MLCYCLE_SERVING_TOKEN", "").strip()
    path = serving_token_file()
    kept = path.read_text().strip() if path.exists() else ""
    token = from_env or kept or secrets.token_urlsafe(24)
    if token != kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(token)
    return token


def stack_env() -> dict[str, str]:
    """The environment of every component, and of anything that talks to them."""
    home = _home()
    p = ports()
    airflow_home = home / "airflow"
    secret_file = airflow_home / "jwt_secret"
    secret = secret_file.read_text().strip() if secret_file.exists() else ""
    env = dict(os.environ)
    env.update(
        {
            "PATH": f"{_bin_dir()}{os.pathsep}{env.get('PATH', '')}",
            "MLCYCLE_HOME": str(home),
            "MLCYCLE_DATA_ROOT": settings().data_root,
            "MLCYCLE_AIRFLOW_URL": f"http://127.0.0.1:{p.airflow}",
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{p.mlflow}",
            "MLCYCLE_SERVING_URL": f"http://127.0.0.1:{p.serving}",
            "MLCYCLE_SERVING_TOKEN_FILE": str(serving_token_file()),
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": "127.0.0.1",
            "AIRFLOW_HOME": str(airflow_home),
            # MLCYCLE_DAGS_FOLDER: another folder of DAG files, e.g. the project's beside others.
            "AIRFLOW__CORE__DAGS_FOLDER": os.environ.get("MLCYCLE_DAGS_FOLDER") or str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            # Airflow's LocalExecutor, safe for a sign-off answered at once (see mlcycle.orchestration.executor).
            # MLCYCLE_AIRFLOW_EXECUTOR=LocalExecutor runs Airflow's own, to see what it fixes.
            "AIRFLOW__CORE__EXECUTOR": os.environ.get("MLCYCLE_AIRFLOW_EXECUTOR")
            or "mlcycle.orchestration.executor.LocalExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            # A new DAG runs at once (a person's stack runs every model it finds); Airflow's own
            # setting in the environment keeps new DAGs paused instead.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": os.environ.get(
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in users().items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(_passwords_file()),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{p.airflow}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_db()}",
            # Writers wait up to 20 s for the database instead of SQLite's 5 s (see SQLITE_CONNECT_ARGS).
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "mlcycle.devstack.stack.SQLITE_CONNECT_ARGS",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": "mlcycle.devstack.stack.SQLITE_CONNECT_ARGS_ASYNC",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(p.airflow),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{p.airflow}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secret,
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            # How often an unchanged DAG file is parsed again (Airflow's own variable wins: the
            # end-to-end tests, whose DAG files never change, set it high and save the CPU).
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": os.environ.get(
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", "30"
            ),
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "30",
            # The scheduler looks for work every 0.2 s when idle (1 s by default): a task follows
            # the one before it sooner, at about 14 % of a core more while nothing runs (17 %
            # against 3 %, measured on the benchmark stack at rest).
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": os.environ.get(
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", "0.2"
            ),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs" / "airflow"),
            "GX_ANALYTICS_ENABLED": "False",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            # The MLflow server's job runner (seven worker processes, for its GenAI jobs) is not
            # used by the lifecycle; starting it costs about a minute of CPU on every start.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _commands(env: dict[str, str]) -> dict[str, list[str]]:
    home = _home()
    bin_dir = _bin_dir()
    p = ports()
    mlflow_dir = home / "mlflow"
    return {
        "mlflow": [
            str(bin_dir / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(p.mlflow),
            "--backend-store-uri",
            f"sqlite:///{mlflow_dir / 'mlflow.db'}",
            "--artifacts-destination",
            str(mlflow_dir / "artifacts"),
            "--workers",
            "1",
        ],
        # Spark's own launcher of the Connect server (what sbin/start-connect-server.sh runs),
        # with the jobs' defaults (MLCYCLE_SPARK_CONF overrides them, as for spark-submit).
        "spark-connect": [
            str(bin_dir / "spark-submit"),
            "--class",
            CONNECT_SERVER,
            "--name",
            "mlcycle-spark-connect",
            "--master",
            os.environ.get("MLCYCLE_SPARK_CONNECT_MASTER", "").strip() or "local[*]",
            "--conf",
            "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf",
            f"spark.connect.grpc.binding.port={p.spark_connect}",
            *(arg for key, value in spark_conf().items() for arg in ("--conf", f"{key}={value}")),
            "spark-internal",
        ],
        "api-server": [str(bin_dir / "airflow"), "api-server"],
        "scheduler": [str(bin_dir / "airflow"), "scheduler"],
        "dag-processor": [str(bin_dir / "airflow"), "dag-processor"],
        "triggerer": [str(bin_dir / "airflow"), "triggerer"],
        # the scoring service of every model's champion (mlcycle.serving.service)
        "serving": [
            sys.executable,
            "-m",
            "mlcycle.serving.service",
            "--host",
            "127.0.0.1",
            "--port",
            str(p.serving),
            "--interval",
            os.environ.get("MLCYCLE_SERVING_INTERVAL", "2"),
        ],
    }


def _pid_file(name: str) -> Path:
    return _home() / "run" / f"{name}.pid"


def _log_file(name: str) -> Path:
    return _home() / "logs" / f"{name}.log"


def _pid(name: str) -> int | None:
    path = _pid_file(name)
    if not path.exists():
        return None
    pid = int(path.read_text().strip() or 0)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, ValueError):
        return None
    if _is_zombie(pid):  # killed, but its parent (this process) has not reaped it yet
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return None
    return pid


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _port_busy(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def check_prerequisites() -> None:
    """Fail in one line, saying what to do, before anything starts."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise StackError(
            "Java not found: install a Java 17 runtime (e.g. apt-get install openjdk-17-jre-headless)."
        )
    try:
        subprocess.run(["java", "-version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise StackError(f"Java does not run ({exc}): install a Java 17 runtime.") from exc
    p = ports()
    wanted = [("Airflow", p.airflow, "MLCYCLE_AIRFLOW_PORT"), ("MLflow", p.mlflow, "MLCYCLE_MLFLOW_PORT")]
    if spark_connect_enabled():
        wanted.append(("the Spark Connect server", p.spark_connect, "MLCYCLE_SPARK_CONNECT_PORT"))
    wanted.append(("the scoring service", p.serving, "MLCYCLE_SERVING_PORT"))
    for what, port, var in wanted:
        if _port_busy(port):
            raise StackError(
                f"Port {port} for {what} is already in use: stop what uses it "
                f"(or 'make stop'), or set {var} to a free port."
            )


def _prepare_home() -> None:
    home = _home()
    airflow_home = home / "airflow"
    for sub in ("run", "logs", "mlflow/artifacts", "data"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    airflow_home.mkdir(parents=True, exist_ok=True)
    secret = airflow_home / "jwt_secret"
    if not secret.exists():
        secret.write_text(secrets.token_urlsafe(32))
    passwords()
    serving_token()


def _link_airflow_config() -> None:
    """``$AIRFLOW_HOME/config/airflow_local_settings.py`` is the project's (``deploy/airflow/config``):
    the scheduler preloads the tasks' libraries (``mlcycle.orchestration.preload``). A file of the user's own
    there is left as it is."""
    target = REPO_ROOT / "deploy" / "airflow" / "config" / "airflow_local_settings.py"
    link = _home() / "airflow" / "config" / "airflow_local_settings.py"
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and link.resolve() != target.resolve():
        link.unlink()
    if not link.exists() and not link.is_symlink():
        link.symlink_to(target)


def _healthy(name: str) -> bool:
    p = ports()
    urls = {
        "mlflow": f"http://127.0.0.1:{p.mlflow}/health",
        "api-server": f"http://127.0.0.1:{p.airflow}/api/v2/monitor/health",
    }
    if name == "spark-connect":
        return _pid(name) is not None and _port_busy(p.spark_connect)
    if name == "serving":  # answering, with or without a champion to serve yet
        return _pid(name) is not None and _port_busy(p.serving)
    url = urls.get(name)
    if url is None:
        return _pid(name) is not None
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status == 200
    except OSError:
        return False


def _wait_healthy(name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _pid(name) is None:
            tail = _log_file(name).read_text(errors="replace").splitlines()[-15:]
            raise StackError(f"{name} exited while starting; see {_log_file(name)}:\n" + "\n".join(tail))
        if _healthy(name):
            return
        time.sleep(0.5)
    raise StackError(f"{name} did not become healthy within {timeout:.0f} s; see {_log_file(name)}")


def _migrate(env: dict[str, str]) -> None:
    log = _log_file("airflow-db-migrate")
    with open(log, "w") as out:
        done = subprocess.run(
            [str(_bin_dir() / "airflow"), "db", "migrate"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        raise StackError(f"airflow db migrate failed; see {log}")
    _write_ahead_log(airflow_db())
    with open(log, "a") as out:
        subprocess.run(
            [
                sys.executable,
                "-c",
                _SETUP_DB,
                json.dumps(spark_connection()),
                json.dumps(connect_connection()),
                CONNECT_DESCRIPTION,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )


def airflow_db() -> Path:
    return _home() / "airflow" / "airflow.db"


def _write_ahead_log(db: Path) -> None:
    """Airflow's SQLite database in write-ahead-log mode (kept by the file): readers no longer hold
    off a writer's commit. In the default mode a request that reads in a transaction while another
    in the same api-server writes could hold both until the 20 s timeout, and answer 500 (seen when
    three tasks started at once beside an unpause)."""
    import sqlite3

    with sqlite3.connect(db, timeout=20) as connection:
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise StackError(f"{db}: SQLite refused write-ahead logging (journal mode {mode})")


def spark_connection() -> dict:
    """The ``spark_default`` connection the stack keeps in Airflow's database: the master of
    ``MLCYCLE_SPARK_MASTER`` when set (applied at every start), else what the database holds (a
    person may have pointed it at a cluster in the UI), else ``local[2]`` (``host`` None then)."""
    return {
        "conn_id": "spark_default",
        "conn_type": "spark",
        "host": os.environ.get("MLCYCLE_SPARK_MASTER", "").strip() or None,
        "extra": json.dumps({"deploy-mode": "client", "spark-binary": "spark-submit"}),
    }


CONNECT_DESCRIPTION = "The embedded stack's Spark Connect server (mlcycle stack)"


def connect_connection() -> dict | None:
    """The ``spark_connect`` connection to the stack's own Connect server, or None when it is
    turned off (``MLCYCLE_SPARK_CONNECT=0``)."""
    if not spark_connect_enabled():
        return None
    return {
        "conn_id": "spark_connect",
        "conn_type": "spark_connect",
        "host": "127.0.0.1",
        "port": ports().spark_connect,
        "description": CONNECT_DESCRIPTION,
    }


# Run once per start, after the migration, in one process (each ``airflow`` command costs seconds):
# the one-slot pool that serializes promotions (two training runs racing cannot leave two
# champions), and the ``spark_default`` and ``spark_connect`` connections, kept in the database
# rather than in the environment so that the Airflow UI or REST API can change them. The stack's
# own ``spark_connect`` follows its port at every start, and goes with MLCYCLE_SPARK_CONNECT=0;
# one a person made for another server is left alone.
_SETUP_DB = """
import json, sys
from airflow.models import Connection, Pool
from airflow.utils.session import create_session

wanted = json.loads(sys.argv[1])
with create_session() as session:
    Pool.create_or_update_pool("model_promotion", 1, "Serializes champion moves", False, session=session)
    conn = session.query(Connection).filter(Connection.conn_id == wanted["conn_id"]).one_or_none()
    if conn is None:
        session.add(Connection(
            conn_id=wanted["conn_id"], conn_type=wanted["conn_type"],
            host=wanted["host"] or "local[2]", extra=wanted["extra"],
        ))
        print("spark_default created:", wanted["host"] or "local[2]")
    elif wanted["host"] and conn.host != wanted["host"]:
        conn.host = wanted["host"]
        print("spark_default now points at", wanted["host"])
    else:
        print("spark_default kept:", conn.host)

    connect, stack_description = json.loads(sys.argv[2]), sys.argv[3]
    current = session.query(Connection).filter(Connection.conn_id == "spark_connect").one_or_none()
    stack_made = current is not None and current.description == stack_description
    if connect is None:
        if stack_made:
            session.delete(current)
            print("spark_connect removed: the stack's Spark Connect server is turned off")
    elif current is None:
        session.add(Connection(**connect))
        print("spark_connect created:", connect["host"], connect["port"])
    elif stack_made:
        current.host, current.port = connect["host"], connect["port"]
        print("spark_connect kept:", current.host, current.port)
    else:
        print("spark_connect kept (not the stack's):", current.host, current.port)
"""


def compile_bytecode(env: dict[str, str]) -> list[Path]:
    """The project's Python files (the platform's package, the jobs, the DAG files, the use cases'
    code) compiled to bytecode beside them, those whose bytecode is missing or older than the file.
    Where ``PYTHONDONTWRITEBYTECODE`` is set, no process writes it: without this, every parse of a
    DAG file by the dag-processor and every task would compile them again. A file changed later is
    compiled in memory by the process that imports it, as before."""
    import compileall

    import spark_jobs
    from mlcycle.specs import usecases_root

    folders = [
        Path(__file__).resolve().parents[1],  # mlcycle
        Path(spark_jobs.__file__).resolve().parent,
        Path(env["AIRFLOW__CORE__DAGS_FOLDER"]),
        usecases_root(),
    ]
    done = []
    for folder in folders:
        if folder.is_dir() and os.access(folder, os.W_OK):
            compileall.compile_dir(folder, quiet=2, workers=1)
            done.append(folder)
    return done


def start(wait: bool = True) -> None:
    """Start every component that is not running. After a crash (a killed scheduler, a stopped
    MLflow), only the missing components are started again; the others keep running."""
    wanted = components()
    missing = [name for name in wanted if _pid(name) is None]
    if not missing:
        return
    fresh = len(missing) == len(wanted)
    if fresh:
        check_prerequisites()
        _prepare_home()
    _link_airflow_config()
    env = stack_env()
    compile_bytecode(env)
    commands = _commands(env)

    def launch(name: str) -> None:
        with open(_log_file(name), "a") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mlcycle.devstack.supervise", name, "--", *commands[name]],
                env=env,
                cwd=str(_home()),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _pid_file(name).write_text(str(proc.pid))

    # MLflow and the Spark Connect server need nothing of Airflow's: they start while its database
    # is migrated. A failed migration stops them again, so the next start is a fresh one.
    early = [name for name in missing if name in ("mlflow", "spark-connect")]
    for name in early:
        launch(name)
    if fresh:
        try:
            _migrate(env)
        except BaseException:
            for name in early:
                kill(name)
            raise
    for name in missing:
        if name not in early:
            launch(name)
    if wait:
        for name in ("mlflow", "spark-connect", "api-server", "serving"):
            if name in missing:
                _wait_healthy(name, timeout=180)
        for name in ("scheduler", "dag-processor", "triggerer"):
            if name in missing and _pid(name) is None:
                raise StackError(f"{name} exited while starting; see {_log_file(name)}")


def kill(name: str) -> None:
    """Kill one component outright (SIGKILL to its whole process group, supervisor included), as a
    crash or an out-of-memory kill would; ``start()`` brings it back."""
    if name not in COMPONENTS:
        raise ValueError(f"unknown component {name!r}; one of {', '.join(COMPONENTS)}")
    pid = _pid(name)
    if pid is not None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _pid(name) is not None:
            time.sleep(0.2)
    _pid_file(name).unlink(missing_ok=True)


def stop(timeout: float = 30) -> list[str]:
    """Stop every component (the whole process group of each), politely, then firmly. All are
    asked at once, so stopping takes as long as the slowest, not the sum."""
    running = {name: pid for name in COMPONENTS if (pid := _pid(name)) is not None}
    for name in COMPONENTS:
        if name not in running:
            _pid_file(name).unlink(missing_ok=True)
    for pid in running.values():
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_pid(name) is not None for name in running):
        time.sleep(0.2)
    for name, pid in running.items():
        # the whole group, even when its first process has ended: a process it started and
        # left behind (the scheduler's executor workers, which ignore SIGTERM when the scheduler
        # is gone) would hold its memory for ever
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _pid_file(name).unlink(missing_ok=True)
    return [name for name in reversed(COMPONENTS) if name in running]


def status() -> dict[str, str]:
    """Each component: running and healthy, running, or stopped."""
    out = {}
    for name in COMPONENTS:
        pid = _pid(name)
        if pid is None and name not in components():
            continue
        if pid is None:
            out[name] = "stopped"
        else:
            out[name] = f"up (pid {pid})" + ("" if _healthy(name) else ", not answering yet")
    return out
