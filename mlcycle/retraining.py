"""When a degraded champion starts its own replacement.

The monitoring DAG keeps, per day and model version, the MAE of the predictions against what
happened (``monitoring/ds=D``). The rolling MAE of the champion (flights-weighted, over the last
``window_days`` monitored days) is compared with the MAE the champion had on its validation days.
When it exceeds that by more than ``tolerance`` minutes on ``consecutive_days`` days in a row,
the training DAG is triggered on the most recent ``train_days`` days. Only one such retraining
runs at a time, and after one is triggered none is for ``cooling_off_days`` days, counted in
days of the data (from the monitored day that triggered the last one), not of the clock: a
backfill behaves like the days it replays.

Plain functions of explicit arguments: the DAG gathers the inputs, this module decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class RetrainRule:
    tolerance: float = 3.0
    consecutive_days: int = 3
    window_days: int = 7
    cooling_off_days: int = 14
    train_days: int = 60
    holdout_days: int = 7


def rolling_mae(daily: list[dict], window_days: int) -> list[dict]:
    """``daily``: rows with ``ds``, ``mae`` and ``n_actuals`` (one model version). Returns, for each
    day with a known MAE, ``{ds, mae, rolling_mae}``: the MAE over the flights of the last
    ``window_days`` calendar days up to and including that day."""
    known = sorted(
        (r for r in daily if r.get("mae") is not None and (r.get("n_actuals") or 0) > 0),
        key=lambda r: str(r["ds"]),
    )
    out = []
    for row in known:
        day = date.fromisoformat(str(row["ds"])[:10])
        first = day - timedelta(days=window_days - 1)
        window = [r for r in known if first <= date.fromisoformat(str(r["ds"])[:10]) <= day]
        flights = sum(r["n_actuals"] for r in window)
        out.append(
            {
                "ds": str(row["ds"])[:10],
                "mae": float(row["mae"]),
                "rolling_mae": sum(r["mae"] * r["n_actuals"] for r in window) / flights,
            }
        )
    return out


def decide(
    daily: list[dict],
    champion_val_mae: float,
    rule: RetrainRule,
    *,
    last_triggered: str | None = None,
    training_active: bool = False,
) -> dict:
    """Whether to retrain now, why, and on which window.

    ``last_triggered`` is the last monitored day on which a retraining was triggered (None if
    never); ``training_active`` says whether a training run is queued or running.
    """
    rolling = rolling_mae(daily, rule.window_days)
    threshold = champion_val_mae + rule.tolerance
    streak = 0
    for row in reversed(rolling):
        if row["rolling_mae"] <= threshold:
            break
        streak += 1
    result = {
        "threshold": threshold,
        "champion_val_mae": champion_val_mae,
        "latest": rolling[-1] if rolling else None,
        "days_over": streak,
        "trigger": False,
        "window": None,
    }
    if not rolling:
        return {**result, "reason": "no monitored day with known outcomes yet"}
    last = rolling[-1]["ds"]
    if streak < rule.consecutive_days:
        return {
            **result,
            "reason": f"rolling MAE {rolling[-1]['rolling_mae']:.2f} on {last}; over the threshold "
            f"{threshold:.2f} on {streak} day(s) in a row, {rule.consecutive_days} needed",
        }
    if training_active:
        return {**result, "reason": "a training run is already queued or running"}
    if last_triggered is not None:
        since = (date.fromisoformat(last) - date.fromisoformat(last_triggered[:10])).days
        if since < rule.cooling_off_days:
            return {
                **result,
                "reason": f"cooling off: retraining was triggered for {last_triggered[:10]}, "
                f"{since} day(s) ago, {rule.cooling_off_days} required",
            }
    end = date.fromisoformat(last)
    start = end - timedelta(days=rule.train_days - 1)
    return {
        **result,
        "trigger": True,
        "window": {
            "train_start": start.isoformat(),
            "train_end": end.isoformat(),
            "holdout_days": rule.holdout_days,
        },
        "reason": f"rolling MAE over {threshold:.2f} (champion validation MAE {champion_val_mae:.2f} + "
        f"{rule.tolerance:g}) on {streak} days in a row up to {last}",
    }
