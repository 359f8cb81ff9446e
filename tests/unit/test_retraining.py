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


def test_rule_from_params_takes_what_the_run_sets_and_keeps_the_rest():
    from mlcycle.monitoring import rule_from_params

    rule = rule_from_params({"retrain_tolerance": 1, "cooling_off_days": None, "rolling_days": 2}, RULE)
    assert (rule.tolerance, rule.window_days, rule.cooling_off_days) == (1.0, 2, RULE.cooling_off_days)
    assert isinstance(rule.tolerance, float)


def test_version_history_reads_the_monitoring_partitions_of_one_version(tmp_path):
    import pandas as pd

    from mlcycle.monitoring import version_history

    for ds, rows in {
        "2013-06-01": [("3", 9.0, 100), ("2", 12.0, 5)],
        "2013-06-02": [("3", None, 0)],
        "2013-06-03": [("3", 11.0, 80)],
    }.items():
        part = tmp_path / "monitoring" / f"ds={ds}"
        part.mkdir(parents=True)
        frame = pd.DataFrame(rows, columns=["model_version", "mae", "n_actuals"])
        frame.to_parquet(part / "part-0.parquet")
    history = version_history(str(tmp_path), 3)
    assert history == [
        {"ds": "2013-06-01", "mae": 9.0, "n_actuals": 100},
        {"ds": "2013-06-02", "mae": None, "n_actuals": 0},
        {"ds": "2013-06-03", "mae": 11.0, "n_actuals": 80},
    ]
    assert [h["ds"] for h in version_history(str(tmp_path), 3, up_to="2013-06-02")] == [
        "2013-06-01",
        "2013-06-02",
    ]
    assert version_history(str(tmp_path / "nothing"), 3) == []


def test_the_mae_chart_draws_each_version_its_threshold_and_the_champion_changes(tmp_path):
    import matplotlib.dates

    from mlcycle.monitoring import plot_mae

    history = [{**d, "model_version": "1"} for d in _days([8, 9, 12, 13])] + [
        {**d, "model_version": "2"} for d in _days([7, 7], start="2013-06-05")
    ]
    # approved long after the days it serves (a backfill): the mark follows the data, not the clock
    champions = [
        {"version": 1, "promoted_at": "2026-01-01T06:00:00+00:00", "decided_by": "ann"},
        {"version": 2, "promoted_at": "2026-01-02T06:00:00+00:00", "decided_by": "bob"},
    ]
    fig = plot_mae(history, champions, RULE, {"1": 8.0, "2": 7.0})
    ax = fig.axes[0]
    assert len(ax.lines) == 4 + 1  # daily and rolling per version, and the one change of version
    assert {t.get_text().strip() for t in ax.texts} == {
        "alert v1: 10.0",
        "alert v2: 9.0",
        "v2 serving, approved by bob",
    }
    left, right = ax.get_xlim()
    assert matplotlib.dates.num2date(right).year == 2013  # no axis stretched to the approval time
    assert str(ax.lines[-1].get_xdata()[0]) == "2013-06-05"
    fig.savefig(tmp_path / "mae.png")
    assert (tmp_path / "mae.png").stat().st_size > 10_000
