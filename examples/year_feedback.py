"""A year of feedback: 2013 scored by a champion trained on January to March, retrained when it drifts.

The figures: its live error against the retraining threshold as the seasons move, the retrainings
that triggered, and the live error of the champions they brought.

    .venv/bin/python examples/year_feedback.py --data-root /work/fc_data --json /work/fc_data/year_feedback.json

It replays, day by day and in-process, what the DAGs do (one ``local[2]`` Spark session, the one
the jobs get from spark-submit; MLflow on a SQLite store with its artifacts under ``--data-root``):

1. ``flights_data``: the raw gate (``land_day`` + ``validate_day``) and the features
   (``features_of_day``) of every day from the first training day to ``--end`` (the same helpers
   as ``examples/first_champion.py``): the days before ``--start-scoring`` first, then each day
   just before it is scored, so scoring does not wait for the whole year's data; a day a gate
   holds (2013-12-31: no weather upstream) is counted and not scored;
2. ``air_time_training`` once: ``spark_jobs.training.main`` on ``--train-start``..``--train-end``,
   ``register_challenger``, the evidence, and a scripted approver's ``promote_on_approval``
   (decided the day after the window, so the champion scores from then);
3. for each day from ``--start-scoring`` to ``--end``: ``air_time_scoring`` (``score.score`` with
   the current champion) and ``air_time_monitoring`` (``monitor.monitor``, then
   ``retraining_decision`` on the champion's monitored days and its validation MAE, with a
   ``RetrainRule`` whose defaults are the module's and whose fields are the ``--tolerance`` ...
   flags). When the rule fires: ``record_trigger``, then ``air_time_training`` on the window the rule
   returns (the job scores the champion on the same holdout days), ``register_challenger``,
   ``registry.evidence`` (``--min-improvement`` etc., as ``evaluate_challenger``); a challenger the
   rules reject is recorded as rejected, any other is promoted by the scripted approver, decided
   the day after its window. The replay goes on with whichever version is champion.

The figures (printed, and in ``--json``): days scored and held; live MAE, RMSE and bias by month
(flights-weighted, from ``monitoring/``); each retraining (day fired, rolling MAE against the
threshold, window, challenger against champion on the holdout, outcome, live MAE of the old
champion over the 14 / 30 days before the promotion against the new one over the 14 / 30 days
after, and, as those are different days of a moving season, the old champion scored on the very
flights the new one served); the first day each champion's rolling MAE was over its threshold, and
the first day the trailing ``--bias-days`` bias of the served predictions was beyond ``--bias-alert``
minutes. The chart of daily and rolling MAE (``mlcycle.monitoring.live.write_chart``, as the monitoring
DAG draws it) goes to ``<data-root>/reports/monitoring_mae.png``.

A reused root skips what is done: days whose gates passed, the training runs already finished
(training ids are fixed by their window), versions already decided, days already scored and
monitored (their recorded version stands, as in ``air_time_scoring`` without ``rescore``). The
retrainings are kept in ``<data-root>/year_feedback/retrainings.json`` and the summary is
rewritten at each month end and after each retraining, so a stopped run still has its figures;
``--report-only`` recomputes them from the root (no job runs; Spark only scores the retired
champions on the flights their successors served).

A short trial that forces the retraining path, on a separate root (a copy of the data folders of
a root that has January to April: features, gates, landing, quarantine, reference, validated)::

    .venv/bin/python examples/year_feedback.py --data-root /tmp/yf_debug --end 2013-04-20 \\
        --tolerance -100 --consecutive-days 2 --retrain-window-days 30
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import logging
import math
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

# The helpers of examples/first_champion.py (this script's folder is on sys.path when it is run).
from first_champion import (
    build_feature_days,
    gate_raw_days,
    passed,
    progress,
    start_spark,
    train_champion,
    use_mlflow_store,
)

from mlcycle.config import Settings, days_between, model_root, next_day, partition_path
from mlcycle.monitoring.retraining import RetrainRule, rolling
from spark_jobs.flights.replay import YEAR, load_reference

MODEL = "air_time"  # the model of the catalog this replay follows
APPROVER = "approver (scripted)"
TRAINING_DAG = f"{MODEL}_training"
STATE_DIR = "year_feedback"
EFFECT_DAYS = (14, 30)


# --- small helpers ------------------------------------------------------------------------------


def day_time(ds: str) -> str:
    """The timestamp a replayed decision carries: midnight UTC of that day."""
    return f"{ds}T00:00:00+00:00"


def shift(ds: str, days: int) -> str:
    return (dt.date.fromisoformat(ds) + dt.timedelta(days=days)).isoformat()


def features_ready(root: str, ds: str) -> bool:
    return passed(root, "features", ds) and Path(partition_path(root, "features", ds)).is_dir()


def monitored(root: str, ds: str) -> bool:
    part = Path(partition_path(model_root(root, MODEL), "monitoring", ds))
    return part.is_dir() and any(part.glob("*.parquet"))


@contextlib.contextmanager
def quiet(what: str):
    """Keep a job's chatter (its prints, GX's) out of the report; show it if the job fails."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            yield
    except BaseException:
        progress(f"--- output of {what} ---\n{out.getvalue()}{err.getvalue()}--- end ---")
        raise


