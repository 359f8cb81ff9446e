"""The steps of the training DAG around the Spark job: check the inputs, weigh the evidence, act on
the person's decision. Plain functions of explicit arguments, testable without Airflow (the
training job imports this module too, so it imports nothing of Airflow)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from mlcycle.config import Settings, days_between, next_day, partition_path
from mlcycle.gates import TASK_GATES, read_result, result_path

# The verdicts every day of a training window must carry, in the order the data path writes them.
TRAINING_GATES = (*TASK_GATES["validate_raw"], *TASK_GATES["build_features"])
# The gate whose rows the model learns from: its counts are the run's data metrics.
ROWS_GATE = "raw_flights"
COUNTS = ("rows", "validated", "quarantined")
SHOWN_RANGES = 10  # day ranges quoted per problem; the rest are counted


class TrainingInputError(ValueError):
    """The window cannot be trained on; the message says which days are missing or failed."""


def _count(verdict: dict, key: str) -> int | None:
    value = verdict.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def gate_entry(verdict: dict | None) -> dict:
    """What the lifecycle keeps of one verdict: passed or not, rows read, kept and set aside.

    A verdict that does not split the rows (no ``validated`` / ``quarantined``) and passed kept
    every row it read; a failed one without them leaves the counts unknown (null).
    """
    if verdict is None:
        return {"success": False, "missing": True, "rows": None, "validated": None, "quarantined": None}
    success = verdict.get("success") is True
    rows, validated, quarantined = (_count(verdict, key) for key in COUNTS)
    if success and rows is not None:
        if quarantined is None:
            quarantined = 0 if validated is None else max(rows - validated, 0)
        if validated is None:
            validated = rows - quarantined
    return {"success": success, "rows": rows, "validated": validated, "quarantined": quarantined}


def _verdict(data_root: str, gate: str, ds: str) -> dict | None:
    try:
        return read_result(data_root, gate, ds)
    except (OSError, ValueError) as exc:  # unreadable counts as not passed, with the reason
        return {"success": False, "unreadable": f"{type(exc).__name__}: {exc}"}


def data_quality_summary(data_root: str, days: list[str]) -> dict:
    """The gate verdicts of ``days`` as one JSON-able record, the one a training run keeps.

    ``days`` maps each day to its gates (``raw_flights``, ``raw_weather``, ``features``), each
    ``{success, rows, validated, quarantined}`` (``missing: true`` when the gate never ran).
    ``totals`` counts the days, says whether every gate of every day passed, and sums the rows of
    ``raw_flights`` (the rows the model learns from); ``totals.by_gate`` sums every gate.
    """
    per_day: dict[str, dict[str, dict]] = {}
    for ds in days:
        per_day[ds] = {}
        for gate in TRAINING_GATES:
            verdict = _verdict(data_root, gate, ds)
            entry = gate_entry(verdict)
            if verdict and "unreadable" in verdict:
                entry["unreadable"] = verdict["unreadable"]
            per_day[ds][gate] = entry
    by_gate = {
        gate: {key: sum(entries[gate][key] or 0 for entries in per_day.values()) for key in COUNTS}
        for gate in TRAINING_GATES
    }
    return {
        "window": {"start": days[0], "end": days[-1]} if days else None,
        "gates": list(TRAINING_GATES),
        "days": per_day,
        "totals": {
            "days": len(days),
            "all_passed": bool(days)
            and all(entry["success"] for entries in per_day.values() for entry in entries.values()),
            **by_gate[ROWS_GATE],
            "by_gate": by_gate,
        },
    }


def _ranges(days: list[str]) -> str:
    """``2013-01-01..2013-01-03, 2013-01-07``: runs of consecutive days, the first few quoted."""
    runs: list[list[str]] = []
    for ds in days:
        if runs and date.fromisoformat(ds) - date.fromisoformat(runs[-1][-1]) == timedelta(days=1):
            runs[-1].append(ds)
        else:
            runs.append([ds])
    shown = [run[0] if len(run) == 1 else f"{run[0]}..{run[-1]}" for run in runs[:SHOWN_RANGES]]
    more = len(runs) - SHOWN_RANGES
    return ", ".join(shown) + (f" and {more} more range(s)" if more > 0 else "")


def training_input_problems(data_root: str, summary: dict) -> tuple[list[str], list[str], list[str]]:
    """(lines naming each problem, days to backfill, days whose data a gate rejected)."""
    lines: list[str] = []
    to_backfill: set[str] = set()
    rejected: set[str] = set()
    for gate in summary["gates"]:
        missing = [ds for ds, entries in summary["days"].items() if entries[gate].get("missing")]
        unreadable = [ds for ds, entries in summary["days"].items() if entries[gate].get("unreadable")]
        failed = [
            ds
            for ds, entries in summary["days"].items()
            if not entries[gate]["success"] and ds not in missing and ds not in unreadable
        ]
        if failed:
            where = result_path(data_root, gate, failed[0] if len(failed) == 1 else "<day>")
            lines.append(f"{gate} gate failed for {_ranges(failed)} (see {where})")
            rejected.update(failed)
        if missing:
            lines.append(f"{gate} gate missing for {_ranges(missing)}")
            to_backfill.update(missing)
        for ds in unreadable:
            lines.append(
                f"{gate} verdict of {ds} unreadable ({summary['days'][ds][gate]['unreadable']}): "
                f"{result_path(data_root, gate, ds)}"
            )
            to_backfill.add(ds)
    passed = [ds for ds, entries in summary["days"].items() if entries["features"]["success"]]
    no_features = [ds for ds in passed if not Path(partition_path(data_root, "features", ds)).is_dir()]
    if no_features:
        lines.append(f"no features partition for {_ranges(no_features)} under {data_root}/features")
        to_backfill.update(no_features)
    return lines, sorted(to_backfill - rejected), sorted(rejected)


def check_training_inputs(data_root: str, start: str, end: str, holdout_days: int) -> list[str]:
    """Every day of the window passed every gate of the data path (``TRAINING_GATES``) and has
    its features partition; otherwise one error names every missing or failed day and gate."""
    days = days_between(start, end)
    if len(days) <= holdout_days:
        raise TrainingInputError(
            f"window {start}..{end} has {len(days)} days: it needs more than holdout_days={holdout_days}"
        )
    lines, to_backfill, rejected = training_input_problems(data_root, data_quality_summary(data_root, days))
    if lines:
        actions = []
        if to_backfill:
            actions.append(f"Backfill flights_data over {_ranges(to_backfill)} first.")
        if rejected:
            actions.append(
                f"The data of {_ranges(rejected)} was rejected: read the verdicts and their Data Docs, "
                "have the upstream drop fixed, then backfill flights_data over those days again."
            )
        raise TrainingInputError(
            f"cannot train on {start}..{end}:\n"
            + "".join(f"  - {line}\n" for line in lines)
            + " ".join(actions)
        )
    return days


def evaluate_challenger(
    cfg: Settings,
    version: int,
    min_improvement: float,
    airflow_run_id: str,
    carrier_tolerance: float = 5.0,
    min_carrier_flights: int = 30,
) -> dict:
    """The evidence for the sign-off; a clearly worse challenger is rejected by rule here."""
    from mlcycle import registry

    evidence = registry.evidence(
        cfg.tracking_uri,
        cfg.model_name,
        version,
        min_improvement=min_improvement,
        carrier_tolerance=carrier_tolerance,
        min_carrier_flights=min_carrier_flights,
    )
    evidence["markdown"] = evidence.get("markdown", "") + _links(cfg, version, evidence)
    if evidence["auto_reject"]:
        rules = sorted({reason.split(":", 1)[0] for reason in evidence["reasons"]})
        registry.record_rejection(
            cfg.tracking_uri,
            cfg.model_name,
            version,
            decided_by="rule:" + ",".join(rules),
            comment="; ".join(evidence["reasons"]),
            airflow_run_id=airflow_run_id,
            decided_at=_iso(None),
        )
    return evidence


def _links(cfg: Settings, version: int, evidence: dict) -> str:
    run_id = evidence.get("run_id") or evidence.get("challenger_run_id")
    lines = ["", "", "**Links**", ""]
    lines.append(f"- Model version: {_mlflow_ui(cfg)}/#/models/{cfg.model_name}/versions/{version}")
    if run_id:
        run = f"{_mlflow_ui(cfg)}/#/experiments/{evidence.get('experiment_id', '0')}/runs/{run_id}"
        lines.append(f"- Training run: {run}")
        lines.append(f"- Per-carrier comparison and data-quality record: {run}/artifacts")
    if evidence.get("code_version"):
        lines.append(f"- Code version: {evidence['code_version']}")
    return "\n".join(lines)


def _mlflow_ui(cfg: Settings) -> str:
    return cfg.tracking_uri.rstrip("/")


def _iso(value: Any) -> str:
    """A decision's time as ISO-8601; a timeout carries none, so it is the time of recording."""
    if value is None:
        return datetime.now().astimezone().isoformat()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _decider(decision: dict) -> str:
    user = decision.get("responded_by_user") or {}
    if isinstance(user, dict) and (user.get("name") or user.get("id")):
        return str(user.get("name") or user.get("id"))
    return "timeout (default: Reject)"


