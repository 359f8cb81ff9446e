"""The gates runner on a tiny Spark DataFrame: verdict, failure record, message, Data Docs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcycle.config import REPO_ROOT
from mlcycle.quality.gates import GateFailed, GateResult, enforce, load_suite, run_suite, write_result

pytestmark = pytest.mark.spark

SUITES = sorted((REPO_ROOT / "expectations" / "flights").glob("*.json"))


def suite_file(tmp_path: Path, name: str, expectations: list[dict]) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "expectations": expectations}))
    return str(path)


def expectation(type_: str, **kwargs) -> dict:
    return {"type": type_, "kwargs": kwargs}


@pytest.fixture(scope="module")
def predictions(spark):
    rows = [
        ("AA1-JFK-20130102-0559", 150.0, "3"),
        ("AA2-JFK-20130102-0600", 2.5, "3"),
        ("AA2-JFK-20130102-0600", 900.0, None),
    ]
    return spark.createDataFrame(rows, "flight_id string, prediction double, model_version string").cache()


def test_passing_suite_succeeds_and_builds_data_docs(spark, predictions, tmp_path):
    path = suite_file(
        tmp_path,
        "shape",
        [
            expectation("expect_table_row_count_to_be_between", min_value=1, max_value=10),
            expectation("expect_column_values_to_not_be_null", column="prediction"),
            expectation(
                "expect_column_values_to_be_between",
                column="prediction",
                min_value={"$PARAMETER": "low"},
                max_value=1000,
            ),
        ],
    )
    docs = tmp_path / "docs"
    result = run_suite(predictions, path, name="predictions", docs_dir=str(docs), parameters={"low": 0})

    assert (result.success, result.suite, result.name, result.evaluated, result.failed) == (
        True,
        "shape",
        "predictions",
        3,
        [],
    )
    assert result.docs == str(docs.resolve() / "index.html")
    assert Path(result.docs).is_file()
    assert list(docs.glob("validations/**/*.html"))
    enforce(result, partition="ds=2013-01-02")  # a passing gate lets the run go on


def test_failing_suite_names_each_failure_with_what_was_observed(spark, predictions, tmp_path):
    path = str(REPO_ROOT / "expectations" / "flights" / "predictions.json")
    result = run_suite(
        predictions, path, name="predictions", docs_dir=str(tmp_path / "docs"), parameters={"flights": 3}
    )

    assert result.success is False
    failed = {(f["expectation"], f["column"]): f["observed"] for f in result.failed}
    assert set(failed) == {
        ("expect_column_values_to_be_unique", "flight_id"),
        ("expect_column_values_to_be_between", "prediction"),
        ("expect_column_values_to_not_be_null", "model_version"),
    }
    out_of_range = failed[("expect_column_values_to_be_between", "prediction")]
    assert out_of_range["unexpected_count"] == 2
    assert sorted(out_of_range["unexpected_sample"]) == [2.5, 900.0]
    assert failed[("expect_column_values_to_not_be_null", "model_version")]["unexpected_count"] == 1

    with pytest.raises(GateFailed) as raised:
        enforce(result, partition="ds=2013-01-02")
    message = str(raised.value)
    assert "Gate 'predictions' rejected predictions ds=2013-01-02: 3 of 6 expectations failed" in message
    assert "expect_column_values_to_be_between on prediction: observed" in message
    assert "900.0" in message
    assert f"Data Docs: {result.docs_page}" in message
    assert Path(result.docs_page).is_file() and result.docs_page.startswith(str(tmp_path.resolve() / "docs"))
    assert raised.value.result is result

    written = write_result(
        result, str(tmp_path / "gates" / "predictions" / "ds=2013-01-02.json"), ds="2013-01-02"
    )
    record = json.loads(Path(written).read_text())
    assert record["success"] is False and record["ds"] == "2013-01-02" and len(record["failed"]) == 3


def test_missing_column_fails_the_gate_instead_of_raising(spark, predictions, tmp_path):
    path = suite_file(tmp_path, "cols", [expectation("expect_column_values_to_not_be_null", column="nope")])
    result = run_suite(predictions, path, name="predictions", docs_dir=None)
    assert result.success is False and result.docs is None
    assert result.failed[0]["column"] == "nope"
    assert result.failed[0]["observed"] == {"error": 'Error: The column "nope" in BatchData does not exist.'}


def test_combined_failure_lists_every_gate():
    a = GateResult(
        False, "raw_flights", "raw_flights", 3, [{"expectation": "x", "column": "c", "observed": 1}]
    )
    b = GateResult(
        False,
        "raw_weather",
        "raw_weather",
        2,
        [{"expectation": "y", "column": None, "observed": 2}],
        "/d/index.html",
    )
    combined = GateFailed.combine([GateFailed(a, "ds=2013-01-02"), GateFailed(b, "ds=2013-01-02")])
    assert combined.results == [a, b]
    text = str(combined)
    assert "rejected raw_flights ds=2013-01-02" in text and "rejected raw_weather ds=2013-01-02" in text
    assert "  - y: observed 2" in text and "Data Docs: /d/index.html" in text
    assert "not built" in text


def test_a_suite_losing_expectations_on_load_is_refused(tmp_path):
    path = suite_file(tmp_path, "typo", [expectation("expect_column_values_to_be_nul", column="a")])
    with pytest.raises(ValueError, match="1 of 1 expectations are not valid"):
        load_suite(path)


@pytest.mark.parametrize("path", SUITES, ids=lambda p: p.stem)
def test_project_suites_load(path):
    spec = json.loads(path.read_text())
    suite = load_suite(str(path))
    assert suite.name == path.stem
    assert len(suite.expectations) == len(spec["expectations"]) > 0
