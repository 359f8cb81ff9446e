"""The comparison an approver reads: challenger and champion on the same validation rows, overall
and per value of the model's slicing column (the carrier for the flights models), in the metric
that decides for the model (MAE, AUC, ...), the automatic rules that spare a person a clearly
worse challenger, and the plot of it. Pure functions of plain data (``evaluation.json`` of the
training run), no Spark.

``evaluation.json``::

    {"val_days": [...], "rows": 1813, "champion_version": "1" | null,
     "metric": "mae", "higher_is_better": false, "slice": "carrier",
     "overall": {"challenger": {"mae": .., "rmse": ..}, "champion": {...} | null},
     "per_slice": [{"value": "AA", "rows": 150, "challenger": .., "champion": .. | null,
                    "delta": .. | null}]}

``delta`` is always challenger - champion; whether that is worse depends on the metric.
"""

from __future__ import annotations

from dataclasses import dataclass

EVALUATION_ARTIFACT = "evaluation.json"
PLOT_ARTIFACT = "evaluation/per_slice.png"
LABELS = {
    "mae": "MAE",
    "rmse": "RMSE",
    "r2": "R²",
    "auc": "AUC",
    "log_loss": "log loss",
    "calibration": "calibration error",
}


def label(metric: str) -> str:
    return LABELS.get(metric, metric)


@dataclass(frozen=True)
class Rules:
    """When a challenger is rejected without asking anyone (a model's ``[evaluation]``).

    ``min_improvement``: how much better than the champion it must be overall, in the deciding
    ``metric`` (negative lets a slightly worse one through). ``slice_tolerance``: how much worse
    than the champion it may be on any one value of the ``slice`` column with at least
    ``min_slice_rows`` validation rows."""

    min_improvement: float = 0.0
    slice_tolerance: float = 5.0
    min_slice_rows: int = 30
    metric: str = "mae"
    higher_is_better: bool = False
    slice: str = "carrier"

    @classmethod
    def of(cls, model, **overrides) -> Rules:
        """The rules of a model spec (``mlcycle.specs.Model``), with overrides of a run."""
        e = model.evaluation
        values = {
            "min_improvement": float(e["min_improvement"]),
            "slice_tolerance": float(e["slice_tolerance"]),
            "min_slice_rows": int(e["min_slice_rows"]),
        }
        values |= {k: type(values[k])(v) for k, v in overrides.items() if v is not None}
        return cls(**values, metric=model.deciding, higher_is_better=model.higher_is_better, slice=e["slice"])

    def worse_by(self, delta: float) -> float:
        """How much worse the challenger is, from ``delta`` = challenger - champion."""
        return -delta if self.higher_is_better else delta


def per_slice_rows(
    challenger: dict[str, dict], champion: dict[str, dict] | None, metric: str, higher_is_better: bool = False
) -> list[dict]:
    """Join the per-slice metrics of both models (``{value: {rows, <metric>, ...}}``), worst
    first."""
    sign = -1.0 if higher_is_better else 1.0
    rows = []
    for value, mine in challenger.items():
        theirs = (champion or {}).get(value)
        ours, their = mine.get(metric), (theirs or {}).get(metric)
        rows.append(
            {
                "value": value,
                "rows": int(mine["rows"]),
                "challenger": ours,
                "champion": their,
                "delta": None if ours is None or their is None else ours - their,
            }
        )
    return sorted(rows, key=lambda r: (r["delta"] is None, -sign * (r["delta"] or 0.0), str(r["value"])))


def rejection_reasons(evaluation: dict | None, overall_delta: float | None, rules: Rules) -> list[str]:
    """Why the challenger is rejected by rule; empty when a person should decide. Without a
    champion to compare with there is nothing to reject on."""
    reasons = []
    name = label(rules.metric)
    if overall_delta is not None and -rules.worse_by(overall_delta) < rules.min_improvement:
        reasons.append(
            f"min_improvement: overall {name} {overall_delta:+.3f} against the champion, "
            f"the rule asks for an improvement of at least {rules.min_improvement}"
        )
    for row in (evaluation or {}).get("per_slice", []):
        delta = row.get("delta")
        if delta is None or row["rows"] < rules.min_slice_rows:
            continue
        if rules.worse_by(delta) > rules.slice_tolerance:
            reasons.append(
                f"slice_tolerance: {rules.slice} {row['value']} {name} {delta:+.3f} against the champion "
                f"on {row['rows']} rows, worse by more than the {rules.slice_tolerance} allowed"
            )
    return reasons


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:+.3f}" if isinstance(value, float) else str(value)


