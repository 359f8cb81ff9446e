"""The embedded stack a benchmark runs on: its own folder and ports, the project's DAGs beside
their no-op twins (``bench/twin_dags``), and a champion to score with. Started by the project's
own launcher, as ``make demo`` starts it; kept up between benchmarks unless ``--stop``. With
``--stack-from-env`` a benchmark runs on a stack that is already up instead: the one the
environment names (``MLCYCLE_HOME``, the ``MLCYCLE_*_PORT`` settings, a DAGs folder holding the
twins), with a champion already: the DAGs a benchmark runs are unpaused, the training DAG is
paused while it runs and unpaused again after if it was, the other DAGs stay as they are."""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TWINS = ["twin_data", "twin_scoring", "twin_monitoring"]
# The benchmarks follow one model's day: the data DAG, then air_time's scoring and monitoring (the
# other models' DAGs stay paused).
MODEL = "air_time"
TRAINING = f"{MODEL}_training"
DAY_CHAIN = {"real": ("flights_data", f"{MODEL}_scoring", f"{MODEL}_monitoring"), "twin": tuple(TWINS)}
SETUP_START, SETUP_DAYS = "2013-01-01", 7
# What a benchmark waits for before it measures: the DAGs it runs, with nothing running.
QUIET = ["flights_data", "flights_data_by_month", *DAY_CHAIN["real"][1:], *TWINS]


def add_arguments(parser) -> None:
    """``--home``, ``--stop`` and ``--stack-from-env``, the same for every benchmark on the stack."""
    parser.add_argument("--home", default=str(REPO / ".mlcycle-bench"), help="the stack's folder")
    parser.add_argument("--stop", action="store_true", help="stop the stack at the end")
    parser.add_argument(
        "--stack-from-env",
        action="store_true",
        help="run on the stack the environment names (MLCYCLE_HOME, MLCYCLE_*_PORT), already up, "
        "its DAGs folder holding bench/twin_dags/flights_twins.py",
    )


def ready(args):
    """The benchmark's stack up (or the environment's, with ``--stack-from-env``: ``args.home``
    becomes its folder), with a champion and no training starting; the admin's client."""
    if args.stack_from_env:
        if not os.environ.get("MLCYCLE_HOME"):
            raise SystemExit("--stack-from-env: MLCYCLE_HOME names no stack")
        args.home = os.environ["MLCYCLE_HOME"]
    else:
        use(args.home)
    up(existing=args.stack_from_env)
    hold_training(restore=args.stack_from_env)
    admin = client()
    quiet(admin)
    return admin


def quiet(admin, timeout: float = 1800) -> float:
    """Until the DAGs the benchmarks run have nothing queued or running (a champion just
    approved rescores and monitors every day before it, for minutes on a stack with a month of
    days): a figure taken beside that work measures the work. Returns the seconds waited."""
    began = time.monotonic()
    admin.wait_until_idle(QUIET, timeout=timeout)
    waited = time.monotonic() - began
    if waited >= 1:
        print(f"waited {waited:.0f} s for the stack's runs to end before measuring", flush=True)
    return waited


def use(
    home: str,
    airflow_port: int = 18280,
    mlflow_port: int = 15200,
    connect_port: int = 15202,
    serving_port: int = 18790,
) -> None:
    """Point the launcher at the benchmark's stack (call before anything reads the settings)."""
    home_path = Path(home).resolve()
    dags = home_path / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    for source in [*sorted((REPO / "dags").glob("*.py")), REPO / "bench" / "twin_dags" / "flights_twins.py"]:
        link = dags / source.name
        if not link.is_symlink():
            link.symlink_to(source)
    os.environ.update(
        {
            "MLCYCLE_HOME": str(home_path),
            "MLCYCLE_DAGS_FOLDER": str(dags),
            "MLCYCLE_AIRFLOW_PORT": str(airflow_port),
            "MLCYCLE_MLFLOW_PORT": str(mlflow_port),
            "MLCYCLE_SPARK_CONNECT_PORT": str(connect_port),
            "MLCYCLE_SERVING_PORT": str(serving_port),
        }
    )
    for name in ("MLCYCLE_DATA_ROOT", "MLFLOW_TRACKING_URI", "MLCYCLE_AIRFLOW_URL"):
        os.environ.pop(name, None)


def client(user: str = "admin"):
    from mlcycle.devstack import stack
    from mlcycle.orchestration.client import AirflowClient

    # the figures come from the scheduler's timestamps: a quick look only ends the wait sooner
    return AirflowClient(stack.stack_env()["MLCYCLE_AIRFLOW_URL"], user, stack.passwords()[user], poll=0.5)


