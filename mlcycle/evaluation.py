"""The comparison an approver reads: challenger and champion on the same validation rows, overall
and per carrier, the automatic rules that spare a person a clearly worse challenger, and the
plot of it. Pure functions of plain data (``evaluation.json`` of the training run), no Spark.

``evaluation.json``::

    {"val_days": [...], "rows": 1813, "champion_version": "1" | null,
     "overall": {"challenger": {"mae": .., "rmse": ..}, "champion": {...} | null},
     "per_carrier": [{"carrier": "AA", "flights": 150, "challenger_mae": .., "challenger_rmse": ..,
                      "champion_mae": .. | null, "champion_rmse": .. | null, "delta_mae": .. | null}]}
"""

from __future__ import annotations

from dataclasses import dataclass

EVALUATION_ARTIFACT = "evaluation.json"
PLOT_ARTIFACT = "evaluation/per_carrier_mae.png"


@dataclass(frozen=True)
class Rules:
    """When a challenger is rejected without asking anyone.

    ``min_improvement``: minutes of overall MAE by which it must beat the champion (negative lets
    a slightly worse one through). ``carrier_tolerance``: minutes by which it may be worse than the
    champion on any one carrier with at least ``min_carrier_flights`` validation flights."""

    min_improvement: float = 0.0
    carrier_tolerance: float = 5.0
    min_carrier_flights: int = 30


def per_carrier_rows(challenger: dict[str, dict], champion: dict[str, dict] | None) -> list[dict]:
    """Join the per-carrier metrics of both models (``{carrier: {flights, mae, rmse}}``),
    worst delta first."""
    rows = []
    for carrier, mine in challenger.items():
        theirs = (champion or {}).get(carrier)
        rows.append(
            {
                "carrier": carrier,
                "flights": int(mine["flights"]),
                "challenger_mae": mine["mae"],
                "challenger_rmse": mine["rmse"],
                "champion_mae": theirs["mae"] if theirs else None,
                "champion_rmse": theirs["rmse"] if theirs else None,
                "delta_mae": mine["mae"] - theirs["mae"] if theirs else None,
            }
        )
    return sorted(rows, key=lambda r: (r["delta_mae"] is None, -(r["delta_mae"] or 0.0), r["carrier"]))


def rejection_reasons(evaluation: dict | None, overall_delta: float | None, rules: Rules) -> list[str]:
    """Why the challenger is rejected by rule; empty when a person should decide. Without a
    champion to compare with there is nothing to reject on."""
    reasons = []
    if overall_delta is not None and -overall_delta < rules.min_improvement:
        reasons.append(
            f"min_improvement: overall MAE {overall_delta:+.3f} min against the champion, "
            f"the rule asks for an improvement of at least {rules.min_improvement}"
        )
    for row in (evaluation or {}).get("per_carrier", []):
        delta = row.get("delta_mae")
        if delta is None or row["flights"] < rules.min_carrier_flights:
            continue
        if delta > rules.carrier_tolerance:
            reasons.append(
                f"carrier_tolerance: {row['carrier']} MAE {delta:+.3f} min against the champion on "
                f"{row['flights']} flights, more than the {rules.carrier_tolerance} allowed"
            )
    return reasons


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:+.2f}" if isinstance(value, float) else str(value)


def carrier_table(evaluation: dict | None, rules: Rules, shown: int = 8) -> str:
    """Markdown: the carriers where the challenger does worst, against the champion."""
    rows = (evaluation or {}).get("per_carrier", [])
    if not rows:
        return ""
    lines = [
        "",
        f"**Per carrier** (validation MAE in minutes, worst first; the rule allows "
        f"+{rules.carrier_tolerance} on carriers with at least {rules.min_carrier_flights} flights)",
        "",
        "| carrier | flights | challenger | champion | delta |",
        "|---|---|---|---|---|",
    ]
    for row in rows[:shown]:
        champion = "n/a" if row["champion_mae"] is None else f"{row['champion_mae']:.2f}"
        lines.append(
            f"| {row['carrier']} | {row['flights']} | {row['challenger_mae']:.2f} | {champion} | "
            f"{_fmt(row['delta_mae'])} |"
        )
    if len(rows) > shown:
        lines.append(f"| ... {len(rows) - shown} more | | | | |")
    return "\n".join(lines)


def plot_per_carrier(evaluation: dict):
    """A bar chart of validation MAE per carrier, challenger beside champion (a matplotlib figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(evaluation.get("per_carrier", []), key=lambda r: r["carrier"])
    carriers = [r["carrier"] for r in rows]
    positions = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 0.6), 4))
    width = 0.4
    ax.bar([p - width / 2 for p in positions], [r["challenger_mae"] for r in rows], width, label="challenger")
    if any(r["champion_mae"] is not None for r in rows):
        ax.bar(
            [p + width / 2 for p in positions],
            [r["champion_mae"] or 0.0 for r in rows],
            width,
            label=f"champion v{evaluation.get('champion_version')}",
        )
    ax.set_xticks(list(positions), carriers)
    ax.set_ylabel("validation MAE (min)")
    days = evaluation.get("val_days") or []
    ax.set_title(
        f"Air time error per carrier, {days[0]}..{days[-1]}" if days else "Air time error per carrier"
    )
    ax.legend()
    fig.tight_layout()
    return fig
