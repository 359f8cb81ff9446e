"""Row rules compiled to Spark agree with Great Expectations on the same rows; thresholds; the
message and the behaviour of a task whose day is held."""

from __future__ import annotations

import json

import pytest

from mlcycle.quality.gates import (
    FAILURES,
    GateResult,
    held_day_message,
    row_rules,
    run_suite,
    split_rows,
    volume_bounds,
    write_result,
)

ROWS = [
    # carrier, flight, dep_time, tailnum, distance, origin
    ("AA", 1, 517, "N14228", 1400, "EWR"),
    (None, 2, 533, "N24211", 1416, "LGA"),  # null key
    ("B6", 3, None, None, 1089, "JFK"),  # cancelled: no plane needed
    ("B6", 4, 544, None, 1576, "JFK"),  # flew without a plane
    ("UA", 5, 554, "N39463", -3, "XYZ"),  # two rules at once
    ("U", 6, 555, "N516JB", 229, "EWR"),  # malformed carrier
]
SCHEMA = "carrier string, flight int, dep_time int, tailnum string, distance int, origin string"
RULES = [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "carrier"}},
    {
        "type": "expect_column_values_to_not_be_null",
        "kwargs": {
            "column": "tailnum",
            "row_condition": {"type": "nullity", "column": {"name": "dep_time"}, "is_null": False},
        },
    },
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "distance", "min_value": 0, "strict_min": True},
    },
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "origin", "value_set": ["EWR", "JFK", "LGA"]},
    },
    {
        "type": "expect_column_values_to_match_regex",
        "kwargs": {"column": "carrier", "regex": "^[A-Z0-9]{2}$"},
    },
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "flight", "max_value": {"$PARAMETER": "top"}},
    },
]


def suite(tmp_path, rules) -> str:
    path = tmp_path / "rules.json"
    spec = {"name": "rules", "expectations": [{**r, "meta": {"on_failure": "quarantine"}} for r in rules]}
    path.write_text(json.dumps(spec))
    return str(path)


@pytest.mark.spark
def test_compiled_rules_split_rows_as_gx_judges_them(spark, tmp_path):
    path = suite(tmp_path, RULES)
    df = spark.createDataFrame(ROWS, SCHEMA)
    judged = {r.flight: r[FAILURES] for r in split_rows(df, row_rules(path), {"top": 5}).collect()}
    assert judged == {
        1: [],
        2: ["expect_column_values_to_not_be_null(carrier)"],
        3: [],
        4: ["expect_column_values_to_not_be_null(tailnum)"],
        5: ["expect_column_values_to_be_between(distance)", "expect_column_values_to_be_in_set(origin)"],
        6: ["expect_column_values_to_match_regex(carrier)", "expect_column_values_to_be_between(flight)"],
    }
    # GX, on the same rules: the kept rows pass every rule, and each rule fails exactly on the rows
    # the compiled rule set aside
    kept = df.where(df.flight.isin([f for f, failed in judged.items() if not failed]))
    assert run_suite(kept, path, name="kept", parameters={"top": 5}).success
    verdict = run_suite(df, path, name="all", parameters={"top": 5})
    unexpected = {
        f"{f['expectation']}({f['column']})": f["observed"]["unexpected_count"] for f in verdict.failed
    }
    counted = {}
    for failed in judged.values():
        for label in failed:
            counted[label] = counted.get(label, 0) + 1
    assert unexpected == counted


def test_row_rules_refuse_what_a_single_row_cannot_fail(spark, tmp_path):
    path = suite(tmp_path, [{"type": "expect_column_values_to_be_unique", "kwargs": {"column": "flight"}}])
    df = spark.createDataFrame(ROWS, SCHEMA)
    with pytest.raises(ValueError, match="expect_column_values_to_be_unique cannot be a row rule"):
        split_rows(df, row_rules(path))


def test_a_row_rule_with_mostly_is_refused_with_the_suite_the_rule_and_the_fix(tmp_path):
    # GX passes a rule with mostly=0.8 on the 6 rows above although one carrier is null: which
    # failing rows it tolerates depends on the others, so no row can be quarantined for it
    tolerant = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "carrier", "mostly": 0.8}}
    path = suite(tmp_path, [RULES[2], tolerant])
    with pytest.raises(ValueError) as raised:
        row_rules(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: row rule expect_column_values_to_not_be_null(carrier) has mostly=0.8")
    assert "drop 'mostly'" in message and 'make the rule a batch rule (meta.on_failure: "block")' in message


def test_mostly_of_one_and_mostly_on_batch_rules_are_accepted(spark, tmp_path):
    exact = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "carrier", "mostly": 1.0}}
    path = tmp_path / "rules.json"
    batch = {**exact, "kwargs": {"column": "tailnum", "mostly": 0.5}, "meta": {"on_failure": "block"}}
    path.write_text(
        json.dumps(
            {"name": "rules", "expectations": [{**exact, "meta": {"on_failure": "quarantine"}}, batch]}
        )
    )
    rules = row_rules(str(path))
    assert [rule["kwargs"]["column"] for rule in rules] == ["carrier"]
    judged = split_rows(spark.createDataFrame(ROWS, SCHEMA), rules).where(f"size({FAILURES}) > 0")
    assert [r.flight for r in judged.collect()] == [2]


