"""``mlcycle``: the command line around the Airflow and MLflow UIs.

mlcycle stack start|stop|status     the embedded stack
mlcycle demo                        backfill a window, train, stop at the sign-off
mlcycle approve | reject            answer the pending sign-off as an approver
mlcycle history                     the champion's history, from the registry alone
mlcycle rollback --to N             ask the approvers to bring version N back as champion
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta

from mlcycle import stack
from mlcycle.config import settings

DATA_DAG = "flights_data"
TRAINING_DAG = "flights_training"
SCORING_DAG = "flights_scoring"
ROLLBACK_DAG = "flights_rollback"
ALL_DAGS = [DATA_DAG, TRAINING_DAG, SCORING_DAG, "flights_monitoring", "flights_archival", ROLLBACK_DAG]


def _client(user: str | None = None, password: str | None = None):
    from mlcycle.airflow_api import AirflowClient

    env = stack.stack_env()
    user = user or "admin"
    password = password or stack.passwords().get(user, user)
    return AirflowClient(env["MLCYCLE_AIRFLOW_URL"], user, password)


def cmd_stack(args) -> int:
    if args.action == "start":
        print("starting the embedded stack (Airflow, MLflow) under", settings().home, flush=True)
        stack.start()
        _print_addresses()
    elif args.action == "stop":
        stopped = stack.stop()
        print("stopped:", ", ".join(stopped) if stopped else "nothing was running")
    else:
        for name, state in stack.status().items():
            print(f"{name:14} {state}")
    return 0


def _print_addresses() -> None:
    env = stack.stack_env()
    pw = stack.passwords()
    print(
        f"Airflow UI  {env['MLCYCLE_AIRFLOW_URL']}   (login admin/{pw['admin']}, approver/{pw['approver']})"
    )
    print(f"MLflow UI   {env['MLFLOW_TRACKING_URI']}")
    print(f"Data        {settings().data_root}")


def run_data_window(client, start: str, days: int) -> list[dict]:
    """Backfill the daily data DAG over ``days`` days from ``start`` and wait for it."""
    end = (date.fromisoformat(start) + timedelta(days=days - 1)).isoformat()
    backfill = client.backfill(DATA_DAG, start, end)
    print(f"backfill {backfill['id']} of {DATA_DAG}: {start} .. {end}", flush=True)
    runs = client.wait_for_backfill(backfill["id"], DATA_DAG, expected_runs=days)
    failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
    if failed:
        raise SystemExit(f"data runs failed: {failed}; open {client.base_url}/dags/{DATA_DAG} to see why")
    return runs


def cmd_demo(args) -> int:
    t0 = time.monotonic()
    print("starting the embedded stack (Airflow, MLflow) under", settings().home, flush=True)
    stack.start()
    print(f"stack up after {time.monotonic() - t0:.0f} s; waiting for the DAGs to be parsed", flush=True)
    client = _client()
    client.wait_for_dags(ALL_DAGS)
    for dag_id in ALL_DAGS:
        client.unpause(dag_id)
    run_data_window(client, args.start, args.days)
    train_end = (date.fromisoformat(args.start) + timedelta(days=args.days - 2)).isoformat()
    conf = {"train_start": args.start, "train_end": train_end, "holdout_days": args.holdout_days}
    run_id = client.trigger(TRAINING_DAG, conf=conf)
    print(f"training {run_id} on {args.start} .. {train_end}", flush=True)
    client.wait_for_approval(TRAINING_DAG, run_id, "sign_off")
    minutes = (time.monotonic() - t0) / 60
    print()
    print(f"The challenger is waiting for sign-off ({minutes:.1f} min so far).")
    _print_addresses()
    print(f"Review it:  {client.base_url}/dags/{TRAINING_DAG}/runs/{run_id}/tasks/sign_off/required_actions")
    print("Approve it from the terminal:  .venv/bin/mlcycle approve --comment 'looks good'")
    print("The stack stays up; 'make stop' stops it.")
    return 0


def cmd_decide(args, option: str) -> int:
    client = _client(args.user, args.password)
    pending = client.pending_approvals(TRAINING_DAG)
    if args.run_id:
        pending = [p for p in pending if p["task_instance"]["dag_run_id"] == args.run_id]
    if not pending:
        print("no sign-off is waiting", file=sys.stderr)
        return 1
    ti = pending[-1]["task_instance"]
    client.respond(ti["dag_id"], ti["dag_run_id"], ti["task_id"], option, comment=args.comment)
    print(f"{option}: {ti['dag_id']} {ti['dag_run_id']} as {client.username}")
    if args.wait:
        state = client.wait_for_run(ti["dag_id"], ti["dag_run_id"])
        print(f"{ti['dag_run_id']} finished: {state}")
        from mlcycle.registry import champion

        cfg = settings()
        print(
            f"champion of {cfg.model_name}: version {champion(stack.stack_env()['MLFLOW_TRACKING_URI'], cfg.model_name)}"
        )
    return 0


def cmd_rollback(args) -> int:
    client = _client()
    run_id = client.trigger(ROLLBACK_DAG, conf={"version": args.to, "reason": args.reason})
    print(f"rollback to v{args.to}: {run_id} asks the approvers")
    print(f"Review it:  {client.base_url}/dags/{ROLLBACK_DAG}/runs/{run_id}/tasks/sign_off/required_actions")
    return 0


def cmd_history(args) -> int:
    from mlcycle.registry import champion_history

    cfg = settings()
    rows = champion_history(stack.stack_env()["MLFLOW_TRACKING_URI"], cfg.model_name)
    print(f"{'version':>7}  {'from':32}  {'to':32}  approved by")
    for row in rows:
        print(
            f"{row['version']:>7}  {str(row.get('promoted_at') or ''):32}  "
            f"{str(row.get('retired_at') or '(champion)'):32}  {row.get('decided_by') or ''}"
        )
    if not rows:
        print("(no version has served as champion yet)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mlcycle", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stack", help="start, stop or show the embedded stack")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.set_defaults(func=cmd_stack)

    p = sub.add_parser("demo", help="backfill a window of 2013, train, and stop at the sign-off")
    p.add_argument("--start", default="2013-01-01")
    p.add_argument(
        "--days", type=int, default=7, help="days to backfill; the last one is scored after approval"
    )
    p.add_argument("--holdout-days", type=int, default=2)
    p.set_defaults(func=cmd_demo)

    for name, option in (("approve", "Approve"), ("reject", "Reject")):
        p = sub.add_parser(name, help=f"{option.lower()} the pending sign-off")
        p.add_argument("--comment", default="")
        p.add_argument("--run-id", help="the training run (default: the latest waiting)")
        p.add_argument("--user", default=(settings().approvers or ("approver",))[0])
        p.add_argument("--password")
        p.add_argument(
            "--no-wait", dest="wait", action="store_false", help="do not wait for the run to finish"
        )
        p.set_defaults(func=lambda a, o=option: cmd_decide(a, o))

    p = sub.add_parser("history", help="champion history from the model registry")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("rollback", help="ask the approvers to bring an earlier champion back")
    p.add_argument("--to", type=int, required=True, help="the version to bring back")
    p.add_argument("--reason", default=None)
    p.set_defaults(func=cmd_rollback)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except stack.StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
