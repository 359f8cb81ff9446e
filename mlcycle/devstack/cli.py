"""``mlcycle``: the command line around the Airflow and MLflow UIs.

mlcycle stack start|stop|status     the embedded stack
mlcycle demo                        backfill a window, train, stop at the sign-off
mlcycle models                      every model of the catalog, its DAGs and its champion
mlcycle approve | reject [--model M] answer the pending sign-off as an approver
mlcycle history [--model M]         each model's champion history, from the registry alone
mlcycle rollback --model M --to N   ask the model's approvers to bring version N back as champion
mlcycle migrate-layout --model M    move a data root of the one-model layout under models/<M>/
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta

from mlcycle.config import settings
from mlcycle.devstack import stack

# The model the demo takes through its lifecycle (the first of the flights use case).
DEMO_MODEL = "air_time"


def _catalog():
    from mlcycle.specs import catalog

    found = catalog()
    for error in found.errors:
        print(f"refused: {error}", file=sys.stderr)
    return found


def _models(name: str | None) -> list:
    """The model named ``name``, or every model of the catalog."""
    models = _catalog().models
    if name is None:
        return list(models.values())
    if name not in models:
        raise SystemExit(f"no model named {name!r}: one of {', '.join(sorted(models)) or 'none'}")
    return [models[name]]


def all_dags() -> list[str]:
    from mlcycle.orchestration.names import STAGES, dag_id, data_dag_id, data_range_dag_id

    found = _catalog()
    return [f(u) for u in found.usecases.values() for f in (data_dag_id, data_range_dag_id)] + [
        dag_id(m, stage) for m in found.models.values() for stage in STAGES
    ]


def _client(user: str | None = None, password: str | None = None):
    from mlcycle.orchestration.client import AirflowClient

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
    approver = next(iter(_models(DEMO_MODEL)[0].approvers))
    print(
        f"Airflow UI  {env['MLCYCLE_AIRFLOW_URL']}   (login admin/{pw['admin']}, {approver}/{pw.get(approver)})"
    )
    print(f"MLflow UI   {env['MLFLOW_TRACKING_URI']}")
    print(
        f"Scoring     {env['MLCYCLE_SERVING_URL']}/v1/models/<model>/predict   (bearer token in {env['MLCYCLE_SERVING_TOKEN_FILE']})"
    )
    print(f"Data        {settings().data_root}")


def run_data_window(client, start: str, days: int, data_dag: str = "flights_data") -> list[dict]:
    """Backfill the daily data DAG over ``days`` days from ``start`` and wait for it."""
    end = (date.fromisoformat(start) + timedelta(days=days - 1)).isoformat()
    backfill = client.backfill(data_dag, start, end)
    print(f"backfill {backfill['id']} of {data_dag}: {start} .. {end}", flush=True)
    runs = client.wait_for_backfill(backfill["id"], data_dag, expected_runs=days)
    failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
    if failed:
        raise SystemExit(f"data runs failed: {failed}; open {client.base_url}/dags/{data_dag} to see why")
    return runs


def cmd_demo(args) -> int:
    t0 = time.monotonic()
    print("starting the embedded stack (Airflow, MLflow) under", settings().home, flush=True)
    stack.start()
    print(f"stack up after {time.monotonic() - t0:.0f} s; waiting for the DAGs to be parsed", flush=True)
    from mlcycle.orchestration.names import dag_id, data_dag_id

    client = _client()
    everything = all_dags()
    client.wait_for_dags(everything)
    for each in everything:
        client.unpause(each)
    model = _models(DEMO_MODEL)[0]
    training = dag_id(model, "training")
    run_data_window(client, args.start, args.days, data_dag_id(model.usecase))
    train_end = (date.fromisoformat(args.start) + timedelta(days=args.days - 2)).isoformat()
    conf = {"train_start": args.start, "train_end": train_end, "holdout_days": args.holdout_days}
    run_id = client.trigger(training, conf=conf)
    print(f"training {run_id} on {args.start} .. {train_end}", flush=True)
    client.wait_for_approval(training, run_id, "sign_off")
    minutes = (time.monotonic() - t0) / 60
    print()
    print(f"The challenger is waiting for sign-off ({minutes:.1f} min so far).")
    _print_addresses()
    print(f"Review it:  {client.base_url}/dags/{training}/runs/{run_id}/tasks/sign_off/required_actions")
    print(
        f"Approve it from the terminal:  .venv/bin/mlcycle approve --model {model.name} --comment 'looks good'"
    )
    print("The stack stays up; 'make stop' stops it.")
    return 0


def cmd_decide(args, option: str) -> int:
    from mlcycle.orchestration.names import dag_id

    models = _models(args.model)
    user = args.user or next(iter(models[0].approvers))
    client = _client(user, args.password)
    dags = {dag_id(m, stage): m for m in models for stage in ("training", "rollback")}
    pending = [p for p in client.pending_approvals() if p["task_instance"]["dag_id"] in dags]
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

        name = dags[ti["dag_id"]].registered_name
        print(f"champion of {name}: version {champion(stack.stack_env()['MLFLOW_TRACKING_URI'], name)}")
    return 0


def cmd_rollback(args) -> int:
    from mlcycle.orchestration.names import dag_id

    (model,) = _models(args.model)
    rollback = dag_id(model, "rollback")
    client = _client()
    run_id = client.trigger(rollback, conf={"version": args.to, "reason": args.reason})
    print(f"rollback of {model.registered_name} to v{args.to}: {run_id} asks {', '.join(model.approvers)}")
    print(f"Review it:  {client.base_url}/dags/{rollback}/runs/{run_id}/tasks/sign_off/required_actions")
    return 0


def cmd_history(args) -> int:
    from mlcycle.registry import champion_history

    uri = stack.stack_env()["MLFLOW_TRACKING_URI"]
    for i, model in enumerate(_models(args.model)):
        rows = champion_history(uri, model.registered_name)
        print(("\n" if i else "") + f"{model.name} ({model.registered_name}, {model.task})")
        print(f"{'version':>7}  {'from':32}  {'to':32}  approved by")
        for row in rows:
            print(
                f"{row['version']:>7}  {str(row.get('promoted_at') or ''):32}  "
                f"{str(row.get('retired_at') or '(champion)'):32}  {row.get('decided_by') or ''}"
            )
        if not rows:
            print("(no version has served as champion yet)")
    return 0


def cmd_models(args) -> int:
    from mlcycle.orchestration.names import STAGES, dag_id
    from mlcycle.registry import champion

    uri = stack.stack_env()["MLFLOW_TRACKING_URI"]
    for model in _models(None):
        try:
            current = champion(uri, model.registered_name)
        except Exception as exc:  # the registry away: the catalog is still worth showing
            current = f"unknown ({type(exc).__name__})"
        print(
            f"{model.name}: {model.registered_name}, {model.task} of {model.label}, decided by {model.deciding}"
        )
        print(f"  folder     {model.folder}")
        print(f"  approvers  {', '.join(model.approvers)}")
        print(f"  champion   {current if current is not None else '(none)'}")
        print(f"  DAGs       {', '.join(dag_id(model, s) for s in STAGES)}")
    return 0


def cmd_migrate_layout(args) -> int:
    from mlcycle.devstack.layout import LayoutError, migrate

    (model,) = _models(args.model)
    data_root = args.data_root or settings().data_root
    try:
        moves = migrate(data_root, model, dry_run=args.dry_run)
    except LayoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for move in moves:
        print(("would move " if args.dry_run else "moved ") + str(move))
    print(
        f"{len(moves)} {'to move' if args.dry_run else 'moved'} under {data_root}"
        if moves
        else f"nothing to move: {data_root} has the layout of many models"
    )
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
        p.add_argument("--model", help="the model whose sign-off to answer (default: any)")
        p.add_argument("--run-id", help="the training or rollback run (default: the latest waiting)")
        p.add_argument("--user", help="the approver (default: the model's first)")
        p.add_argument("--password")
        p.add_argument(
            "--no-wait", dest="wait", action="store_false", help="do not wait for the run to finish"
        )
        p.set_defaults(func=lambda a, o=option: cmd_decide(a, o))

    p = sub.add_parser("models", help="every model of the catalog, its DAGs and its champion")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("history", help="champion history from the model registry")
    p.add_argument("--model", help="one model (default: every model)")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("rollback", help="ask the approvers to bring an earlier champion back")
    p.add_argument("--model", required=True, help="the model, e.g. air_time")
    p.add_argument("--to", type=int, required=True, help="the version to bring back")
    p.add_argument("--reason", default=None)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser(
        "migrate-layout", help="move a data root of the one-model layout under models/<model>/"
    )
    p.add_argument("--model", required=True, help="the model whose records sit at the top of the data root")
    p.add_argument("--data-root", help="default: the configured data root (MLCYCLE_DATA_ROOT)")
    p.add_argument("--dry-run", action="store_true", help="list the moves, move nothing")
    p.set_defaults(func=cmd_migrate_layout)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except stack.StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
