"""A waiting challenger's live record, read from the monitoring job's ``monitoring_online`` days:
pooled as the sign-off evidence, the version's tags and the monitoring page show it."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mlcycle.monitoring import shadow
from mlcycle.specs import find_model
from mlcycle.ui.pages import render_live_record


def _write(records, dataset: str, ds: str, rows: list[dict]) -> None:
    folder = records / dataset / f"ds={ds}"
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(folder / "part-0.parquet", index=False)


def _online(version: str, role: str, n: int, mae: float, rmse: float, champion=(None, None)) -> dict:
    return {
        "model_name": "air_time",
        "model_version": version,
        "role": role,
        "n_requests": n + 5,
        "n_actuals": n,
        "mae": mae,
        "rmse": rmse,
        "bias": 1.0,
        "champion_mae": champion[0],
        "champion_rmse": champion[1],
    }


@pytest.fixture
def records(tmp_path):
    # two days of v3 in the shadow of v2 (100 and 300 outcomes), a day of v4 later
    _write(tmp_path, "monitoring_online", "2013-03-01", [
        _online("2", "champion", 100, 10.0, 12.0),
        _online("3", "shadow", 100, 8.0, 9.0, champion=(10.0, 12.0)),
    ])  # fmt: skip
    _write(tmp_path, "monitoring_online", "2013-03-02", [
        _online("2", "champion", 300, 14.0, 16.0),
        _online("3", "shadow", 300, 16.0, 20.0, champion=(14.0, 16.0)),
    ])  # fmt: skip
    _write(tmp_path, "monitoring_online", "2013-03-05", [
        _online("3", "champion", 50, 7.0, 8.0),
        _online("4", "shadow", 50, 6.0, 7.0, champion=(7.0, 8.0)),
    ])  # fmt: skip
    _write(tmp_path, "monitoring", "2013-03-01", [{"model_version": "2", "n_actuals": 900, "mae": 9.5}])
    _write(tmp_path, "monitoring", "2013-03-04", [{"model_version": "3", "n_actuals": 950, "mae": 7.5}])
    return tmp_path


def test_a_shadow_versions_days_are_pooled_by_their_outcomes(records):
    days = shadow.shadow_days(records, 3)
    assert [(d["ds"], d["n_actuals"]) for d in days] == [("2013-03-01", 100), ("2013-03-02", 300)]
    pooled = shadow.pooled(days, ("mae", "rmse"))
    assert (pooled["days"], pooled["first"], pooled["last"]) == (2, "2013-03-01", "2013-03-02")
    assert (pooled["n_requests"], pooled["n_actuals"]) == (410, 400)
    assert pooled["mae"] == pytest.approx((100 * 8 + 300 * 16) / 400)  # the mean error of all 400
    assert pooled["champion_mae"] == pytest.approx((100 * 10 + 300 * 14) / 400)
    assert pooled["rmse"] == pytest.approx(math.sqrt((100 * 81 + 300 * 400) / 400))  # through the squares
    assert shadow.verdict(pooled, "mae", "regression") == "the champion is better"
    assert shadow.shadow_versions(records) == ["4", "3"]


def test_the_evidence_section_and_the_tags_show_the_same_figures(records):
    model = find_model("air_time")
    days = shadow.shadow_days(records, 3)
    text = shadow.markdown(model, 3, days)
    assert "| 2013-03-01 | 105 | 100 | 8.0000 | 10.0000 | 9.0000 | 12.0000 |" in text
    assert "| **2 day(s)** | **410** | **400** | **14.0000** | **13.0000** |" in text
    assert "On mae: the champion is better on the same live requests." in text
    tags = shadow.tags(shadow.pooled(days, model.metrics), model.metrics)
    assert tags["live.shadow.days"] == "2" and tags["live.shadow.span"] == "2013-03-01..2013-03-02"
    assert (tags["live.shadow.mae"], tags["live.shadow.champion_mae"]) == ("14", "13")
    # a challenger not yet scored in the shadow says where its record will appear
    assert "No live requests with known outcomes yet" in shadow.markdown(model, 9, [])


def test_the_page_shows_online_beside_batch_and_the_shadow(records):
    online = shadow.online_against_batch(records, "mae")
    assert [(r["ds"], r["model_version"]) for r in online] == [
        ("2013-03-05", "3"),
        ("2013-03-04", "3"),
        ("2013-03-02", "2"),
        ("2013-03-01", "2"),
    ]
    first = online[-1]
    assert (first["batch_rows"], first["batch"], first["online_rows"], first["online"]) == (
        900,
        9.5,
        100,
        10.0,
    )
    assert online[1]["online"] is None and online[0]["batch"] is None  # one side only that day
    days = shadow.shadow_days(records, 3)
    page = render_live_record("mae", online, [("3", days, shadow.pooled(days, ("mae", "rmse")))])
    assert (
        "<td>2013-03-01</td><td>v2</td><td>900</td><td>9.5000</td><td>105</td><td>100</td><td>10.0000</td>"
        in page
    )
    assert "<tr><th>2 day(s)</th><th>410</th><th>400</th><th>14.0000</th><th>13.0000</th></tr>" in page