def _comment(decision: dict) -> str:
    return str((decision.get("params_input") or {}).get("comment") or "")


def _decision_args(decision: dict, airflow_run_id: str) -> dict:
    """Who decided, when, why, in which run: what every decision writes on the version."""
    return {
        "decided_by": _decider(decision),
        "comment": _comment(decision),
        "airflow_run_id": airflow_run_id,
        "decided_at": _iso(decision.get("responded_at")),
    }


def promote_on_approval(
    cfg: Settings, version: int, decision: dict, airflow_run_id: str, train_end: str
) -> str:
    """Move ``champion`` to the approved version; return the first day it should score."""
    from mlcycle import registry

    chosen = (decision or {}).get("chosen_options") or []
    if chosen != ["Approve"]:
        raise ValueError(f"promotion needs an approval, got {chosen!r}")
    registry.promote(
        cfg.tracking_uri,
        cfg.model_name,
        version,
        **_decision_args(decision, airflow_run_id),
    )
    return next_day(train_end)


def record_decision(
    cfg: Settings, version: int, decision: dict | None, auto_rejected: bool, airflow_run_id: str
) -> str:
    """Write a rejection (by a person or by timeout) on the version; check an approval landed."""
    from mlcycle import registry

    if not decision:
        if auto_rejected:
            return "rejected by rule"
        raise RuntimeError(f"no sign-off decision was recorded for version {version}")
    chosen = decision.get("chosen_options") or []
    if chosen == ["Approve"]:
        if not registry.promotion_landed(cfg.tracking_uri, cfg.model_name, version, airflow_run_id):
            current = registry.champion(cfg.tracking_uri, cfg.model_name)
            raise RuntimeError(f"approved version {version} was not promoted (champion is {current})")
        current = registry.champion(cfg.tracking_uri, cfg.model_name)
        return "approved" if current == version else f"approved; since replaced by v{current}"
    registry.record_rejection(
        cfg.tracking_uri,
        cfg.model_name,
        version,
        **_decision_args(decision, airflow_run_id),
    )
    return "rejected"