def settings_for(root: str, tracking_uri: str) -> Settings:
    """What the DAGs read from the environment, pointed at this root and store, for the model."""
    from mlcycle.specs import find_model

    return Settings(home=Path(root), data_root=root, tracking_uri=tracking_uri, airflow_url="").for_model(
        find_model(MODEL)
    )


class State:
    """What the replay keeps between runs on one root: the retrainings (by training run id)."""

    def __init__(self, root: str):
        self.path = Path(root, STATE_DIR, "retrainings.json")
        self.retrainings: dict[str, dict] = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.retrainings, indent=2, sort_keys=True) + "\n")


class DataPath:
    """``flights_data`` for a list of days (the raw gate, then the features, with the helpers of
    ``first_champion.py``), its counts summed over the calls: the replay calls it once for the
    days before scoring and then once per scored day, so scoring starts without waiting for the
    whole year's data."""

    def __init__(self, spark, root: str):
        self.spark, self.root = spark, root
        self.raw = {"days": 0, "ran": 0, "skipped": 0, "held": {}, "seconds": 0.0}
        self.features = {
            "days": 0, "ran": 0, "skipped": 0, "held": {}, "raw_not_passed": [], "short_history": {},
            "seconds": 0.0,
        }  # fmt: skip

    def run(self, raw_days: list[str], feature_days: list[str]) -> None:
        for total, part in (
            (self.raw, gate_raw_days(self.spark, self.root, raw_days) if raw_days else None),
            (
                self.features,
                build_feature_days(self.spark, self.root, feature_days) if feature_days else None,
            ),
        ):
            if part is None:
                continue
            for key in ("days", "ran", "skipped"):
                total[key] += part[key]
            total["held"].update(part["held"])
            total["seconds"] = round(total["seconds"] + part["seconds"], 1)
            if "raw_not_passed" in part:
                total["raw_not_passed"] += part["raw_not_passed"]
                total["short_history"].update(part["short_history"])

    def record(self) -> dict:
        return {"raw_gate": self.raw, "features": self.features}

    def line(self) -> str:
        raw, feats = self.raw, self.features
        return (
            f"raw gate {raw['ran']} run + {raw['skipped']} passed before, {len(raw['held'])} held; features "
            f"{feats['ran']} built + {feats['skipped']} before, {len(feats['held'])} held, "
            f"{len(feats['raw_not_passed'])} without validated data"
        )


# --- the training DAG, replayed ----------------------------------------------------------------


def decided(cfg: Settings, version: int) -> str | None:
    """The decision already on a version (a rerun leaves it), or None."""
    from mlcycle import registry

    mv = registry._client(cfg.tracking_uri).get_model_version(cfg.model_name, str(version))
    return mv.tags.get(registry.DECISION)


def approve(cfg: Settings, version: int, airflow_run_id: str, train_end: str, comment: str) -> str:
    """The sign-off answered Approve by the scripted approver on the day after the window; the
    promotion as the DAG's ``promote`` and ``record_decision`` tasks do it. Returns the first day
    the new champion scores."""
    from mlcycle.signoff.promotion import promote_on_approval, record_decision

    decision = {
        "chosen_options": ["Approve"],
        "responded_by_user": {"name": APPROVER},
        "responded_at": day_time(next_day(train_end)),
        "params_input": {"comment": comment},
    }
    score_from = promote_on_approval(cfg, version, decision, airflow_run_id, train_end)
    record_decision(cfg, version, decision, False, airflow_run_id)  # checks the alias moved
    return score_from


def weigh(cfg: Settings, version: int, airflow_run_id: str, train_end: str, args) -> tuple[str, dict]:
    """The evidence as ``evaluate_challenger`` builds it; a challenger the rules reject is recorded
    as rejected (decided the day after its window), any other is approved. A version decided by an
    earlier run keeps its decision. Returns (outcome, evidence)."""
    from mlcycle import evaluation, registry

    evidence = evaluation.evidence(
        cfg.tracking_uri,
        cfg.model_name,
        version,
        rules=evaluation.Rules.of(
            cfg.model,
            min_improvement=args.min_improvement,
            slice_tolerance=args.slice_tolerance,
            min_slice_rows=args.min_slice_rows,
        ),
        metrics=tuple(cfg.model.metrics),
    )
    earlier = decided(cfg, version)
    if earlier is not None:
        return ("promoted" if earlier == "approved" else "rejected by rule") + " (earlier run)", evidence
    if evidence["auto_reject"]:
        rules = sorted({reason.split(":", 1)[0] for reason in evidence["reasons"]})
        registry.record_rejection(
            cfg.tracking_uri,
            cfg.model_name,
            version,
            decided_by="rule:" + ",".join(rules),
            comment="; ".join(evidence["reasons"]),
            airflow_run_id=airflow_run_id,
            decided_at=day_time(next_day(train_end)),
        )
        return "rejected by rule", evidence
    approve(cfg, version, airflow_run_id, train_end, "scripted approval of the year replay")
    return "promoted", evidence


