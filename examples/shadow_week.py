"""A week of real flights replayed through the scoring service with a challenger in the shadow, and
the comparison its sign-off shows.

    .venv/bin/python examples/shadow_week.py --data-root /work/fc_data
    .venv/bin/python examples/shadow_week.py --model late_arrival --data-root /work/fc_data

The figure: a champion trained on January 2013 and a challenger trained on January to late March
(the real training job, tuned, validated on the window's last ``--holdout-days`` days, both
registered: the first promoted, the second left waiting as ``challenger``); every flight of the
replayed week (default 2013-04-01..07) asked of the service as a scheduler asks it (carrier,
number, tail, airports, scheduled departure), in the order of the day's drop, in batches; the
service answers with the champion and scores the challenger in the shadow (``Scorer``: the
service's code without the HTTP, with the versions loaded from the registry as the service loads
them); then, day by day, the monitoring job's join of the request log with the outcomes
(``online_metrics``, written to ``monitoring_online/ds=D``); and at the end the challenger's pooled
record, kept on its version (``live.shadow.*``), and the section its sign-off evidence shows.

The data root must hold the raw drops of the windows (``first_champion.py`` lands and gates them);
missing raw verdicts and features are made here, and the replayed days' features are rebuilt when
their feature views are missing (roots made before the views existed). MLflow is a SQLite store in
the data root (``mlflow.db``). A rerun reuses both trainings (found by their run ids) and replays
the week again from an empty request log.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "examples"))

from first_champion import (  # noqa: E402
    build_feature_days,
    gate_raw_days,
    progress,
    start_spark,
    use_mlflow_store,
    window,
)

from mlcycle.config import days_between  # noqa: E402

DAG = "shadow_week"


def request_of(flight, ds: str) -> dict:
    hhmm = int(flight.sched_dep_time)
    return {
        "carrier": flight.carrier,
        "flight": int(flight.flight),
        "tailnum": flight.tailnum if isinstance(flight.tailnum, str) else None,
        "origin": flight.origin,
        "dest": flight.dest,
        "sched_dep": f"{ds}T{hhmm // 100:02d}:{hhmm % 100:02d}",
    }


def trained(data_root: str, model, start: str, end: str, holdout: int, run_name: str) -> str:
    """The run id of the training job over ``start..end`` (reused when it ran already)."""
    from mlflow import MlflowClient

    from spark_jobs import training

    uri = use_mlflow_store(data_root, model.registered_name)
    client = MlflowClient(tracking_uri=uri)
    run = training.find_finished_run(client, model.registered_name, run_name)
    if run is None:
        argv = ["--start", start, "--end", end, "--holdout-days", str(holdout), "--data-root", data_root,
                "--model", model.name, "--airflow-run-id", run_name]  # fmt: skip
        progress(f"training {model.name} on {start}..{end}")
        began = time.monotonic()
        if training.main(argv) != 0:
            raise SystemExit(f"the training over {start}..{end} refused or failed; its message is above")
        progress(f"trained in {time.monotonic() - began:.0f} s")
        run = training.find_finished_run(client, model.registered_name, run_name)
    return run.info.run_id


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--model", default="air_time")
    parser.add_argument("--champion-window", type=window, default=("2013-01-01", "2013-01-31"))
    parser.add_argument("--challenger-window", type=window, default=("2013-01-01", "2013-03-24"))
    parser.add_argument("--replay", type=window, default=("2013-04-01", "2013-04-07"))
    parser.add_argument("--holdout-days", type=int, default=7)
    parser.add_argument("--batch", type=int, default=100, help="flights per request")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)

    import pandas as pd

    from mlcycle import registry
    from mlcycle.config import model_root
    from mlcycle.monitoring import shadow
    from mlcycle.serving.service import Scorer, registry_aliases
    from mlcycle.serving.versions import load_version
    from mlcycle.specs import find_model
    from spark_jobs.common import overwrite_partitions, read_partitions
    from spark_jobs.features import VIEWS, features_of_day
    from spark_jobs.flights.replay import load_reference
    from spark_jobs.monitoring import _frame, online_columns, online_metrics

    model = find_model(args.model)
    root = str(Path(args.data_root).resolve())
    spark = start_spark()
    first = min(args.champion_window[0], args.challenger_window[0])
    every_day = days_between(first, args.replay[1])
    replayed = days_between(*args.replay)
    load_reference(root)  # the planes the features read (kept if already there)
    gate_raw_days(spark, root, every_day)
    build_feature_days(spark, root, every_day)
    for ds in replayed:  # the service needs the day's views, published with its features
        if not (Path(root) / VIEWS / f"ds={ds}").is_dir():
            progress(f"features {ds}: rebuilt to publish its views")
            features_of_day(spark, root, ds)

    uri = use_mlflow_store(root, model.registered_name)
    name = model.registered_name
    champion_run = trained(root, model, *args.champion_window, args.holdout_days, f"{DAG}__champion")
    challenger_run = trained(root, model, *args.challenger_window, args.holdout_days, f"{DAG}__challenger")
    champion = registry.register_challenger(uri, name, champion_run, f"{DAG}__champion", DAG)
    registry.promote(uri, name, champion, decided_by="shadow_week", comment="the champion of the replay",
                     airflow_run_id=f"{DAG}__champion", decided_at="2013-03-31T00:00:00+00:00")  # fmt: skip
    challenger = registry.register_challenger(uri, name, challenger_run, f"{DAG}__challenger", DAG)

    records = model_root(root, model.name)
    for ds in replayed:  # a rerun replays the week from an empty log
        shutil.rmtree(Path(records) / "requests" / f"ds={ds}", ignore_errors=True)
    cache = Path(root) / "serving" / "versions"
    scorer = Scorer(
        [model],
        root,
        load=lambda m, v: load_version(uri, m.registered_name, v, cache),
        aliases=registry_aliases(uri),
    )
    scorer.follow_once()
    slot = scorer.slots[model.name]
    assert (slot.champion.version, slot.shadow.version) == (champion, challenger), scorer.health()

    asked, refused, began = 0, {}, time.monotonic()
    for ds in replayed:
        landed = pd.read_csv(
            Path(root) / "landing" / "flights" / f"ds={ds}" / "flights.csv", na_values=["NA"]
        )
        flights = [request_of(f, ds) for f in landed.itertuples()]
        for start in range(0, len(flights), args.batch):
            batch = flights[start : start + args.batch]
            code, answer = scorer.predict(model.name, {"flights": batch})
            if code == 200:
                asked += len(batch)
                continue
            # a batch is refused whole: the one flight named goes, the rest are asked again
            bad = int(answer["error"]["field"].split("]")[0].removeprefix("flights["))
            refused[f"{ds} {answer['error']['field']}"] = answer["error"]["rule"]
            for flight in batch[:bad] + batch[bad + 1 :]:
                code, again = scorer.predict(model.name, flight)
                if code == 200:
                    asked += 1
                else:
                    refused[f"{ds} {json.dumps(flight)}"] = again["error"]["rule"]
    scorer.log.close()
    replay_seconds = time.monotonic() - began
    progress(f"replayed {asked} requests in {replay_seconds:.1f} s ({len(refused)} refused)")

    for ds in replayed:
        features = read_partitions(spark, root, "features", [ds])
        rows = [
            {"ds": pd.Timestamp(ds).date(), **r} for r in online_metrics(spark, records, features, model, ds)
        ]
        overwrite_partitions(_frame(spark, rows, online_columns(model)), records, "monitoring_online")
    days = shadow.shadow_days(records, challenger)
    pooled = shadow.pooled(days, tuple(model.metrics))
    from mlflow import MlflowClient

    tags = shadow.record_on_version(MlflowClient(tracking_uri=uri), model, challenger, records)
    evidence = shadow.markdown(model, challenger, days)
    print(f"\n{model.name}: champion v{champion} ({args.champion_window[0]}..{args.champion_window[1]}), "
          f"challenger v{challenger} ({args.challenger_window[0]}..{args.challenger_window[1]}) in the shadow; "
          f"{asked} requests replayed over {args.replay[0]}..{args.replay[1]} in {replay_seconds:.1f} s")  # fmt: skip
    print(evidence)
    print(f"\ntags of v{challenger}: {tags}")
    if refused:
        print(f"refused: {refused}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "model": model.name,
                    "champion": champion,
                    "challenger": challenger,
                    "requests": asked,
                    "refused": refused,
                    "replay_seconds": round(replay_seconds, 1),
                    "days": days,
                    "pooled": pooled,
                },
                indent=2,
                default=str,
            )  # fmt: skip
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
