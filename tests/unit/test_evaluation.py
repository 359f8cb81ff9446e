"""The comparison an approver reads, and the rules that spare them a clearly worse challenger."""

from __future__ import annotations

import io

from mlcycle.evaluation import Rules, carrier_table, per_carrier_rows, plot_per_carrier, rejection_reasons

CHALLENGER = {
    "AA": {"flights": 120, "mae": 10.0, "rmse": 14.0},
    "B6": {"flights": 200, "mae": 12.0, "rmse": 16.0},
    "OO": {"flights": 3, "mae": 40.0, "rmse": 45.0},
}
CHAMPION = {
    "AA": {"flights": 120, "mae": 11.0, "rmse": 15.0},
    "B6": {"flights": 200, "mae": 5.0, "rmse": 8.0},
    "OO": {"flights": 3, "mae": 10.0, "rmse": 12.0},
}


def evaluation(champion=CHAMPION) -> dict:
    return {
        "val_days": ["2013-01-04"],
        "champion_version": "1" if champion else None,
        "per_carrier": per_carrier_rows(CHALLENGER, champion),
    }


def test_rows_are_joined_and_worst_first():
    rows = per_carrier_rows(CHALLENGER, CHAMPION)
    assert [(r["carrier"], r["delta_mae"]) for r in rows] == [("OO", 30.0), ("B6", 7.0), ("AA", -1.0)]
    assert all(r["champion_mae"] is None for r in per_carrier_rows(CHALLENGER, None))


def test_a_carrier_far_worse_is_rejected_but_not_on_a_handful_of_flights():
    reasons = rejection_reasons(evaluation(), overall_delta=-0.5, rules=Rules(0.0, 5.0, 30))
    assert len(reasons) == 1 and reasons[0].startswith("carrier_tolerance: B6 MAE +7.000")
    assert rejection_reasons(evaluation(), -0.5, Rules(0.0, 8.0, 30)) == []
    assert len(rejection_reasons(evaluation(), -0.5, Rules(0.0, 8.0, 1))) == 1  # OO counts now


def test_overall_margin_and_no_champion():
    assert rejection_reasons(None, overall_delta=0.2, rules=Rules(0.0))[0].startswith("min_improvement")
    assert rejection_reasons(None, overall_delta=0.2, rules=Rules(-0.5)) == []
    assert rejection_reasons(evaluation(champion=None), overall_delta=None, rules=Rules(1.0, 0.0, 1)) == []


def test_table_and_plot():
    table = carrier_table(evaluation(), Rules(0.0, 5.0, 30), shown=2)
    assert "| OO | 3 | 40.00 | 10.00 | +30.00 |" in table and "| ... 1 more |" in table
    assert carrier_table({"per_carrier": []}, Rules()) == ""
    figure = plot_per_carrier(evaluation())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["AA", "B6", "OO"]