def train_and_register(root: str, cfg: Settings, start: str, end: str, holdout: int, run_id: str) -> dict:
    """``air_time_training``'s train and register tasks: the real job, then the challenger."""
    from mlcycle import registry

    training = train_champion(
        root,
        SimpleNamespace(
            train_start=start,
            train_end=end,
            holdout_days=holdout,
            airflow_run_id=run_id,
        ),
        cfg.model,
    )
    version = registry.register_challenger(
        cfg.tracking_uri, cfg.model_name, training["run_id"], run_id, TRAINING_DAG
    )
    return {**training, "version": version}


def first_champion(root: str, cfg: Settings, args) -> dict:
    training = train_and_register(
        root, cfg, args.train_start, args.train_end, args.holdout_days, args.first_airflow_run_id
    )
    outcome, evidence = weigh(cfg, training["version"], args.first_airflow_run_id, args.train_end, args)
    if not outcome.startswith("promoted"):
        raise SystemExit(f"the first champion was not approved: {outcome}, {evidence['reasons']}")
    return {
        "version": training["version"],
        "run_id": training["run_id"],
        "airflow_run_id": args.first_airflow_run_id,
        "window": f"{args.train_start}..{args.train_end}",
        "holdout_days": args.holdout_days,
        "val_days": training["val_days"],
        "val_mae": training["val_mae"],
        "val_rmse": training["val_rmse"],
        "train_rows": training["train_rows"],
        "reused_finished_run": training["reused_finished_run"],
        "wall_seconds": training["wall_seconds"],
        "outcome": outcome,
        "promoted_at": day_time(next_day(args.train_end)),
    }


def retrain(root: str, cfg: Settings, decision: dict, ds: str, args) -> dict:
    """What ``air_time_monitoring`` triggers and ``air_time_training`` does, for one decision."""
    from mlcycle.monitoring.live import record_trigger

    window = decision["window"]
    start, end, holdout = window["train_start"], window["train_end"], window["holdout_days"]
    run_id = f"year_feedback__retrain__{start}__{end}"
    record_trigger(cfg, decision, run_id)  # the cooling-off period counts from here
    record = {
        "fired_on": ds,
        "reason": decision["reason"],
        "rolling_mae": decision["latest"]["rolling"],
        "threshold": decision["threshold"],
        "days_over": decision["days_over"],
        "champion_version": decision["champion_version"],
        "champion_val_mae": decision["champion_val"],
        "window": f"{start}..{end}",
        "holdout_days": holdout,
        "airflow_run_id": run_id,
    }
    started = time.monotonic()
    try:
        training = train_and_register(root, cfg, start, end, holdout, run_id)
    except SystemExit as refused:  # the job refused the window (a day without data): no challenger
        return {**record, "outcome": "training refused", "message": str(refused),
                "seconds": round(time.monotonic() - started, 1)}  # fmt: skip
    outcome, evidence = weigh(cfg, training["version"], run_id, end, args)
    return {
        **record,
        "version": training["version"],
        "run_id": training["run_id"],
        "reused_finished_run": training["reused_finished_run"],
        "training_wall_seconds": training["wall_seconds"],
        "val_days": evidence["val_days"],
        "val_rows": evidence["val_rows"],
        "challenger_val_mae": evidence["challenger_val_mae"],
        "champion_holdout_mae": evidence["champion_val_mae"],
        "compared_with": evidence["champion_version"],
        "delta": evidence["delta"],
        "reasons": evidence["reasons"],
        "outcome": outcome,
        "score_from": next_day(end) if outcome.startswith("promoted") else None,
        "seconds": round(time.monotonic() - started, 1),
    }


# --- the scoring and monitoring DAGs, replayed --------------------------------------------------


def score_day(spark, cfg: Settings, ds: str, version: int) -> int:
    from spark_jobs.scoring import score

    args = SimpleNamespace(
        ds=ds,
        data_root=cfg.data_root,
        model=MODEL,
        model_uri=f"models:/{cfg.model_name}/{version}",
        model_version=str(version),
        airflow_run_id=f"year_feedback__score__{ds}",
    )
    with quiet(f"score {ds}"):
        return score(spark, args)


def monitor_day(cfg: Settings, ds: str) -> list[dict]:
    from spark_jobs.monitoring import monitor

    with quiet(f"monitor {ds}"):
        return monitor(SimpleNamespace(ds=ds, data_root=cfg.data_root, model=MODEL))


