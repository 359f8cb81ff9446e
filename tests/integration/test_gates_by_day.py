"""A suite judged for many days in one pass (``mlcycle.quality.by_day``) gives each day GX's own
verdict: the same expectations failed, the same counts and observed values, the same expected
values, for the real suites of the flights use case on real and broken days (the raw flights
suite's batch rules are checked the same way, against the daily job, by
``test_range_jobs.py``).

Each day is judged twice: by GX alone (``run_suite``, one validation per day, as the daily gate
does) and by ``judge_days`` over all the days together. The broken weather day fails row rules and
the duplicate rule; the features and predictions suites fail on nulls, bounds, a duplicate key, a
missing column and a wrong row count.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from mlcycle.quality.by_day import judge_days
from mlcycle.quality.gates import FAILURES, row_rules, run_suite, split_rows
from mlcycle.quality.landing import landing_path
from mlcycle.specs import catalog, find_usecase
from spark_jobs.flights.features import read_raw
from spark_jobs.flights.replay import land_day
from spark_jobs.flights.schemas import RAW_SCHEMAS

pytestmark = pytest.mark.integration

FLIGHTS = find_usecase("flights")
DAYS = ("2013-03-04", "2013-03-05")


def _number(value):
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _same(ours, theirs) -> None:
    """Two failure records agree: expectation, column, expected values, counts; a number the
    same to 1e-9; the quoted unexpected values the same when GX quotes all of them."""
    assert ours["expectation"] == theirs["expectation"]
    assert ours["column"] == theirs["column"]
    assert {k: _number(v) for k, v in ours["expected"].items()} == {
        k: _number(v) for k, v in theirs["expected"].items()
    }
    a, b = ours["observed"], theirs["observed"]
    if isinstance(b, dict) and "error" in b:  # both met the missing column
        assert "error" in a
    elif isinstance(b, dict) and "unexpected_count" in b:
        assert a["unexpected_count"] == b["unexpected_count"], ours["expectation"]
        assert math.isclose(a["unexpected_percent"], b["unexpected_percent"], rel_tol=1e-9)
        assert len(a["unexpected_sample"]) == len(b["unexpected_sample"])
        if b["unexpected_count"] <= len(b["unexpected_sample"]):
            key = lambda v: str(v)  # noqa: E731
            assert sorted(a["unexpected_sample"], key=key) == sorted(b["unexpected_sample"], key=key)
    elif isinstance(b, list):
        assert sorted(a) == sorted(b)
    elif isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9)
    else:
        assert a == b


def agree(spark, frames: dict, suite: str, name: str, parameters: dict, include_row_rules=True) -> dict:
    """Judge each day's frame with GX and all of them together in one pass; check the verdicts
    agree and return them (day -> GX's verdict)."""
    from functools import reduce

    together = reduce(lambda a, b: a.unionByName(b), frames.values())
    ours = judge_days(together, suite, name=name, parameters=parameters, include_row_rules=include_row_rules)
    theirs = {
        ds: run_suite(df, suite, name=name, parameters=parameters[ds], include_row_rules=include_row_rules)
        for ds, df in frames.items()
    }
    assert sorted(ours) == sorted(theirs)
    for ds, verdict in theirs.items():
        assert ours[ds].success == verdict.success, (ds, ours[ds].failed, verdict.failed)
        assert ours[ds].evaluated == verdict.evaluated
        assert len(ours[ds].failed) == len(verdict.failed), (ds, ours[ds].failed, verdict.failed)
        by_rule = {(f["expectation"], str(f["column"]), str(f["expected"])): f for f in verdict.failed}
        for failure in ours[ds].failed:
            key = (failure["expectation"], str(failure["column"]), str(failure["expected"]))
            matched = by_rule.get(key) or next(
                f for f in verdict.failed if (f["expectation"], str(f["column"])) == key[:2]
            )
            _same(failure, matched)
    return theirs


@pytest.fixture(scope="module")
def landed(tmp_path_factory):
    root = tmp_path_factory.mktemp("by_day")
    for ds in DAYS:
        land_day(str(root), ds)
    return str(root)


def raw_frames(spark, root: str, dataset: str, damage) -> tuple[dict, dict]:
    """Each day's raw rows as the gate judges them (row rules applied, ``_quarantined``), each
    day damaged by ``damage[ds]``, and the day's parameters."""
    from pyspark.sql import functions as F

    suite = str(FLIGHTS.datasets[dataset].suite)
    frames, parameters = {}, {}
    for ds in DAYS:
        day = dt.date.fromisoformat(ds)
        p = {
            "year": day.year,
            "month": day.month,
            "day": day.day,
            "min_rows": 100 if dataset == "flights" else 24,
            "max_rows": 2000 if dataset == "flights" else 100,
            "max_quarantine_share": 0.02,
            "latest_hour_min": 20 if dataset == "flights" else 18,
        }
        df = read_raw(spark, landing_path(root, dataset, ds), RAW_SCHEMAS[dataset]())
        df, p = damage.get(ds, lambda d, q: (d, q))(df, p)
        judged = split_rows(df, row_rules(suite), p)
        frames[ds] = judged.withColumn("_quarantined", (F.size(FAILURES) > 0).cast("int")).withColumn(
            "ds", F.lit(ds)
        )
        parameters[ds] = p
    return frames, parameters


def test_raw_weather_days_judged_in_one_pass_as_gx_judges_each(spark, landed):
    from pyspark.sql import functions as F

    def doubled(df, p):
        return df.unionByName(df.limit(2)).withColumn(
            "wind_speed", F.when(F.col("hour") == 3, F.lit(1048.0)).otherwise(F.col("wind_speed"))
        ), p

    frames, parameters = raw_frames(spark, landed, "weather", {DAYS[1]: doubled})
    suite = str(FLIGHTS.datasets["weather"].suite)
    verdicts = agree(spark, frames, suite, "raw_weather", parameters, include_row_rules=True)
    assert verdicts[DAYS[0]].success and not verdicts[DAYS[1]].success


def _features_rows(spark, ds: str, rows: int, change=None):
    from pyspark.sql import functions as F

    columns = {
        "flight_id": F.concat(F.lit(ds + "-"), F.col("id").cast("string")),
        "ds": F.to_date(F.lit(ds)),
        "air_time": (F.col("id") % 300 + 20).cast("double"),
        "arr_delay": (F.col("id") % 50 - 10).cast("double"),
        "carrier": F.lit("UA"),
        "origin": F.lit("EWR"),
        "dest": F.lit("ORD"),
        "engine": F.lit("Turbo-fan"),
        "distance": F.lit(719.0),
        "sched_dep_hour": (F.col("id") % 24).cast("int"),
        "month": F.lit(int(ds[5:7])),
        "day_of_week": F.lit(2),
        "days_to_holiday": F.lit(12),
        "temp": F.lit(40.0),
        "wind_speed": F.lit(10.0),
        "precip": F.lit(0.0),
        "visib": F.lit(10.0),
        "route_air_time_mean": F.lit(120.0),
        "route_flights": F.lit(30),
        "carrier_route_air_time_mean": F.lit(118.0),
        "plane_age": F.lit(11),
        "seats": F.lit(180),
    }
    df = spark.range(rows).select(*[c.alias(n) for n, c in columns.items()])
    return change(df) if change else df


def test_features_and_predictions_days_judged_in_one_pass_as_gx_judges_each(spark):
    from pyspark.sql import functions as F

    suite = str(FLIGHTS.features_suite)
    frames = {
        DAYS[0]: _features_rows(spark, DAYS[0], 40),
        DAYS[1]: _features_rows(
            spark,
            DAYS[1],
            40,
            lambda df: (
                df.withColumn(
                    "temp", F.when(F.col("sched_dep_hour") == 5, F.lit(200.0)).otherwise(F.col("temp"))
                )
                .withColumn(
                    "carrier", F.when(F.col("sched_dep_hour") == 6, F.lit(None)).otherwise(F.col("carrier"))
                )
                .unionByName(df.limit(1))
            ),
        ),
    }
    parameters = {ds: {} for ds in frames}
    verdicts = agree(spark, frames, suite, "features", parameters)
    assert verdicts[DAYS[0]].success and not verdicts[DAYS[1]].success

    # a day whose table lacks a column: every day's verdict names the columns
    lacking = {DAYS[0]: frames[DAYS[0]].drop("seats")}
    assert not agree(spark, lacking, suite, "features", {DAYS[0]: {}})[DAYS[0]].success

    predictions = str(catalog().models["air_time"].predictions_suite)
    scored = {
        ds: df.select(
            "flight_id",
            "ds",
            F.when(F.col("sched_dep_hour") == 7, F.lit(900.0))
            .otherwise(F.col("air_time"))
            .alias("prediction"),
            F.lit(3).alias("model_version"),
        )
        for ds, df in frames.items()
    }
    counts = {DAYS[0]: {"flights": 40}, DAYS[1]: {"flights": 40}}
    verdicts = agree(spark, scored, predictions, "predictions", counts)
    assert not verdicts[DAYS[0]].success  # the 900-minute predictions
    assert {f["expectation"] for f in verdicts[DAYS[1]].failed} >= {
        "expect_table_row_count_to_be_between",
        "expect_column_values_to_be_unique",
    }


def _page(path: str) -> str:
    """A Data Docs page without what differs between two renderings of the same validation: its
    time, its ids."""
    import re

    text = Path(path).read_text()
    text = re.sub(r"\d{8}T\d{6}\.\d+Z", "<time>", text)
    text = re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(\+00:00)?", "<time>", text)
    text = re.sub(r"'_run_time_sort': [\d.]+", "'_run_time_sort': <time>", text)
    return re.sub(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", "<id>", text)


def test_a_day_judged_in_one_pass_has_the_data_docs_gx_renders_for_it(spark, landed, tmp_path, monkeypatch):
    """A daily job judges its day in one pass (``gate_day``). A day that passes is recorded in the
    Data Docs from that verdict, without GX validating it: its page and the site's index are the
    ones GX renders when it validates the day itself. A day that fails is judged again by GX: GX's
    verdict and its page."""
    from mlcycle.quality import by_day
    from mlcycle.quality.by_day import gate_day

    validated = []  # the days GX validated inside gate_day
    monkeypatch.setattr(
        by_day, "run_suite", lambda df, *a, **k: validated.append(k["docs_dir"]) or run_suite(df, *a, **k)
    )

    def too_few(df, p):  # the volume band of a day with far more flights behind it
        return df, {**p, "min_rows": 5000, "max_rows": 9000}

    frames, parameters = raw_frames(spark, landed, "flights", {DAYS[1]: too_few})
    suite = str(FLIGHTS.datasets["flights"].suite)
    for ds, passes in ((DAYS[0], True), (DAYS[1], False)):
        ours, rows = gate_day(
            frames[ds],
            suite,
            name="raw_flights",
            ds=ds,
            docs_dir=str(tmp_path / "ours" / ds),
            parameters=parameters[ds],
            include_row_rules=False,
            gx_frame=frames[ds].drop("ds"),
        )
        theirs = run_suite(
            frames[ds].drop("ds"),
            suite,
            name="raw_flights",
            docs_dir=str(tmp_path / "gx" / ds),
            parameters=parameters[ds],
            include_row_rules=False,
        )
        assert rows == frames[ds].count() > 0
        assert (ours.success, ours.evaluated, ours.failed) == (passes, theirs.evaluated, theirs.failed)
        assert ours.docs_page and ours.docs_page.startswith(str(tmp_path / "ours" / ds))
        assert _page(ours.docs_page) == _page(theirs.docs_page)
        assert _page(ours.docs) == _page(theirs.docs)
    assert any(f["expectation"] == "expect_table_row_count_to_be_between" for f in ours.failed)
    assert validated == [str(tmp_path / "ours" / DAYS[1])]  # the failing day only

    # the features suite (its schema rule, no parameters) on a good day
    features = _features_rows(spark, DAYS[0], 40)
    suite = str(FLIGHTS.features_suite)
    ours, rows = gate_day(features, suite, name="features", ds=DAYS[0], docs_dir=str(tmp_path / "f-ours"))
    theirs = run_suite(features, suite, name="features", docs_dir=str(tmp_path / "f-gx"))
    assert ours.success and theirs.success and rows == 40 and len(validated) == 1
    assert _page(ours.docs_page) == _page(theirs.docs_page)

    # GX validates the day itself: a suite with an expectation the one pass cannot judge, or every
    # suite with the one pass switched off
    import json

    spec = json.loads(Path(suite).read_text())
    spec["expectations"].append(
        {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "carrier", "min_value": 2}}
    )
    other = tmp_path / "other_suite.json"
    other.write_text(json.dumps(spec))
    ours, rows = gate_day(features, str(other), name="features", ds=DAYS[0], docs_dir=str(tmp_path / "o"))
    assert ours.success and ours.evaluated == theirs.evaluated + 1 and rows == 40
    assert validated[1:] == [str(tmp_path / "o")]
    monkeypatch.setenv("MLCYCLE_ONE_PASS_GATES", "0")
    ours, rows = gate_day(features, suite, name="features", ds=DAYS[0], docs_dir=str(tmp_path / "off"))
    assert ours.success and rows == 40 and validated[2:] == [str(tmp_path / "off")]