def up(existing: bool = False) -> None:
    """Start what is not running, wait for every DAG, unpause them; make a champion if none. An
    ``existing`` stack must be running, its DAGs folder holding the twins."""
    from mlcycle.config import settings
    from mlcycle.devstack import stack
    from mlcycle.devstack.cli import all_dags, run_data_window
    from mlcycle.specs import find_model

    DAGS = [d for d in all_dags() if d.startswith("flights_data") or d.startswith(f"{MODEL}_")]

    t0 = time.monotonic()
    if existing:
        down = [name for name, state in stack.status().items() if not state.startswith("up")]
        if down:
            raise SystemExit(f"--stack-from-env: the stack of {os.environ['MLCYCLE_HOME']} is not up: {down}")
    elif stack.status().get("scheduler", "stopped") == "stopped":
        _switches_file().unlink(missing_ok=True)  # a scheduler started now has the environment's switches
    stack.start()
    admin = client()
    if existing:
        known = {d["dag_id"] for d in admin.request("GET", "dags", params={"limit": 1000})["dags"]}
        if not set(TWINS) <= known:
            raise SystemExit(
                "--stack-from-env: the stack has no no-op twins: add bench/twin_dags/flights_twins.py "
                "to its DAGs folder (MLCYCLE_DAGS_FOLDER)"
            )
    admin.wait_for_dags(DAGS + TWINS)
    # on an existing stack, only the DAGs the benchmarks run: the others stay as they are
    runs = [d for d in DAGS if d.startswith("flights_data") or d in DAY_CHAIN["real"]] if existing else DAGS
    for dag_id in runs + TWINS:
        admin.unpause(dag_id)
    print(f"stack up in {time.monotonic() - t0:.0f} s", flush=True)
    cfg = settings().for_model(find_model(MODEL))
    if champion_version(cfg.model_name) is not None:
        return
    if existing:
        raise SystemExit(
            f"--stack-from-env: the stack has no champion of {cfg.model_name}: approve one first"
        )
    print(f"set-up: {SETUP_DAYS} days of data from {SETUP_START}, a training, its approval", flush=True)
    run_data_window(admin, SETUP_START, SETUP_DAYS)
    train_end = (date.fromisoformat(SETUP_START) + timedelta(days=SETUP_DAYS - 2)).isoformat()
    run_id = admin.trigger(
        TRAINING, conf={"train_start": SETUP_START, "train_end": train_end, "holdout_days": 2}
    )
    client("approver").respond(TRAINING, run_id, "sign_off", "Approve", comment="benchmark")
    if admin.wait_for_run(TRAINING, run_id) != "success":
        raise SystemExit(f"the set-up training {run_id} failed")
    admin.wait_until_idle(list(DAY_CHAIN["real"][1:]), timeout=1200)
    print(f"set-up done in {time.monotonic() - t0:.0f} s", flush=True)


# The switches of the tasks' environment a benchmark sets by restarting the scheduler (its task
# processes inherit its environment): the scheduler's preload (``mlcycle.orchestration.preload``)
# and the daily gates' one pass (``mlcycle.quality.by_day.gate_day``).
SWITCHES = {
    "preload": "MLCYCLE_PRELOAD",
    "one_pass": "MLCYCLE_ONE_PASS_GATES",
    "side_by_side": "MLCYCLE_SIDE_BY_SIDE",
}


def _switches_file() -> Path:
    return Path(os.environ["MLCYCLE_HOME"]) / "bench-scheduler-switches.json"


def scheduler_switches() -> dict[str, bool]:
    """The switches of the running scheduler: as ``restart_scheduler`` last started it, else as
    the environment says (it started with it)."""
    from mlcycle.config import switched_on

    kept = json.loads(_switches_file().read_text()) if _switches_file().exists() else {}
    return {name: kept.get(name, switched_on(var, os.environ)) for name, var in SWITCHES.items()}


def restart_scheduler(**switches: bool) -> None:
    """The scheduler again, with the given switches (``preload``, ``one_pass``, ``side_by_side``) and the others as
    they were."""
    from mlcycle.devstack import stack

    wanted = {**scheduler_switches(), **switches}
    for name, on in wanted.items():
        os.environ[SWITCHES[name]] = "1" if on else "0"
    _switches_file().write_text(json.dumps(wanted))
    stack.kill("scheduler")
    stack.start()
    admin = client()
    deadline = time.monotonic() + 120
    started = datetime.now().astimezone().timestamp()
    while time.monotonic() < deadline:
        beat = admin.request("GET", "monitor/health")["scheduler"].get("latest_scheduler_heartbeat")
        if beat and ts(beat) > started:
            return
        time.sleep(1)
    raise SystemExit("the scheduler did not come back within 120 s")


