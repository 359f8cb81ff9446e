"""What a training may be trained on: every day of its window must have passed its gates and have
its features (``check_training_inputs``), and the run keeps what it read
(``data_quality_summary``). Plain functions of explicit arguments, testable without Airflow (the
training job imports this module too, so it imports nothing of Airflow). Weighing the evidence and
acting on the person's decision is ``mlcycle.signoff.promotion``."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from mlcycle.config import days_between, partition_path
from mlcycle.quality.gates import read_result, result_path, task_gates

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


def training_gates(usecase=None) -> tuple[str, ...]:
    """The verdicts every day of a training window must carry, in the order the data path writes
    them: the raw gates of the use case (default: the only one of the catalog), then ``features``."""
    return (*task_gates("validate_raw", usecase), *task_gates("build_features"))


def rows_gate(usecase=None) -> str:
    """The gate whose rows the model learns from (the use case's ``rows_dataset``): its counts are
    the run's data metrics."""
    from mlcycle.specs import find_usecase

    return f"raw_{(usecase or find_usecase()).rows_dataset}"


def data_quality_summary(data_root: str, days: list[str], usecase=None) -> dict:
    """The gate verdicts of ``days`` as one JSON-able record, the one a training run keeps.

    ``days`` maps each day to its gates (``training_gates``: for flights ``raw_flights``,
    ``raw_weather``, ``features``), each ``{success, rows, validated, quarantined}``
    (``missing: true`` when the gate never ran). ``totals`` counts the days, says whether every
    gate of every day passed, and sums the rows of the ``rows_gate`` (the rows the model learns
    from); ``totals.by_gate`` sums every gate.
    """
    gates = training_gates(usecase)
    per_day: dict[str, dict[str, dict]] = {}
    for ds in days:
        per_day[ds] = {}
        for gate in gates:
            verdict = _verdict(data_root, gate, ds)
            entry = gate_entry(verdict)
            if verdict and "unreadable" in verdict:
                entry["unreadable"] = verdict["unreadable"]
            per_day[ds][gate] = entry
    by_gate = {
        gate: {key: sum(entries[gate][key] or 0 for entries in per_day.values()) for key in COUNTS}
        for gate in gates
    }
    return {
        "window": {"start": days[0], "end": days[-1]} if days else None,
        "gates": list(gates),
        "days": per_day,
        "totals": {
            "days": len(days),
            "all_passed": bool(days)
            and all(entry["success"] for entries in per_day.values() for entry in entries.values()),
            **by_gate[rows_gate(usecase)],
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


def check_training_inputs(data_root: str, start: str, end: str, holdout_days: int, usecase=None) -> list[str]:
    """Every day of the window passed every gate of the data path (``training_gates``) and has
    its features partition; otherwise one error names every missing or failed day and gate."""
    from mlcycle.specs import find_usecase

    usecase = usecase or find_usecase()
    days = days_between(start, end)
    if len(days) <= holdout_days:
        raise TrainingInputError(
            f"window {start}..{end} has {len(days)} days: it needs more than holdout_days={holdout_days}"
        )
    summary = data_quality_summary(data_root, days, usecase)
    lines, to_backfill, rejected = training_input_problems(data_root, summary)
    data_dag = f"{usecase.name}_data"
    if lines:
        actions = []
        if to_backfill:
            actions.append(f"Backfill {data_dag} over {_ranges(to_backfill)} first.")
        if rejected:
            actions.append(
                f"The data of {_ranges(rejected)} was rejected: read the verdicts and their Data Docs, "
                f"have the upstream drop fixed, then backfill {data_dag} over those days again."
            )
        raise TrainingInputError(
            f"cannot train on {start}..{end}:\n"
            + "".join(f"  - {line}\n" for line in lines)
            + " ".join(actions)
        )
    return days