def replay(
    spark, cfg: Settings, rule: RetrainRule, days: list[str], args, state: State, data: DataPath, checkpoint
) -> dict:
    from mlcycle import registry
    from mlcycle.monitoring.live import retraining_decision
    from mlcycle.quality.gates import GateFailed
    from mlcycle.scoring import recorded_version

    log = {"scored": [], "already_done": [], "no_features": [], "predictions_rejected": {}, "decisions": []}
    seconds = {"scoring": 0.0, "monitoring": 0.0, "decision": 0.0, "retraining": 0.0}
    for ds in days:
        data.run([ds], [ds])  # flights_data of the day (nothing to do for a day that passed before)
        if not features_ready(cfg.data_root, ds):
            log["no_features"].append(ds)
            progress(f"{ds}: no features (held upstream), not scored")
            continue
        if recorded_version(cfg.model_root, ds) is not None and monitored(cfg.data_root, ds):
            log["already_done"].append(ds)
            continue
        version = registry.champion(cfg.tracking_uri, cfg.model_name)
        started = time.monotonic()
        try:
            score_day(spark, cfg, ds, version)
        except GateFailed as failed:
            log["predictions_rejected"][ds] = str(failed).splitlines()[0]
            progress(f"{ds}: predictions rejected by their gate: {log['predictions_rejected'][ds]}")
            continue
        scored = time.monotonic()
        rows = monitor_day(cfg, ds)
        watched = time.monotonic()
        decision = retraining_decision(cfg, rule, training_active=False, up_to=ds)
        done = time.monotonic()
        seconds["scoring"] += scored - started
        seconds["monitoring"] += watched - scored
        seconds["decision"] += done - watched
        log["scored"].append(ds)
        mine = next((r for r in rows if str(r["model_version"]) == str(version)), {})
        latest = decision.get("latest") or {}
        log["decisions"].append(
            {
                "ds": ds,
                "version": version,
                "n_actuals": mine.get("n_actuals"),
                "mae": mine.get("mae"),
                "bias": mine.get("bias"),
                "rolling_mae": latest.get("rolling"),
                "threshold": decision.get("threshold"),
                "days_over": decision.get("days_over"),
                "trigger": decision["trigger"],
                "reason": decision["reason"],
            }
        )
        mae = "n/a" if mine.get("mae") is None else f"{mine['mae']:.2f}"
        rolled = "n/a" if latest.get("rolling") is None else f"{latest['rolling']:.2f}"
        progress(
            f"{ds}: v{version} MAE {mae}, rolling {rolled} / threshold {decision.get('threshold', 0):.2f} "
            f"({decision.get('days_over', 0)} day(s) over); score {scored - started:.1f}s, "
            f"monitor {watched - scored:.1f}s, decide {done - watched:.1f}s"
        )
        if decision["trigger"]:
            progress(f"{ds}: retraining: {decision['reason']}")
            record = retrain(cfg.data_root, cfg, decision, ds, args)
            seconds["retraining"] += record["seconds"]
            state.retrainings[record["airflow_run_id"]] = record
            state.save()
            progress(
                f"{ds}: retraining on {record['window']}: {record['outcome']}"
                + (
                    f" v{record['version']} (holdout MAE {record['challenger_val_mae']:.2f} vs champion "
                    f"v{record['compared_with']} {record['champion_holdout_mae']:.2f})"
                    if record.get("challenger_val_mae") is not None
                    and record.get("champion_holdout_mae") is not None
                    else ""
                )
                + f" in {record['seconds']:.0f}s"
            )
            checkpoint(log, seconds)
        elif ds == days[-1] or shift(ds, 1)[8:] == "01":
            checkpoint(log, seconds)
    return {"log": log, "seconds": {k: round(v, 1) for k, v in seconds.items()}}


# --- the figures --------------------------------------------------------------------------------


def monitoring_rows(root: str, start: str, end: str) -> list[dict]:
    """Every monitored (day, version) of ``start``..``end`` with known outcomes: n, MAE, RMSE, bias."""
    import pandas as pd

    rows = []
    for part in sorted(Path(model_root(root, MODEL), "monitoring").glob("ds=*")):
        ds = part.name[3:]
        if not start <= ds <= end or not any(part.glob("*.parquet")):
            continue
        for r in pd.read_parquet(part).to_dict("records"):
            n = int(r.get("n_actuals") or 0)
            if n > 0 and r.get("mae") is not None and r["mae"] == r["mae"]:
                rows.append(
                    {
                        "ds": ds,
                        "model_version": str(r["model_version"]),
                        "n_actuals": n,
                        "mae": float(r["mae"]),
                        "rmse": float(r["rmse"]),
                        "bias": float(r["bias"]),
                    }
                )
    return rows


