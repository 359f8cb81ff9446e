"""When a degraded champion starts its own replacement.

The monitoring DAG keeps, per day and model version, the model's metrics of the predictions
against what happened (``models/<model>/monitoring/ds=D``). The rolling value of the model's
retraining ``metric`` for the champion (the mean of the daily values weighted by their known
outcomes, over the last ``window_days`` monitored days) is compared with the value the champion
had on its validation days. When it is worse than that by more than ``tolerance`` (higher for an
error such as MAE, lower for a score such as AUC) on ``consecutive_days`` days in a row, the
training DAG is triggered on the most recent ``train_days`` days. Only one such retraining
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
    metric: str = "mae"
    higher_is_better: bool = False
    tolerance: float = 3.0
    consecutive_days: int = 3
    window_days: int = 7
    cooling_off_days: int = 14
    train_days: int = 60
    holdout_days: int = 7

    @classmethod
    def of(cls, model) -> RetrainRule:
        """The rule of a model spec (``[retraining]`` of its model.toml over the defaults)."""
        from mlcycle.specs import METRICS

        r = model.retraining
        return cls(
            metric=r["metric"],
            higher_is_better=METRICS[model.task][r["metric"]],
            tolerance=float(r["tolerance"]),
            consecutive_days=int(r["consecutive_days"]),
            window_days=int(r["window_days"]),
            cooling_off_days=int(r["cooling_off_days"]),
            train_days=int(r["train_days"]),
            holdout_days=int(r["holdout_days"]),
        )

    def threshold(self, validation: float) -> float:
        """The value past which a day counts as degraded."""
        return validation - self.tolerance if self.higher_is_better else validation + self.tolerance

    def degraded(self, value: float, validation: float) -> bool:
        limit = self.threshold(validation)
        return value < limit if self.higher_is_better else value > limit


def rolling(daily: list[dict], window_days: int) -> list[dict]:
    """``daily``: rows with ``ds``, ``value`` (the metric of the day) and ``n_actuals`` (one model
    version). Returns, for each day with a known value, ``{ds, value, rolling}``: the mean of the
    daily values of the last ``window_days`` calendar days up to and including that day, weighted by
    their known outcomes (for MAE, exactly the MAE over those flights)."""
    known = sorted(
        (r for r in daily if r.get("value") is not None and (r.get("n_actuals") or 0) > 0),
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
                "value": float(row["value"]),
                "rolling": sum(r["value"] * r["n_actuals"] for r in window) / flights,
            }
        )
    return out


def decide(
    daily: list[dict],
    champion_val: float,
    rule: RetrainRule,
    *,
    last_triggered: str | None = None,
    training_active: bool = False,
) -> dict:
    """Whether to retrain now, why, and on which window.

    ``last_triggered`` is the last monitored day on which a retraining was triggered (None if
    never); ``training_active`` says whether a training run is queued or running.
    """
    rolled = rolling(daily, rule.window_days)
    threshold = rule.threshold(champion_val)
    name = rule.metric
    streak = 0
    for row in reversed(rolled):
        if not rule.degraded(row["rolling"], champion_val):
            break
        streak += 1
    result = {
        "metric": name,
        "threshold": threshold,
        "champion_val": champion_val,
        "latest": rolled[-1] if rolled else None,
        "days_over": streak,
        "trigger": False,
        "window": None,
    }
    if not rolled:
        return {**result, "reason": "no monitored day with known outcomes yet"}
    last = rolled[-1]["ds"]
    side = "under" if rule.higher_is_better else "over"
    if streak < rule.consecutive_days:
        return {
            **result,
            "reason": f"rolling {name} {rolled[-1]['rolling']:.3f} on {last}; {side} the threshold "
            f"{threshold:.3f} on {streak} day(s) in a row, {rule.consecutive_days} needed",
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
        "reason": f"rolling {name} {side} {threshold:.3f} (champion validation {name} {champion_val:.3f} "
        f"{'-' if rule.higher_is_better else '+'} {rule.tolerance:g}) on {streak} days in a row up to {last}",
    }
