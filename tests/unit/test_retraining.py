"""When a degraded champion starts its own replacement (mlcycle.monitoring.retraining)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from mlcycle.monitoring.retraining import RetrainRule, decide, rolling

RULE = RetrainRule(tolerance=2.0, consecutive_days=3, window_days=3, cooling_off_days=10, train_days=30)


def _days(maes: list[float | None], start: str = "2013-06-01", flights: int = 100) -> list[dict]:
    first = date.fromisoformat(start)
    return [
        {"ds": (first + timedelta(days=i)).isoformat(), "value": m, "n_actuals": 0 if m is None else flights}
        for i, m in enumerate(maes)
    ]


def test_rolling_value_weighs_days_by_their_flights_and_skips_unknown_days():
    daily = _days([10.0, None, 20.0])
    daily[2]["n_actuals"] = 300
    rolled = rolling(daily, window_days=3)
    assert [r["ds"] for r in rolled] == ["2013-06-01", "2013-06-03"]
    assert rolled[1]["rolling"] == pytest.approx((10 * 100 + 20 * 300) / 400)
    # a window is calendar days: the day four days back is out of it
    assert rolling(_days([50.0, 0.0, 0.0, 0.0]), 3)[-1]["rolling"] == 0.0


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


def test_a_score_that_should_rise_fires_when_it_falls_under_the_threshold():
    auc = RetrainRule(metric="auc", higher_is_better=True, tolerance=0.05, consecutive_days=2, window_days=1)
    daily = _days([0.72, 0.70, 0.64, 0.62])  # validated at 0.70: the threshold is 0.65
    decision = decide(daily, 0.70, auc)
    assert decision["trigger"] is True and decision["days_over"] == 2
    assert decision["threshold"] == pytest.approx(0.65)
    assert "rolling auc under 0.650" in decision["reason"]
    # a rise is never a degradation
    assert decide(_days([0.9, 0.95, 0.99]), 0.70, auc)["days_over"] == 0


def test_the_rule_of_each_model_comes_from_its_folder():
    from mlcycle.specs import catalog

    models = catalog().models
    air, late = RetrainRule.of(models["air_time"]), RetrainRule.of(models["late_arrival"])
    assert (air.metric, air.higher_is_better, air.tolerance) == ("mae", False, 3.0)
    assert (late.metric, late.higher_is_better, late.tolerance) == ("auc", True, 0.05)
    assert late.consecutive_days == air.consecutive_days == 3  # mlcycle/model_defaults.toml


def test_nothing_to_decide_without_outcomes():
    decision = decide(_days([None, None]), 8.0, RULE)
    assert decision["trigger"] is False and decision["latest"] is None


def test_rule_from_params_takes_what_the_run_sets_and_keeps_the_rest():
    from mlcycle.monitoring.live import rule_from_params

    rule = rule_from_params({"retrain_tolerance": 1, "cooling_off_days": None, "rolling_days": 2}, RULE)
    assert (rule.tolerance, rule.window_days, rule.cooling_off_days) == (1.0, 2, RULE.cooling_off_days)
    assert isinstance(rule.tolerance, float)


def test_version_history_reads_the_monitoring_partitions_of_one_version(tmp_path):
    import pandas as pd

    from mlcycle.monitoring.live import version_history

    for ds, rows in {
        "2013-06-01": [("3", 9.0, 100), ("2", 12.0, 5)],
        "2013-06-02": [("3", None, 0)],
        "2013-06-03": [("3", 11.0, 80)],
    }.items():
        part = tmp_path / "monitoring" / f"ds={ds}"
        part.mkdir(parents=True)
        frame = pd.DataFrame(rows, columns=["model_version", "mae", "n_actuals"])
        frame.to_parquet(part / "part-0.parquet")
    history = version_history(str(tmp_path), 3, "mae")
    assert history == [
        {"ds": "2013-06-01", "value": 9.0, "n_actuals": 100},
        {"ds": "2013-06-02", "value": None, "n_actuals": 0},
        {"ds": "2013-06-03", "value": 11.0, "n_actuals": 80},
    ]
    assert [h["ds"] for h in version_history(str(tmp_path), 3, "mae", up_to="2013-06-02")] == [
        "2013-06-01",
        "2013-06-02",
    ]
    assert version_history(str(tmp_path / "nothing"), 3, "mae") == []


def test_the_chart_draws_each_version_its_threshold_and_the_champion_changes(tmp_path):
    import matplotlib.dates

    from mlcycle.monitoring.live import plot_history

    history = [{**d, "model_version": "1"} for d in _days([8, 9, 12, 13])] + [
        {**d, "model_version": "2"} for d in _days([7, 7], start="2013-06-05")
    ]
    # approved long after the days it serves (a backfill): the mark follows the data, not the clock
    champions = [
        {"version": 1, "promoted_at": "2026-01-01T06:00:00+00:00", "decided_by": "ann"},
        {"version": 2, "promoted_at": "2026-01-02T06:00:00+00:00", "decided_by": "bob"},
    ]
    fig = plot_history(history, champions, RULE, {"1": 8.0, "2": 7.0}, unit="min")
    ax = fig.axes[0]
    assert len(ax.lines) == 4 + 1  # daily and rolling per version, and the one change of version
    assert {t.get_text().strip() for t in ax.texts} == {
        "alert v1: 10",
        "alert v2: 9",
        "v2 serving, approved by bob",
    }
    left, right = ax.get_xlim()
    # the axis spans the days shown, a day either side: not stretched to the approval time
    assert (matplotlib.dates.num2date(left).date(), matplotlib.dates.num2date(right).date()) == (
        date(2013, 5, 31),
        date(2013, 6, 7),
    )
    assert ax.get_ylabel() == "MAE (min)"
    assert str(ax.lines[-1].get_xdata()[0]) == "2013-06-05"
    fig.savefig(tmp_path / "mae.png")
    assert (tmp_path / "mae.png").stat().st_size > 10_000


def test_with_one_day_shown_the_axis_spans_that_day_not_years(tmp_path):
    import matplotlib.dates

    from mlcycle.monitoring.live import plot_history

    fig = plot_history([{**_days([8.0])[0], "model_version": "1"}], [], RULE, {"1": 8.0})
    left, right = (matplotlib.dates.num2date(x).date() for x in fig.axes[0].get_xlim())
    assert (right - left).days == 2 and left == date(2013, 5, 31)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    fig.savefig(tmp_path / "one.png")
    assert not any(str(year) in " ".join(labels) for year in (2011, 2012, 2014, 2015))