def weighted(rows: list[dict]) -> dict | None:
    """Flights-weighted MAE, RMSE and bias of monitored days."""
    n = sum(r["n_actuals"] for r in rows)
    if not n:
        return None
    return {
        "days": len({r["ds"] for r in rows}),
        "flights": n,
        "mae": sum(r["mae"] * r["n_actuals"] for r in rows) / n,
        "rmse": math.sqrt(sum(r["rmse"] ** 2 * r["n_actuals"] for r in rows) / n),
        "bias": sum(r["bias"] * r["n_actuals"] for r in rows) / n,
    }


def by_month(rows: list[dict]) -> dict:
    months = {}
    for month in sorted({r["ds"][:7] for r in rows}):
        in_month = [r for r in rows if r["ds"][:7] == month]
        versions = sorted({r["model_version"] for r in in_month}, key=int)
        months[month] = {**weighted(in_month), "versions": [f"v{v}" for v in versions]}
    return months


def crossings(rows: list[dict], vals: dict[str, float], rule: RetrainRule) -> dict:
    """Per version that served: the first day its rolling MAE was over its threshold (validation
    MAE + tolerance), and how many of its days were."""
    out = {}
    for version in sorted({r["model_version"] for r in rows}, key=int):
        if version not in vals:
            continue
        threshold = rule.threshold(vals[version])
        rolled = [
            {**r, "rolling_mae": r["rolling"]}
            for r in rolling(
                [{**r, "value": r["mae"]} for r in rows if r["model_version"] == version], rule.window_days
            )
        ]
        over = [r for r in rolled if rule.degraded(r["rolling_mae"], vals[version])]
        out[f"v{version}"] = {
            "val_mae": vals[version],
            "threshold": threshold,
            "served_days": len(rolled),
            "first_day_over": over[0]["ds"] if over else None,
            "rolling_mae_then": over[0]["rolling_mae"] if over else None,
            "days_over": len(over),
            "max_rolling_mae": max((r["rolling_mae"] for r in rolled), default=None),
        }
    return out


def bias_alert(rows: list[dict], window_days: int, alert: float) -> dict:
    """The first day the trailing ``window_days`` flights-weighted bias of the served predictions
    (every version) was beyond ``alert`` minutes either way, and its value then; and the largest
    trailing bias of the year either way, with its day."""
    days = sorted({r["ds"] for r in rows})
    first_over, extreme = None, None
    for ds in days:
        first = shift(ds, -(window_days - 1))
        trailing = weighted([r for r in rows if first <= r["ds"] <= ds])
        if not trailing:
            continue
        if first_over is None and abs(trailing["bias"]) > alert:
            first_over = {"first_day_over": ds, "bias": trailing["bias"]}
        if extreme is None or abs(trailing["bias"]) > abs(extreme["bias"]):
            extreme = {"ds": ds, "bias": trailing["bias"]}
    return {
        **(first_over or {"first_day_over": None}),
        "extreme": extreme,
        "window_days": window_days,
        "alert": alert,
    }


def effect(rows: list[dict], record: dict) -> dict:
    """Live MAE of the old champion over the N days before the promotion against the new champion
    over the N days from it (N in ``EFFECT_DAYS``); days the window reaches that were not scored
    yet are simply not there (``days`` says how many were)."""
    if not record.get("score_from"):
        return {}
    promo, old, new = record["score_from"], str(record["champion_version"]), str(record["version"])
    out = {}
    for n in EFFECT_DAYS:
        before = weighted(
            [r for r in rows if r["model_version"] == old and shift(promo, -n) <= r["ds"] < promo]
        )
        after = weighted(
            [r for r in rows if r["model_version"] == new and promo <= r["ds"] <= shift(promo, n - 1)]
        )
        out[f"{n}d"] = {"before": before, "after": after}
    return out


def same_flights(spark, cfg: Settings, summary: dict) -> None:
    """Add to each promotion's effect the retired champion scored on the very flights the new one
    served in its first N days: the live figures before and after are of different days, and the
    season moves meanwhile. (Final report only: it loads models and reads features.)"""
    import mlflow
    from pyspark.sql import functions as F

    from spark_jobs.common import read_partitions
    from spark_jobs.flights.project import LABEL

    rows = monitoring_rows(cfg.data_root, "0000", "9999")
    for record in summary["retrainings"]:
        promo = record.get("score_from")
        if not promo:
            continue
        new, old = str(record["version"]), str(record["champion_version"])
        model = None
        for n in EFFECT_DAYS:
            days = sorted(
                {
                    r["ds"]
                    for r in rows
                    if r["model_version"] == new and promo <= r["ds"] <= shift(promo, n - 1)
                }
            )
            if not days:
                continue
            model = model or mlflow.spark.load_model(f"models:/{cfg.model_name}/{old}")
            flights = read_partitions(spark, cfg.data_root, "features", days).where(F.col(LABEL).isNotNull())
            err = F.col("prediction") - F.col(LABEL)
            got = (
                model.transform(flights)
                .agg(F.count(F.lit(1)).alias("n"), F.avg(F.abs(err)).alias("mae"), F.avg(err).alias("bias"))
                .first()
            )
            record["effect"][f"{n}d"]["old_on_same_flights"] = {
                "version": int(old),
                "days": len(days),
                "flights": int(got["n"]),
                "mae": float(got["mae"]),
                "bias": float(got["bias"]),
            }