def slice_table(evaluation: dict | None, rules: Rules, shown: int = 8) -> str:
    """Markdown: the slices where the challenger does worst, against the champion."""
    rows = (evaluation or {}).get("per_slice", [])
    if not rows:
        return ""
    lines = [
        "",
        f"**Per {rules.slice}** (validation {label(rules.metric)}, worst first; the rule allows "
        f"{rules.slice_tolerance} worse on a {rules.slice} with at least {rules.min_slice_rows} rows)",
        "",
        f"| {rules.slice} | rows | challenger | champion | delta |",
        "|---|---|---|---|---|",
    ]
    for row in rows[:shown]:
        champion = "n/a" if row["champion"] is None else f"{row['champion']:.3f}"
        mine = "n/a" if row["challenger"] is None else f"{row['challenger']:.3f}"
        lines.append(f"| {row['value']} | {row['rows']} | {mine} | {champion} | {_fmt(row['delta'])} |")
    if len(rows) > shown:
        lines.append(f"| ... {len(rows) - shown} more | | | | |")
    return "\n".join(lines)


def plot_per_slice(evaluation: dict):
    """A bar chart of the deciding metric per slice, challenger beside champion (a matplotlib
    figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(evaluation.get("per_slice", []), key=lambda r: str(r["value"]))
    values = [str(r["value"]) for r in rows]
    positions = range(len(rows))
    name = label(evaluation.get("metric", "mae"))
    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 0.6), 4))
    width = 0.4
    ax.bar(
        [p - width / 2 for p in positions], [r["challenger"] or 0.0 for r in rows], width, label="challenger"
    )
    if any(r["champion"] is not None for r in rows):
        ax.bar(
            [p + width / 2 for p in positions],
            [r["champion"] or 0.0 for r in rows],
            width,
            label=f"champion v{evaluation.get('champion_version')}",
        )
    ax.set_xticks(list(positions), values)
    ax.set_ylabel(f"validation {name}")
    days = evaluation.get("val_days") or []
    title = f"{name} per {evaluation.get('slice', 'slice')}"
    ax.set_title(f"{title}, {days[0]}..{days[-1]}" if days else title)
    ax.legend()
    fig.tight_layout()
    return fig


# --- the evidence of a registered challenger, from its training run ---------------------------


def _fmt3(value) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def evidence(
    tracking_uri: str, model_name: str, version: int, *, rules, metrics: tuple[str, ...] = ()
) -> dict:
    """What an approver needs, from the challenger's training run.

    ``rules`` (``mlcycle.evaluation.Rules``) names the deciding metric and its direction, and
    when a challenger is rejected without asking anyone; ``metrics`` the model's other metrics
    shown beside it. ``delta`` is challenger - champion in the deciding metric on the same
    validation days; ``improvement`` is how much better the challenger is (its opposite for an
    error, itself for a score such as AUC). ``auto_reject`` is true when a rule says so (``reasons``
    says which): ``improvement < min_improvement`` (a negative value lets a slightly worse one
    through to a person, ``0`` rejects any worse one, a positive one demands a real gain), or a
    slice with at least ``min_slice_rows`` validation rows worse by more than ``slice_tolerance``.
    Without a champion to compare with, nothing is rejected.
    """
    from mlcycle.registry import CHAMPION, _alias_version, _client, _json_artifact

    client = _client(tracking_uri)
    mv = client.get_model_version(model_name, str(version))
    run = client.get_run(mv.run_id)
    logged, params, tags = run.data.metrics, run.data.params, run.data.tags
    current_champion = _alias_version(client, model_name, CHAMPION)
    compared = tags.get("champion.version")
    metric = rules.metric
    shown = list(dict.fromkeys([metric, *metrics]))
    champion_value = logged.get(f"champion_val_{metric}")
    challenger_value = logged.get(f"val_{metric}")
    delta = None if champion_value is None or challenger_value is None else challenger_value - champion_value
    evaluation = _json_artifact(client, mv.run_id, EVALUATION_ARTIFACT)
    quality = _json_artifact(client, mv.run_id, "data_quality.json")
    reasons = rejection_reasons(evaluation if compared else None, delta, rules)
    result = {
        "model_name": model_name,
        "version": int(version),
        "run_id": mv.run_id,
        "experiment_id": run.info.experiment_id,
        "window": f"{params.get('window_start')}..{params.get('window_end')}",
        "val_days": params.get("val_days"),
        "val_rows": None if logged.get("val_rows") is None else int(logged["val_rows"]),  # a count
        "metric": metric,
        "metrics": shown,
        "higher_is_better": rules.higher_is_better,
        **{f"challenger_val_{m}": logged.get(f"val_{m}") for m in shown},
        "champion_version": int(compared) if compared else None,
        **{f"champion_val_{m}": logged.get(f"champion_val_{m}") for m in shown},
        "current_champion_version": current_champion,
        "champion_changed_since_training": (
            current_champion is not None and str(current_champion) != (compared or "")
        ),
        "delta": delta,
        "improvement": None if delta is None else -rules.worse_by(delta),
        "min_improvement": rules.min_improvement,
        "slice": rules.slice,
        "slice_tolerance": rules.slice_tolerance,
        "min_slice_rows": rules.min_slice_rows,
        "per_slice": (evaluation or {}).get("per_slice", []),
        "plot": PLOT_ARTIFACT if evaluation else None,
        "data_quality": (quality or {}).get("totals"),
        "code_version": tags.get("code.version"),
        "reasons": reasons,
        "auto_reject": bool(reasons),
    }
    result["markdown"] = _evidence_markdown(result, evaluation, rules)
    return result


def _evidence_markdown(e: dict, evaluation: dict | None, rules) -> str:
    champion = f"champion v{e['champion_version']}" if e["champion_version"] else "champion (none)"
    lines = [
        f"**{e['model_name']} v{e['version']}** trained on {e['window']}, validated on "
        f"{e['val_days']} ({_fmt3(e['val_rows'])} rows; both models scored on the same rows).",
        "",
        f"| metric | challenger v{e['version']} | {champion} | delta |",
        "|---|---|---|---|",
    ]
    for m in e["metrics"]:
        mine, theirs = e[f"challenger_val_{m}"], e[f"champion_val_{m}"]
        decides = " (decides)" if m == e["metric"] else ""
        lines.append(
            f"| validation {label(m)}{decides} | {_fmt3(mine)} | {_fmt3(theirs)} | {_fmt3(_diff(mine, theirs))} |"
        )
    table = slice_table(evaluation, rules)
    if table:
        lines.append(table)
    quality = e.get("data_quality")
    if quality:
        lines += [
            "",
            f"**Data**: {quality.get('days')} days, {_fmt3(quality.get('validated'))} rows validated, "
            f"{_fmt3(quality.get('quarantined'))} quarantined; every gate passed: "
            f"{'yes' if quality.get('all_passed') else 'NO'}.",
        ]
    lines += [
        "",
        f"Minimum improvement required in {label(e['metric'])}: {e['min_improvement']}; no {e['slice']} "
        f"worse by more than {e['slice_tolerance']}. "
        + (
            "**Automatic rejection:** " + "; ".join(e.get("reasons") or [])
            if e["auto_reject"]
            else "Within the rules: a person decides."
        ),
    ]
    if e["champion_changed_since_training"]:
        lines.append(
            f"\nNote: the champion is now v{e['current_champion_version']}, not the version this "
            "challenger was compared with."
        )
    return "\n".join(lines)


def _diff(a, b):
    return None if a is None or b is None else a - b