def use_spark_connect(on: bool) -> None:
    """Jobs on the stack's Spark Connect server (its ``spark_connect`` connection present), or
    every job through spark-submit (the connection removed), as a person would in the UI."""
    from mlcycle.devstack import stack

    admin = client()
    present = any(
        c["connection_id"] == "spark_connect"
        for c in admin.request("GET", "connections", params={"limit": 100})["connections"]
    )
    if on and not present:
        wanted = stack.connect_connection()
        if wanted is None:
            raise SystemExit("the stack runs no Spark Connect server (MLCYCLE_SPARK_CONNECT=0)")
        body = {"connection_id": wanted.pop("conn_id"), **wanted}
        admin.request("POST", "connections", json=body)
    elif not on and present:
        admin.request("DELETE", "connections/spark_connect")


class SecondConnectServer:
    """A Spark Connect server beside the stack's, started as the stack starts its own but with
    ``conf`` over the jobs' defaults (settings a running server cannot change), on a port of its
    own; ``point(True)`` sends the jobs to it (the ``spark_connect`` connection's port, changed as a
    person would in the UI), ``point(False)`` back to the stack's."""

    def __init__(self, conf: dict[str, str]):
        import socket
        import subprocess

        from mlcycle.devstack import stack

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = stack.stack_env()
        command = stack._commands(env)["spark-connect"]
        command = [
            f"spark.connect.grpc.binding.port={self.port}" if a.startswith("spark.connect.grpc.binding.port=") else a
            for a in command
        ]
        extra = [arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")]
        command = [*command[:-1], *extra, command[-1]]  # the last --conf of a key wins
        self.log = Path(env["MLCYCLE_HOME"]) / "logs" / "bench-second-connect.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 180
        while not _answers(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"the second Spark Connect server did not start: {self.log}")
            time.sleep(0.5)

    def point(self, here: bool) -> None:
        from mlcycle.devstack import stack

        wanted = stack.connect_connection()
        body = {"connection_id": wanted.pop("conn_id"), **wanted}
        if here:
            body["port"] = self.port
        client().request("PATCH", "connections/spark_connect", json=body)

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except Exception:
                os.killpg(self.proc.pid, signal.SIGKILL)


def _answers(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def hold_training(restore: bool = False) -> None:
    """No training starts during a measurement (monitoring may ask for one): pause its DAG; with
    ``restore``, unpause it again at the end if it was unpaused."""
    admin = client()
    was_paused = admin.request("GET", f"dags/{TRAINING}")["is_paused"]
    admin.pause(TRAINING)
    if restore and not was_paused:
        atexit.register(lambda: client().unpause(TRAINING))


def champion_version(model_name: str) -> int | None:
    """The stack's champion of ``model_name`` (its ``champion`` alias), asked of the tracking
    server's REST API: the MLflow client takes about 2 s to import, for one question."""
    import requests

    from mlcycle.devstack import stack

    answer = requests.get(
        f"{stack.stack_env()['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/registered-models/alias",
        params={"name": model_name, "alias": "champion"},
        timeout=30,
    )
    missing = answer.status_code == 404 or (  # no such model; no version holds the alias
        answer.status_code == 400 and answer.json().get("error_code") == "INVALID_PARAMETER_VALUE"
    )
    if missing:
        return None
    answer.raise_for_status()
    return int(answer.json()["model_version"]["version"])


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def latest_runs(admin, dag_id: str, limit: int = 20) -> list[dict]:
    """The most recent runs of a DAG, oldest first."""
    return admin.dag_runs(dag_id, order_by="-id", limit=limit)[::-1]


def next_free_day(admin) -> str:
    """The day after the latest one any data DAG (real or twin) has a run for: a logical date
    has one run per DAG, so each measured day is a new one."""
    latest = SETUP_START
    for kind in DAY_CHAIN:
        for run in admin.dag_runs(DAY_CHAIN[kind][0], order_by="-logical_date", limit=1):
            if run.get("logical_date"):
                latest = max(latest, run["logical_date"][:10])
    return (date.fromisoformat(latest) + timedelta(days=1)).isoformat()


def new_run(admin, dag_id: str, known: set[str], timeout: float = 900) -> dict:
    """The first run of ``dag_id`` not in ``known`` (an asset-started one), once it has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = [r for r in latest_runs(admin, dag_id) if r["dag_run_id"] not in known]
        if fresh and fresh[-1]["state"] in ("success", "failed"):
            return fresh[-1]
        time.sleep(admin.poll)
    raise SystemExit(f"no finished new run of {dag_id} after {timeout:.0f} s")


def run_day(admin, kind: str, day: str) -> dict:
    """One day through the chain (data, then the asset-started scoring and monitoring): seconds from
    the data run being queued to the monitoring run ending, by the scheduler's own timestamps."""
    data_dag, scoring_dag, monitoring_dag = DAY_CHAIN[kind]
    known = {d: {r["dag_run_id"] for r in latest_runs(admin, d)} for d in (scoring_dag, monitoring_dag)}
    run_id = admin.trigger(
        data_dag, logical_date=f"{day}T00:00:00Z", run_id=f"bench__{kind}__{day}__{time.time():.0f}"
    )
    if admin.wait_for_run(data_dag, run_id) != "success":
        raise SystemExit(f"{data_dag} {run_id} failed")
    data = admin.dag_run(data_dag, run_id)
    scoring = new_run(admin, scoring_dag, known[scoring_dag])
    monitoring = new_run(admin, monitoring_dag, known[monitoring_dag])
    for run, dag_id in ((scoring, scoring_dag), (monitoring, monitoring_dag)):
        if run["state"] != "success":
            raise SystemExit(f"{dag_id} {run['dag_run_id']} failed")
    tasks: dict[str, float] = {}
    for step, (dag_id, rid) in enumerate(
        ((data_dag, run_id), (scoring_dag, scoring["dag_run_id"]), (monitoring_dag, monitoring["dag_run_id"]))
    ):
        tis = admin.request("GET", f"dags/{dag_id}/dagRuns/{rid}/taskInstances", params={"limit": 100})
        for ti in tis["task_instances"]:
            if ti.get("duration") is not None:
                name = f"{('data', 'scoring', 'monitoring')[step]}.{ti['task_id']}"
                tasks[name] = tasks.get(name, 0.0) + ti["duration"]
    spark = sum(
        v
        for k, v in tasks.items()
        if k.split(".")[1] in ("validate_raw", "build_features", "score", "monitor")
    )
    return {
        "seconds": ts(monitoring["end_date"]) - ts(data["queued_at"]),
        "spark_tasks": spark,
        "tasks": tasks,
        "runs": {
            "data": ts(data["end_date"]) - ts(data["queued_at"]),
            "scoring": ts(scoring["end_date"]) - ts(scoring["queued_at"]),
            "monitoring": ts(monitoring["end_date"]) - ts(monitoring["queued_at"]),
        },
        # the scheduler's share before a run's first task: from the run queued to the run started
        "waits": {
            "data": ts(data["start_date"]) - ts(data["queued_at"]),
            "scoring": ts(scoring["start_date"]) - ts(scoring["queued_at"]),
            "monitoring": ts(monitoring["start_date"]) - ts(monitoring["queued_at"]),
        },
    }


def no_running_backfill(admin, dag_id: str, timeout: float = 300) -> None:
    """Until the DAG has no unfinished backfill: the scheduler marks a backfill completed some
    seconds after its last run ends, and until then Airflow refuses the DAG another one (409)."""
    deadline = time.monotonic() + timeout
    while any(
        not job.get("completed_at")
        for job in admin.request("GET", "backfills", params={"dag_id": dag_id, "limit": 100})["backfills"]
    ):
        if time.monotonic() > deadline:
            raise SystemExit(f"a backfill of {dag_id} still running after {timeout:.0f} s")
        time.sleep(admin.poll)


def wait_for_backfill(
    admin, job: dict, dag_id: str, first: str, last: str, runs: int, since: float, timeout: float
) -> None:
    """Until the backfill ``job`` of ``dag_id`` is done: marked completed, or its ``runs`` runs
    (logical dates ``first``..``last``, queued at ``since`` or later: a day run again keeps its
    run) all finished, whichever is seen first (the scheduler marks a backfill completed some
    seconds after its last run ends; the figures come from the runs)."""
    deadline = time.monotonic() + timeout
    while not admin.request("GET", f"backfills/{job['id']}").get("completed_at"):
        found = admin.dag_runs(
            dag_id, logical_date_gte=f"{first}T00:00:00Z", logical_date_lte=f"{last}T00:00:00Z", limit=100
        )
        mine = [r for r in found if r.get("queued_at") and ts(r["queued_at"]) >= since]
        if len(mine) >= runs and all(r["state"] in ("success", "failed") for r in mine):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"backfill {job['id']} not finished after {timeout / 3600:.0f} h")
        time.sleep(admin.poll)