def summarize(root: str, cfg: Settings, rule: RetrainRule, args, state: State, extra: dict) -> dict:
    from mlcycle import registry

    rows = monitoring_rows(root, args.start_scoring, args.end)
    from mlcycle.monitoring.live import validation_values

    vals = validation_values(cfg, "mae")
    months = by_month(rows)
    over_months = [m for m, v in months.items() if abs(v["bias"]) > args.bias_alert]
    retrainings = sorted(state.retrainings.values(), key=lambda r: r["fired_on"])
    return {
        **extra,
        "data_root": root,
        "tracking_uri": cfg.tracking_uri,
        "model_name": cfg.model_name,
        "scoring_window": f"{args.start_scoring}..{args.end}",
        "rule": vars(rule),
        "evidence_rules": {
            "min_improvement": args.min_improvement,
            "slice_tolerance": args.slice_tolerance,
            "min_slice_rows": args.min_slice_rows,
        },
        "days_monitored": len({r["ds"] for r in rows}),
        "live_overall": weighted(rows),
        "live_by_month": months,
        "threshold_crossings": crossings(rows, vals, rule),
        "bias": {
            **bias_alert(rows, args.bias_days, args.bias_alert),
            "first_month_over": over_months[0] if over_months else None,
        },
        "retrainings": [{**r, "effect": effect(rows, r)} for r in retrainings],
        "champion_history": registry.champion_history(cfg.tracking_uri, cfg.model_name),
        "val_mae_by_version": vals,
    }


def save_chart(root: str, cfg: Settings, rule: RetrainRule) -> str:
    """The monitoring DAG's chart, drawn over the whole replay and attached to every version's
    monitoring run."""
    from mlcycle.monitoring.live import all_history, write_chart

    return write_chart(cfg, rule, sorted({h["ds"] for h in all_history(cfg.model_root, rule.metric)}))


