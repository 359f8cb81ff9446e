"""When a degraded champion starts its own replacement (mlcycle.retraining)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from mlcycle.retraining import RetrainRule, decide, rolling_mae

RULE = RetrainRule(tolerance=2.0, consecutive_days=3, window_days=3, cooling_off_days=10, train_days=30)


def _days(maes: list[float | None], start: str = "2013-06-01", flights: int = 100) -> list[dict]:
    first = date.fromisoformat(start)
    return [
        {"ds": (first + timedelta(days=i)).isoformat(), "mae": m, "n_actuals": 0 if m is None else flights}
        for i, m in enumerate(maes)
    ]


def test_rolling_mae_weighs_days_by_their_flights_and_skips_unknown_days():
    daily = _days([10.0, None, 20.0])
    daily[2]["n_actuals"] = 300
    rolling = rolling_mae(daily, window_days=3)
    assert [r["ds"] for r in rolling] == ["2013-06-01", "2013-06-03"]
    assert rolling[1]["rolling_mae"] == pytest.approx((10 * 100 + 20 * 300) / 400)
    # a window is calendar days: the day four days back is out of it
    assert rolling_mae(_days([50.0, 0.0, 0.0, 0.0]), 3)[-1]["rolling_mae"] == 0.0


def test_fires_after_the_configured_days_in_a_row_with_the_recent_window():
    # champion validated at 8; threshold 10; rolling over 3 days crosses it on 06-05, 06-06, 06-07
    daily = _days([8, 8, 8, 12, 14, 14, 14])
    decision = decide(daily, 8.0, RULE)
    assert decision["trigger"] is True and decision["days_over"] == 3
    assert decision["window"] == {"train_start": "2013-05-09", "train_end": "2013-06-07", "holdout_days": 7}
    assert "3 days in a row up to 2013-06-07" in decision["reason"]

    not_yet = decide(daily[:-1], 8.0, RULE)
    assert not_yet["trigger"] is False and not_yet["days_over"] == 2
    assert "2 day(s) in a row, 3 needed" in not_yet["reason"]


def test_a_good_day_resets_the_streak():
    # over on the first three days, back to 8 for four, then over again for two
    daily = _days([12, 12, 12, 8, 8, 8, 8, 16, 16])
    decision = decide(daily, 8.0, RULE)
    assert (decision["days_over"], decision["trigger"]) == (2, False)


def test_only_one_retraining_at_a_time_and_a_cooling_off_period():
    daily = _days([14] * 8)
    busy = decide(daily, 8.0, RULE, training_active=True)
    assert busy["trigger"] is False and "already queued or running" in busy["reason"]
    cooling = decide(daily, 8.0, RULE, last_triggered="2013-06-03")
    assert cooling["trigger"] is False and "5 day(s) ago, 10 required" in cooling["reason"]
    assert decide(daily, 8.0, RULE, last_triggered="2013-05-29")["trigger"] is True


def test_nothing_to_decide_without_outcomes():
    decision = decide(_days([None, None]), 8.0, RULE)
    assert decision["trigger"] is False and decision["latest"] is None