THRESHOLDS = {"min_rows": 100, "max_rows": 2000, "volume_min_ratio": 0.5, "volume_max_ratio": 1.5}


def test_volume_bounds_follow_the_trailing_median():
    assert volume_bounds(THRESHOLDS, []) == (100, 2000)
    assert volume_bounds(THRESHOLDS, [900, 1000, 950]) == (475, 1425)
    assert volume_bounds(THRESHOLDS, [900, 1000]) == (475, 1425)
    assert volume_bounds(THRESHOLDS, [100, 120, 110]) == (100, 165)  # never under the absolute floor
    assert volume_bounds(THRESHOLDS, [1800, 1900, 1850]) == (925, 2000)


def test_held_day_message_quotes_each_failed_verdict(tmp_path):
    root = str(tmp_path)
    failed = GateResult(False, "raw_weather", "raw_weather", 1, [])
    write_result(
        failed, f"{root}/gates/raw_weather/ds=2013-01-05.json", message="Gate 'raw_weather' rejected ..."
    )
    passed = GateResult(True, "raw_flights", "raw_flights", 7, [])
    write_result(passed, f"{root}/gates/raw_flights/ds=2013-01-05.json", message=None)

    text = held_day_message(root, "validate_raw", "2013-01-05")
    assert "Gate 'raw_weather' rejected" in text and "raw_flights" not in text
    assert "its own message is in the output above" not in text  # the verdict is quoted instead

    # a verdict without its message points at its file; a task whose gates kept no failed
    # verdict points at the job's own output
    write_result(failed, f"{root}/gates/raw_weather/ds=2013-01-06.json", message=None)
    assert f"gate raw_weather failed: see {root}/gates/raw_weather/ds=2013-01-06.json" in held_day_message(
        root, "validate_raw", "2013-01-06"
    )
    assert "its own message is in the output above" in held_day_message(root, "build_features", "2013-01-05")


def test_a_task_of_many_days_names_the_held_days_and_quotes_each(tmp_path):
    from mlcycle.quality.gates import held_days_message

    root = str(tmp_path)
    days = ["2013-01-05", "2013-01-06", "2013-01-07"]
    for ds in days:
        write_result(
            GateResult(True, "raw_flights", "raw_flights", 7, []), f"{root}/gates/raw_flights/ds={ds}.json"
        )
        write_result(
            GateResult(True, "raw_weather", "raw_weather", 7, []), f"{root}/gates/raw_weather/ds={ds}.json"
        )
    write_result(
        GateResult(False, "raw_weather", "raw_weather", 1, []),
        f"{root}/gates/raw_weather/ds=2013-01-06.json",
        message="Gate 'raw_weather' rejected raw_weather ds=2013-01-06: no file",
    )
    text = held_days_message(root, "validate_raw", days)
    assert text.startswith("Data-quality gates held 1 of 3 days (2013-01-06); the other days were written.")
    assert "Gate 'raw_weather' rejected raw_weather ds=2013-01-06: no file" in text
    assert held_days_message(root, "validate_raw", days[:1]) == held_day_message(
        root, "validate_raw", days[0]
    )


def test_a_held_day_fails_the_task_without_retries_and_other_failures_keep_them(tmp_path, monkeypatch):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from mlcycle.orchestration.operators import spark_job

    root = str(tmp_path)
    write_result(
        GateResult(False, "raw_flights", "raw_flights", 1, []),
        f"{root}/gates/raw_flights/ds=2013-01-05.json",
        message="Gate 'raw_flights' rejected raw_flights ds=2013-01-05: duplicates",
    )
    task = spark_job(
        "validate_raw", "quality.py", ["--ds", "2013-01-05", "--data-root", root], name="flights"
    )

    def exits(code):
        def execute(self, context):
            raise AirflowException(f"Cannot execute: spark-submit ... Error code is: {code}.")

        return execute

    monkeypatch.setattr(SparkSubmitOperator, "execute", exits(3))
    with pytest.raises(AirflowFailException, match="duplicates"):
        task.execute({"ds": "2013-01-05"})
    monkeypatch.setattr(SparkSubmitOperator, "execute", exits(1))
    with pytest.raises(AirflowException, match="Error code is: 1") as raised:
        task.execute({"ds": "2013-01-05"})
    assert not isinstance(raised.value, AirflowFailException)