def _f(value, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def print_report(s: dict) -> None:
    print(f"year feedback: scored {s['scoring_window']} under {s['data_root']} ({s['model_name']})")
    rule = s["rule"]
    print(
        f"  rule: rolling {rule['window_days']}-day MAE over champion val MAE {rule['tolerance']:+g} on "
        f"{rule['consecutive_days']} days in a row; cooling-off {rule['cooling_off_days']} days; retrain on the "
        f"last {rule['train_days']} days (holdout {rule['holdout_days']}); evidence min_improvement "
        f"{s['evidence_rules']['min_improvement']:g}"
    )
    fc = s.get("first_champion")
    if fc:
        print(
            f"  first champion v{fc['version']}: trained on {fc['window']} (val {fc['val_days']}, val MAE "
            f"{_f(fc['val_mae'])}), {fc['outcome']}, serving from {fc['promoted_at'][:10]}"
            + (
                " (finished training run reused)"
                if fc["reused_finished_run"]
                else f", training {fc['wall_seconds']:.0f} s"
            )
        )
    data = s.get("data")
    if data:
        raw, feats = data["raw_gate"], data["features"]

        def listed(days) -> str:
            return f" ({', '.join(sorted(days))})" if days else ""

        print(
            f"  data: raw gate {raw['days']} days, {raw['ran']} run + {raw['skipped']} passed before, "
            f"{len(raw['held'])} held{listed(raw['held'])}; features {feats['days']} days, {feats['ran']} "
            f"built + {feats['skipped']} before, {len(feats['held'])} held{listed(feats['held'])}, "
            f"{len(feats['raw_not_passed'])} without validated data{listed(feats['raw_not_passed'])}"
        )
    days = s.get("days")
    if days:
        print(
            f"  days: {days['scored']} scored now + {days['already_done']} scored before, "
            f"{len(days['no_features'])} without features (held upstream: {', '.join(days['no_features']) or 'none'}), "
            f"{len(days['predictions_rejected'])} predictions rejected; {s['days_monitored']} days monitored in all"
        )
    header = f"  {'month':7s} {'days':>4s} {'flights':>8s} {'MAE':>6s} {'RMSE':>6s} {'bias':>6s}  served by"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for month, m in s["live_by_month"].items():
        print(
            f"  {month:7s} {m['days']:>4d} {m['flights']:>8,} {m['mae']:>6.2f} {m['rmse']:>6.2f} "
            f"{m['bias']:>+6.2f}  {', '.join(m['versions'])}"
        )
    if s["live_overall"]:
        o = s["live_overall"]
        print(
            f"  {'all':7s} {o['days']:>4d} {o['flights']:>8,} {o['mae']:>6.2f} {o['rmse']:>6.2f} {o['bias']:>+6.2f}"
        )
    for version, c in s["threshold_crossings"].items():
        print(
            f"  {version}: val MAE {c['val_mae']:.2f}, threshold {c['threshold']:.2f}; served {c['served_days']} days, "
            + (
                f"rolling MAE first over it on {c['first_day_over']} ({c['rolling_mae_then']:.2f}), "
                f"{c['days_over']} day(s) over; max {c['max_rolling_mae']:.2f}"
                if c["first_day_over"]
                else f"never over it (max {_f(c['max_rolling_mae'])})"
            )
        )
    b = s["bias"]
    print(
        f"  bias: trailing {b['window_days']}-day bias first beyond ±{b['alert']:g} min on "
        + (f"{b['first_day_over']} ({b['bias']:+.2f})" if b["first_day_over"] else "no day")
        + f"; first calendar month beyond it: {b['first_month_over'] or 'none'}"
        + (f"; largest {b['extreme']['bias']:+.2f} on {b['extreme']['ds']}" if b.get("extreme") else "")
    )
    if not s["retrainings"]:
        print("  retrainings: none fired")
    for r in s["retrainings"]:
        line = (
            f"  retraining fired {r['fired_on']}: rolling MAE {r['rolling_mae']:.2f} > threshold {r['threshold']:.2f} "
            f"(v{r['champion_version']}, {r['days_over']} days over); window {r['window']} (holdout {r['holdout_days']})"
        )
        print(line)
        if r.get("version") is None:
            print(f"    {r['outcome']}: {r.get('message', '')}")
            continue
        print(
            f"    challenger v{r['version']}: holdout {r['val_days']} MAE {_f(r['challenger_val_mae'])} vs champion "
            f"v{r['compared_with']} {_f(r['champion_holdout_mae'])} (delta {_f(r['delta'], '+.2f')}) -> {r['outcome']}"
            + (f"; reasons: {'; '.join(r['reasons'])}" if r["reasons"] else "")
            + (f"; serving from {r['score_from']}" if r.get("score_from") else "")
        )
        for span, e in (r.get("effect") or {}).items():
            before, after = e["before"], e["after"]
            print(
                f"    live MAE {span}: v{r['champion_version']} before "
                + (
                    f"{before['mae']:.2f} (bias {before['bias']:+.2f}, {before['days']} d)"
                    if before
                    else "n/a"
                )
                + f" -> v{r['version']} after "
                + (f"{after['mae']:.2f} (bias {after['bias']:+.2f}, {after['days']} d)" if after else "n/a")
                + (
                    f"; v{e['old_on_same_flights']['version']} on the same flights "
                    f"{e['old_on_same_flights']['mae']:.2f} (bias {e['old_on_same_flights']['bias']:+.2f})"
                    if e.get("old_on_same_flights")
                    else ""
                )
            )
    if s.get("chart"):
        print(f"  chart: {s['chart']}")
    if s.get("phase_seconds"):
        print("  phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in s["phase_seconds"].items()))


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv=None):
    from mlcycle.specs import find_model

    base = RetrainRule.of(find_model(MODEL))
    evaluation = find_model(MODEL).evaluation
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-root", default=None, help="reused when it exists (default: a new temp folder)"
    )
    parser.add_argument("--train-start", default="2013-01-01", help="first champion's window")
    parser.add_argument("--train-end", default="2013-03-31")
    parser.add_argument("--holdout-days", type=int, default=7, help="first champion's holdout")
    parser.add_argument(
        "--first-airflow-run-id",
        default=None,
        help="tag of the first champion's training run; the id of a finished run reuses it "
        "(default: year_feedback__first__START__END)",
    )
    parser.add_argument(
        "--start-scoring", default=None, help="first day scored (default: the day after --train-end)"
    )
    parser.add_argument("--end", default=f"{YEAR}-12-31", help="last day gated, built and scored")
    rule = parser.add_argument_group("retraining rule (mlcycle.monitoring.retraining.RetrainRule)")
    rule.add_argument("--tolerance", type=float, default=base.tolerance)
    rule.add_argument("--consecutive-days", type=int, default=base.consecutive_days)
    rule.add_argument("--rolling-days", type=int, default=base.window_days)
    rule.add_argument("--cooling-off-days", type=int, default=base.cooling_off_days)
    rule.add_argument("--retrain-window-days", type=int, default=base.train_days)
    rule.add_argument("--retrain-holdout-days", type=int, default=base.holdout_days)
    ev = parser.add_argument_group("automatic rejection (evaluation.evidence, as air_time_training)")
    ev.add_argument("--min-improvement", type=float, default=evaluation["min_improvement"])
    ev.add_argument("--slice-tolerance", type=float, default=evaluation["slice_tolerance"])
    ev.add_argument("--min-slice-rows", type=int, default=evaluation["min_slice_rows"])
    parser.add_argument("--bias-alert", type=float, default=5.0, help="minutes of bias reported as an alert")
    parser.add_argument("--bias-days", type=int, default=30, help="trailing days of the bias alert")
    parser.add_argument("--data-only", action="store_true", help="gate and build the days, then stop")
    parser.add_argument("--report-only", action="store_true", help="recompute the figures of the root only")
    parser.add_argument(
        "--json", default=None, help="also write the summary to this file (rewritten as it goes)"
    )
    args = parser.parse_args(argv)
    args.start_scoring = args.start_scoring or next_day(args.train_end)
    args.first_airflow_run_id = args.first_airflow_run_id or (
        f"year_feedback__first__{args.train_start}__{args.train_end}"
    )
    days_between(args.start_scoring, args.end)  # raises on a reversed window
    rule = replace(
        base,
        tolerance=args.tolerance,
        consecutive_days=args.consecutive_days,
        window_days=args.rolling_days,
        cooling_off_days=args.cooling_off_days,
        train_days=args.retrain_window_days,
        holdout_days=args.retrain_holdout_days,
    )
    return args, rule


