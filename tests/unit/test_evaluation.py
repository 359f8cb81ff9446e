"""The comparison an approver reads, and the rules that spare them a clearly worse challenger, for
an error that should fall (MAE) and a score that should rise (AUC)."""

from __future__ import annotations

import io

from mlcycle.evaluation import Rules, per_slice_rows, plot_per_slice, rejection_reasons, slice_table

CHALLENGER = {
    "AA": {"rows": 120, "mae": 10.0, "rmse": 14.0},
    "B6": {"rows": 200, "mae": 12.0, "rmse": 16.0},
    "OO": {"rows": 3, "mae": 40.0, "rmse": 45.0},
}
CHAMPION = {
    "AA": {"rows": 120, "mae": 11.0, "rmse": 15.0},
    "B6": {"rows": 200, "mae": 5.0, "rmse": 8.0},
    "OO": {"rows": 3, "mae": 10.0, "rmse": 12.0},
}
MAE = Rules(0.0, 5.0, 30)


def evaluation(champion=CHAMPION) -> dict:
    return {
        "val_days": ["2013-01-04"],
        "champion_version": "1" if champion else None,
        "metric": "mae",
        "slice": "carrier",
        "per_slice": per_slice_rows(CHALLENGER, champion, "mae"),
    }


def test_rows_are_joined_and_worst_first():
    rows = per_slice_rows(CHALLENGER, CHAMPION, "mae")
    assert [(r["value"], r["delta"]) for r in rows] == [("OO", 30.0), ("B6", 7.0), ("AA", -1.0)]
    assert all(r["champion"] is None for r in per_slice_rows(CHALLENGER, None, "mae"))


def test_a_carrier_far_worse_is_rejected_but_not_on_a_handful_of_flights():
    reasons = rejection_reasons(evaluation(), overall_delta=-0.5, rules=MAE)
    assert len(reasons) == 1 and reasons[0].startswith("slice_tolerance: carrier B6 MAE +7.000")
    assert rejection_reasons(evaluation(), -0.5, Rules(0.0, 8.0, 30)) == []
    assert len(rejection_reasons(evaluation(), -0.5, Rules(0.0, 8.0, 1))) == 1  # OO counts now


def test_overall_margin_and_no_champion():
    assert rejection_reasons(None, overall_delta=0.2, rules=Rules(0.0))[0].startswith("min_improvement")
    assert rejection_reasons(None, overall_delta=0.2, rules=Rules(-0.5)) == []
    assert rejection_reasons(evaluation(champion=None), overall_delta=None, rules=Rules(1.0, 0.0, 1)) == []


def test_for_a_score_that_should_rise_a_drop_is_what_counts():
    auc = Rules(-0.01, 0.05, 30, metric="auc", higher_is_better=True)
    challenger = {"AA": {"rows": 100, "auc": 0.70}, "UA": {"rows": 100, "auc": 0.60}}
    champion = {"AA": {"rows": 100, "auc": 0.66}, "UA": {"rows": 100, "auc": 0.68}}
    rows = per_slice_rows(challenger, champion, "auc", higher_is_better=True)
    assert [r["value"] for r in rows] == ["UA", "AA"]  # the largest drop first
    ev = {"per_slice": rows}
    # AUC 0.005 lower overall: within the margin of 0.01; UA lost 0.08, more than 0.05
    (reason,) = rejection_reasons(ev, overall_delta=-0.005, rules=auc)
    assert reason.startswith("slice_tolerance: carrier UA AUC -0.080")
    assert rejection_reasons({"per_slice": rows[1:]}, -0.005, auc) == []
    # a gain in AUC is never a reason; a loss over the margin is
    assert rejection_reasons(None, 0.04, auc) == []
    assert rejection_reasons(None, -0.02, auc)[0].startswith("min_improvement: overall AUC -0.020")


def test_table_and_plot():
    table = slice_table(evaluation(), MAE, shown=2)
    assert "| OO | 3 | 40.000 | 10.000 | +30.000 |" in table and "| ... 1 more |" in table
    assert slice_table({"per_slice": []}, Rules()) == ""
    figure = plot_per_slice(evaluation())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["AA", "B6", "OO"]
    assert figure.axes[0].get_ylabel() == "validation MAE"
