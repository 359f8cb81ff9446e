"""The row rules of the real raw suites, compiled to Spark, set aside the rows GX would fail.

For each suite (``raw_flights.json``, ``raw_weather.json``) the rows judged are two real days, read
with the job's own reader, and damaged copies of a real row built so that every row rule of the
suite fails on at least one of them (a rule added without damage here fails the coverage check).
The compiled rules and GX, given the suite's row rules verbatim, must agree rule by rule on how
many rows fail, and GX must pass every row rule on the rows the compiled rules keep.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from mlcycle.quality.gates import (
    FAILURES,
    QUARANTINE,
    load_thresholds,
    on_failure,
    row_rules,
    rule_label,
    run_suite,
    split_rows,
)
from mlcycle.quality.landing import landing_path
from mlcycle.specs import find_usecase
from spark_jobs.flights.features import read_raw
from spark_jobs.flights.replay import land_day
from spark_jobs.flights.schemas import RAW_SCHEMAS

pytestmark = pytest.mark.integration

FLIGHTS = find_usecase("flights")

# 2013-02-08: the blizzard, with many cancelled flights (no departure, often no plane named);
# 2013-02-12: the day of the 1048 mph wind reading at EWR, a real row the weather suite sets aside.
REAL_DAYS = ("2013-02-08", "2013-02-12")
CORRUPT = "expect_column_values_to_be_null(_corrupt_record)"


def not_null(column: str) -> str:
    return f"expect_column_values_to_not_be_null({column})"


def between(column: str) -> str:
    return f"expect_column_values_to_be_between({column})"


def in_set(column: str) -> str:
    return f"expect_column_values_to_be_in_set({column})"


def regex(column: str) -> str:
    return f"expect_column_values_to_match_regex({column})"


# Each damaged row: fields of a real row replaced (or a function of the row's fields), and the
# row rules it must fail. Rows on the edge of a rule (a bound itself, a null the rule forgives)
# must pass: they are where a compiled rule and GX would part first.
FLIGHTS_DAMAGE = [
    ({"distance": "far"}, {CORRUPT, not_null("distance")}),
    (lambda fields: [*fields, "x", "y"], {CORRUPT}),
    (lambda fields: fields[:-3], {CORRUPT, not_null("hour"), not_null("minute"), not_null("time_hour")}),
    *[
        ({column: "NA"}, {not_null(column)})
        for column in (
            "year",
            "month",
            "day",
            "sched_dep_time",
            "sched_arr_time",
            "carrier",
            "flight",
            "origin",
            "dest",
            "distance",
            "hour",
            "minute",
            "time_hour",
        )
    ],
    ({"tailnum": "NA"}, {not_null("tailnum")}),  # it left, so it names its plane
    ({"tailnum": "NA", "dep_time": "NA", "arr_time": "NA", "air_time": "NA"}, set()),  # cancelled
    ({"origin": "XYZ"}, {in_set("origin")}),
    ({"dest": "XXX"}, {in_set("dest")}),
    ({"dest": "Mia"}, {in_set("dest"), regex("dest")}),
    ({"carrier": "U"}, {regex("carrier")}),
    ({"carrier": "b6"}, {regex("carrier")}),
    ({"tailnum": "N-123"}, {regex("tailnum")}),
    ({"tailnum": "N1234567"}, {regex("tailnum")}),
    ({"dep_time": "0"}, {between("dep_time")}),
    ({"dep_time": "2401"}, {between("dep_time")}),
    ({"dep_time": "2400", "arr_time": "1"}, set()),
    ({"arr_time": "2500"}, {between("arr_time")}),
    ({"sched_dep_time": "2400"}, {between("sched_dep_time")}),
    ({"sched_arr_time": "0"}, {between("sched_arr_time")}),
    ({"sched_dep_time": "2359", "sched_arr_time": "1"}, set()),
    ({"hour": "24"}, {between("hour")}),
    ({"hour": "-1"}, {between("hour")}),
    ({"hour": "0", "minute": "59"}, set()),
    ({"minute": "60"}, {between("minute")}),
    ({"flight": "0"}, {between("flight")}),
    ({"flight": "10000"}, {between("flight")}),
    ({"flight": "9999"}, set()),
    ({"dep_delay": "-181"}, {between("dep_delay")}),
    ({"dep_delay": "-180", "arr_delay": "1800"}, set()),
    ({"arr_delay": "1800.5"}, {between("arr_delay")}),
    ({"air_time": "0"}, {between("air_time")}),  # strict minimum: no flight takes no time
    ({"air_time": "800.5"}, {between("air_time")}),
    ({"air_time": "0.5", "distance": "6000"}, set()),
    ({"distance": "0"}, {between("distance")}),
    ({"distance": "-187"}, {between("distance")}),
    (
        {"origin": "XYZ", "hour": "27", "distance": "-1"},
        {in_set("origin"), between("hour"), between("distance")},
    ),
]
WEATHER_DAMAGE = [
    ({"temp": "warm"}, {CORRUPT}),
    (lambda fields: fields[:-1], {CORRUPT, not_null("time_hour")}),
    *[
        ({column: "NA"}, {not_null(column)})
        for column in ("origin", "year", "month", "day", "hour", "time_hour")
    ],
    ({"origin": "ewr"}, {in_set("origin")}),
    ({"hour": "24"}, {between("hour")}),
    ({"temp": "-40.1"}, {between("temp")}),
    ({"temp": "130", "dewp": "-60", "humid": "100", "wind_dir": "360"}, set()),
    ({"dewp": "100.5"}, {between("dewp")}),
    ({"humid": "-1"}, {between("humid")}),
    ({"wind_dir": "361"}, {between("wind_dir")}),
    ({"wind_speed": "1048.36058"}, {between("wind_speed")}),
    ({"wind_speed": "150", "wind_gust": "200", "precip": "10", "visib": "0"}, set()),
    ({"wind_gust": "200.1"}, {between("wind_gust")}),
    ({"precip": "-0.01"}, {between("precip")}),
    ({"pressure": "899.9"}, {between("pressure")}),
    ({"pressure": "1100.1"}, {between("pressure")}),
    ({"visib": "10.5"}, {between("visib")}),
    ({"temp": "NA", "wind_speed": "NA", "wind_gust": "NA", "pressure": "NA"}, set()),
]
DAMAGE = {"flights": FLIGHTS_DAMAGE, "weather": WEATHER_DAMAGE}


@pytest.fixture(scope="module")
def landed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("real_days")
    for ds in REAL_DAYS:
        land_day(str(root), ds)
    return root


def damaged_lines(header: list[str], template: str, damage) -> list[str]:
    lines = []
    for change, _ in damage:
        fields = template.split(",")
        if callable(change):
            fields = change(fields)
        else:
            for column, value in change.items():
                fields[header.index(column)] = value
        lines.append(",".join(fields))
    return lines


def template_row(lines: list[str]) -> str:
    """A real row without a missing field (a flight that left and arrived, a full reading)."""
    return next(line for line in lines if "NA" not in line.split(","))


def row_rule_suite(path: Path, into: Path) -> str:
    """The suite with its row rules only, verbatim: GX judges them on every row, as the compiled
    rules do (the job's GX run leaves them out, its rows already split)."""
    spec = json.loads(path.read_text())
    spec["expectations"] = [e for e in spec["expectations"] if on_failure(e) == QUARANTINE]
    target = into / path.name
    target.write_text(json.dumps(spec))
    return str(target)


@pytest.mark.parametrize("dataset", ["flights", "weather"])
def test_compiled_row_rules_agree_with_gx_on_the_real_suite(spark, landed, tmp_path, dataset):
    from pyspark.sql import functions as F

    suite = FLIGHTS.datasets[dataset].suite
    rules = row_rules(str(suite))
    labels = [rule_label(rule) for rule in rules]
    assert len(set(labels)) == len(labels)  # one count per rule below

    schema = RAW_SCHEMAS[dataset]()
    first = Path(landing_path(str(landed), dataset, REAL_DAYS[0])).read_text().splitlines()
    header = first[0].split(",")
    damage = DAMAGE[dataset]
    damaged = tmp_path / f"{dataset}.csv"
    damaged.write_text("\n".join([first[0], *damaged_lines(header, template_row(first[1:]), damage)]) + "\n")

    # coverage: every row rule of the suite is made to fail by some damaged row
    assert set(labels) - set().union(*(expected for _, expected in damage)) == set()

    # the parameters the job gives its suites (no row rule takes one today)
    day = dt.date.fromisoformat(REAL_DAYS[0])
    parameters = {
        "year": day.year,
        "month": day.month,
        "day": day.day,
        **load_thresholds(str(FLIGHTS.thresholds), f"raw_{dataset}"),
    }

    frames = [read_raw(spark, landing_path(str(landed), dataset, ds), schema) for ds in REAL_DAYS]
    rows = frames[0].unionByName(frames[1]).unionByName(read_raw(spark, str(damaged), schema)).cache()
    real = sum(
        len(Path(landing_path(str(landed), dataset, ds)).read_text().splitlines()) - 1 for ds in REAL_DAYS
    )
    judged = split_rows(rows, rules, parameters).cache()
    try:
        assert judged.count() == real + len(damage)
        # each damaged row (the last ones read) fails exactly the rules it was built to fail
        failed = [set(r[FAILURES]) for r in judged.select(FAILURES).tail(len(damage))]
        assert failed == [expected for _, expected in damage]

        compiled = {
            r["rule"]: r["count"]
            for r in judged.select(F.explode(FAILURES).alias("rule")).groupBy("rule").count().collect()
        }

        path = row_rule_suite(suite, tmp_path)
        verdict = run_suite(rows, path, name=f"raw_{dataset}_rows", parameters=parameters)
        gx = {f"{f['expectation']}({f['column']})": f["observed"]["unexpected_count"] for f in verdict.failed}
        assert {label: compiled.get(label, 0) for label in labels} == {
            label: gx.get(label, 0) for label in labels
        }
        assert set(gx) == set(labels)  # every rule failed somewhere, and nothing else did

        kept = judged.where(F.size(FAILURES) == 0).drop(FAILURES)
        passed = run_suite(kept, path, name=f"raw_{dataset}_kept", parameters=parameters)
        assert (passed.success, passed.failed) == (True, [])
    finally:
        judged.unpersist()
        rows.unpersist()