def main(argv=None) -> int:
    args, rule = parse_args(argv)
    root = (
        str(Path(args.data_root).resolve()) if args.data_root else tempfile.mkdtemp(prefix="year_feedback_")
    )
    Path(root).mkdir(parents=True, exist_ok=True)
    cfg = settings_for(root, "")
    tracking_uri = use_mlflow_store(root, cfg.model_name)
    use_mlflow_store(root, f"{cfg.model_name}-monitoring")  # its artifacts under the root too
    # After mlflow's import, which sets its own level: one INFO line per model load otherwise.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    cfg = settings_for(root, tracking_uri)
    state = State(root)
    phases: dict[str, float] = {}
    extra: dict = {"complete": False}

    def write(summary: dict) -> None:
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=2, default=str) + "\n")

    if args.report_only:
        summary = summarize(root, cfg, rule, args, state, {"report_only": True})
        if any(r.get("score_from") for r in summary["retrainings"]):
            spark = start_spark()
            same_flights(spark, cfg, summary)
            spark.stop()
        summary["chart"] = save_chart(root, cfg, rule)
        print_report(summary)
        write(summary)
        return 0

    from spark_jobs.flights.project import HISTORY_DAYS

    last_before = args.end if args.data_only else shift(args.start_scoring, -1)
    first_raw = max(
        dt.date.fromisoformat(args.train_start) - dt.timedelta(days=HISTORY_DAYS), dt.date(YEAR, 1, 1)
    ).isoformat()
    before = lambda first: days_between(first, last_before) if first <= last_before else []  # noqa: E731

    spark = start_spark()
    load_reference(root)
    data = DataPath(spark, root)
    data.run(before(first_raw), before(args.train_start))
    extra["data"] = data.record()
    progress(f"data before scoring: {data.line()}")
    if args.data_only:
        spark.stop()
        print(json.dumps({"data_root": root, **data.record()}, indent=2))
        return 0

    def data_seconds() -> float:
        return round(data.raw["seconds"] + data.features["seconds"], 1)

    phases["data_before_scoring"] = data_seconds()

    started = time.monotonic()
    extra["first_champion"] = first_champion(root, cfg, args)
    phases["first_champion"] = round(time.monotonic() - started, 1)
    progress(f"first champion: v{extra['first_champion']['version']} ({extra['first_champion']['outcome']})")

    replay_started = time.monotonic()

    def checkpoint(log: dict, seconds: dict) -> None:
        extra["days"] = {
            "scored": len(log["scored"]),
            "already_done": len(log["already_done"]),
            "no_features": log["no_features"],
            "predictions_rejected": log["predictions_rejected"],
            "last_scored": log["scored"][-1] if log["scored"] else None,
        }
        extra["daily_decisions"] = log["decisions"]
        extra["phase_seconds"] = {
            **phases,
            "data_during_replay": round(data_seconds() - phases["data_before_scoring"], 1),
            **{k: round(v, 1) for k, v in seconds.items()},
            "replay_wall": round(time.monotonic() - replay_started, 1),
        }
        try:
            write(summarize(root, cfg, rule, args, state, extra))
        except Exception:  # a checkpoint must not stop the replay
            progress("checkpoint failed:\n" + traceback.format_exc())

    result = replay(
        spark, cfg, rule, days_between(args.start_scoring, args.end), args, state, data, checkpoint
    )
    checkpoint(result["log"], result["seconds"])
    phases["data_during_replay"] = round(data_seconds() - phases["data_before_scoring"], 1)
    phases.update(result["seconds"])
    phases["replay_wall"] = round(time.monotonic() - replay_started, 1)

    started = time.monotonic()
    extra["complete"] = True
    extra["phase_seconds"] = phases
    summary = summarize(root, cfg, rule, args, state, extra)
    same_flights(spark, cfg, summary)
    spark.stop()
    summary["chart"] = save_chart(root, cfg, rule)
    phases["report"] = round(time.monotonic() - started, 1)
    print_report(summary)
    write(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
