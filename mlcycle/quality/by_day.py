"""A suite judged for many days at once: every expectation's metric for every day in one Spark
pass, grouped by the day, instead of one Great Expectations validation per day.

GX validates one batch at a time and computes each expectation's metrics as small Spark jobs of
their own: a few seconds a day however few its rows, which over a year of days is most of a
backfill. Here the suite's expectations become aggregate columns of one ``groupBy(ds)`` (windows
for the uniqueness rules), and each day's verdict is read from its row of the result with GX's
semantics: a null passes every rule but the null checks, ``row_condition`` limits the rows
judged, ``$PARAMETER`` placeholders take the day's own values. The verdict has the shape
``run_suite`` returns (``GateResult``: the failed expectations with what was observed and
expected); ``tests/integration/test_gates_by_day.py`` checks it against GX's own verdict on good
and broken days. Only the expectation types of ``SUPPORTED`` are judged this way; a suite with
another type is refused with its name, so a gate never quietly weakens.

There are no Data Docs for a verdict computed here: a job of many days renders them with
``run_suite`` for the days it wants a page of (the held ones). A job of one day (``gate_day``)
records a passing verdict in its Data Docs as GX would (``gates.passed_with_docs``), and has a
failing day judged again by GX, whose verdict, observed values and Data Docs it keeps.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlcycle.quality.gates import (
    EXPECTED_KWARGS,
    MAX_SHOWN,
    QUARANTINE,
    GateResult,
    _condition,
    _fails,
    _json_safe,
    on_failure,
    passed_with_docs,
    run_suite,
)

MAP_TYPES = (
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_match_regex",
)
UNIQUE_TYPES = ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique")
AGGREGATE_TYPES = (
    "expect_table_row_count_to_be_between",
    "expect_column_mean_to_be_between",
    "expect_column_max_to_be_between",
    "expect_column_min_to_be_between",
)
SCHEMA_TYPES = ("expect_table_columns_to_match_set",)
SUPPORTED = MAP_TYPES + UNIQUE_TYPES + AGGREGATE_TYPES + SCHEMA_TYPES


def suite_expectations(suite_path: str, *, include_row_rules: bool = True) -> tuple[str, list[dict]]:
    """The suite's name and expectations (without the row rules if asked); a type this module
    cannot judge is refused."""
    spec = json.loads(Path(suite_path).read_text())
    expectations = [
        e for e in spec.get("expectations", []) if include_row_rules or on_failure(e) != QUARANTINE
    ]
    unknown = sorted({e["type"] for e in expectations} - set(SUPPORTED))
    if unknown:
        raise ValueError(
            f"{suite_path}: {', '.join(unknown)} cannot be judged for many days in one pass "
            f"(supported: {', '.join(SUPPORTED)}); gate such a suite one day at a time"
        )
    return spec["name"], expectations


def _is_parameter(value) -> bool:
    return isinstance(value, dict) and "$PARAMETER" in value


def _value(value, parameters: dict):
    return parameters[value["$PARAMETER"]] if _is_parameter(value) else value


def _per_row_parameters(expectation: dict, parameters: dict[str, dict], key: str) -> dict:
    """Parameters of a row-level expectation as Spark columns: each row takes its own day's
    value (a literal map from day to value, looked up by the row's day)."""
    from pyspark.sql import functions as F

    columns = {}
    for value in expectation["kwargs"].values():
        if _is_parameter(value):
            name = value["$PARAMETER"]
            pairs = [F.lit(x) for day, p in sorted(parameters.items()) for x in (day, p[name])]
            columns[name] = F.create_map(*pairs)[F.col(key).cast("string")]
    return columns


def _row_condition(expectation: dict):
    from pyspark.sql import functions as F

    condition = expectation["kwargs"].get("row_condition")
    return F.coalesce(_condition(condition), F.lit(False)) if condition else F.lit(True)


def _columns(expectation: dict) -> list[str]:
    kwargs = expectation["kwargs"]
    return list(kwargs.get("column_list") or [kwargs["column"]])


def gate_day(
    df,
    suite_path: str,
    *,
    name: str,
    ds: str,
    docs_dir: str,
    parameters: dict | None = None,
    include_row_rules: bool = True,
    key: str = "ds",
    gx_frame=None,
) -> tuple[GateResult, int]:
    """One day's verdict of the suite on ``df`` (whose ``key`` is ``ds``), with its Data Docs, and
    the day's rows. The suite's metrics are measured in one pass; a day that passes is recorded in
    the Data Docs from that verdict, a day that fails is judged again by GX on ``gx_frame`` (default
    ``df``): its verdict, with what was observed, is the one kept. A suite with an expectation this
    module cannot judge is run by GX alone, as is every day with ``MLCYCLE_ONE_PASS_GATES=0``."""
    from mlcycle.config import switched_on

    values = parameters or {}
    one_pass = switched_on("MLCYCLE_ONE_PASS_GATES")
    if one_pass:
        try:
            suite_expectations(suite_path, include_row_rules=include_row_rules)
        except ValueError:  # a type of expectation judged by GX only
            one_pass = False
    measured = None
    if one_pass:
        measured = measure_days(
            df,
            suite_path,
            name=name,
            row_parameters={ds: values},
            key=key,
            include_row_rules=include_row_rules,
        )
        if measured.verdict(ds, values).success:
            result = passed_with_docs(
                suite_path,
                name=name,
                docs_dir=docs_dir,
                parameters=parameters,
                include_row_rules=include_row_rules,
            )
            return result, measured.rows_of(ds)
    frame = df if gx_frame is None else gx_frame
    result = run_suite(
        frame,
        suite_path,
        name=name,
        docs_dir=docs_dir,
        parameters=parameters,
        include_row_rules=include_row_rules,
    )
    return result, measured.rows_of(ds) if measured is not None else frame.count()


def judge_days(
    df,
    suite_path: str,
    *,
    name: str,
    parameters: dict[str, dict],
    key: str = "ds",
    include_row_rules: bool = True,
) -> dict[str, GateResult]:
    """The verdict of the suite at ``suite_path`` on each day of ``parameters`` (day -> that day's
    ``$PARAMETER`` values), the rows of a day being those of ``df`` whose ``key`` is that day. A day
    without a row is judged as an empty table."""
    measured = measure_days(
        df, suite_path, name=name, row_parameters=parameters, key=key, include_row_rules=include_row_rules
    )
    verdicts = {ds: measured.verdict(ds, parameters[ds]) for ds in sorted(parameters)}
    measured.quote(verdicts)
    return verdicts


class Measured:
    """The suite's metrics of every day, measured in one pass (``measure_days``); a day's verdict
    is read from them with that day's parameters (``verdict``), so a caller can set a day's
    parameters from the verdicts of the days before it (a volume band from the trailing days)."""

    def __init__(
        self, rows, suite: str, name: str, expectations: list[dict], by_day: dict, columns, row_parameters
    ):
        self.rows, self.suite, self.name = rows, suite, name
        self.expectations, self.by_day, self.columns = expectations, by_day, list(columns)
        self.row_parameters = row_parameters
        self._failing: dict[str, list[int]] = {}

    def rows_of(self, ds: str) -> int:
        return int((self.by_day.get(ds) or {}).get("__rows") or 0)

    def verdict(self, ds: str, parameters: dict) -> GateResult:
        values = self.by_day.get(ds) or {}
        failed, indices = [], []
        for i, e in enumerate(self.expectations):
            outcome = _outcome(e, i, values, parameters, self.columns)
            if outcome is not None:
                failed.append(outcome)
                indices.append(i)
        self._failing[ds] = indices
        return GateResult(not failed, self.suite, self.name, len(self.expectations), failed)

    def quote(self, verdicts: dict[str, GateResult]) -> None:
        """Quote up to ``MAX_SHOWN`` unexpected values in each failed column rule of ``verdicts``."""
        failing = {ds: self._failing.get(ds, []) for ds, v in verdicts.items() if not v.success}
        _add_samples(self.rows, self.expectations, self.row_parameters, failing, verdicts)


def measure_days(
    df,
    suite_path: str,
    *,
    name: str,
    row_parameters: dict[str, dict],
    key: str = "ds",
    include_row_rules: bool = True,
) -> Measured:
    """Every expectation's metrics of the suite, for every day of ``df`` (its ``key``), in one
    Spark pass. ``row_parameters``: each day's values of the ``$PARAMETER`` placeholders that
    rules judging single rows use (every day of ``df`` must have them); a day's other parameters
    are given to ``Measured.verdict``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    suite, expectations = suite_expectations(suite_path, include_row_rules=include_row_rules)
    rows = df.withColumn("__day", F.col(key).cast("string"))
    aggregates = [F.count(F.lit(1)).alias("__rows")]
    for i, e in enumerate(expectations):
        kind = e["type"]
        if _missing_columns(e, df.columns):
            continue
        if kind in MAP_TYPES:
            judged = _row_condition(e)
            failed = _fails(_with_columns(e, _per_row_parameters(e, row_parameters, "__day")), {})
            aggregates += [
                F.sum(F.when(failed, 1).otherwise(0)).alias(f"__u{i}"),
                F.sum(F.when(judged, 1).otherwise(0)).alias(f"__n{i}"),
                F.sum(F.when(judged & F.col(e["kwargs"]["column"]).isNull(), 1).otherwise(0)).alias(
                    f"__m{i}"
                ),
            ]
        elif kind in UNIQUE_TYPES:
            cols = _columns(e)
            present = (
                F.col(cols[0]).isNotNull()
                if kind == "expect_column_values_to_be_unique"
                else _any_present(cols)
            )
            judged = _row_condition(e) & present
            # how many judged rows of the day share this row's values (unjudged rows of the same
            # values do not count)
            rows = rows.withColumn(
                f"__c{i}",
                F.when(
                    judged,
                    F.sum(F.when(judged, 1).otherwise(0)).over(
                        Window.partitionBy("__day", *[F.col(c) for c in cols])
                    ),
                ),
            )
            aggregates += [
                F.sum(F.when(F.col(f"__c{i}") > 1, 1).otherwise(0)).alias(f"__u{i}"),
                F.sum(F.when(_row_condition(e), 1).otherwise(0)).alias(f"__n{i}"),
                F.sum(F.when(_row_condition(e) & ~present, 1).otherwise(0)).alias(f"__m{i}"),
            ]
        elif kind in AGGREGATE_TYPES and kind != "expect_table_row_count_to_be_between":
            column = F.when(_row_condition(e), F.col(e["kwargs"]["column"]))
            agg = {"mean": F.avg, "max": F.max, "min": F.min}[kind.split("_")[2]]
            aggregates.append(agg(column).alias(f"__a{i}"))
    by_day = {r["__day"]: r.asDict() for r in rows.groupBy("__day").agg(*aggregates).collect()}
    return Measured(rows, suite, name, expectations, by_day, df.columns, row_parameters)


def _with_columns(expectation: dict, columns: dict) -> dict:
    """The expectation with its ``$PARAMETER`` kwargs replaced by the given Spark columns."""
    kwargs = {
        k: columns[v["$PARAMETER"]] if _is_parameter(v) else v for k, v in expectation["kwargs"].items()
    }
    return {**expectation, "kwargs": kwargs}


def _missing_columns(expectation: dict, columns: list[str]) -> list[str]:
    kwargs = expectation["kwargs"]
    named = list(kwargs.get("column_list") or ([kwargs["column"]] if "column" in kwargs else []))
    condition = kwargs.get("row_condition")
    named += _condition_columns(condition) if condition else []
    return [c for c in named if c not in columns]


def _condition_columns(condition: dict) -> list[str]:
    if condition.get("type") in ("and", "or"):
        return [c for part in condition["conditions"] for c in _condition_columns(part)]
    return [condition["column"]["name"]] if "column" in condition else []


def _any_present(columns: list[str]):
    from functools import reduce

    from pyspark.sql import functions as F

    return reduce(lambda a, b: a | b, [F.col(c).isNotNull() for c in columns])


def _expected(expectation: dict, parameters: dict) -> dict:
    kwargs = expectation["kwargs"]
    return _json_safe(
        {
            k: _value(kwargs[k], parameters)
            for k in EXPECTED_KWARGS
            if kwargs.get(k) is not None and _value(kwargs[k], parameters) is not None
        }
    )


def _failure(expectation: dict, parameters: dict, observed) -> dict:
    kwargs = expectation["kwargs"]
    column = kwargs.get("column") or kwargs.get("column_list") or kwargs.get("column_A")
    return {
        "expectation": expectation["type"],
        "column": _json_safe(column),
        "observed": _json_safe(observed),
        "expected": _expected(expectation, parameters),
    }


def _between(value, expectation: dict, parameters: dict) -> bool:
    kwargs = expectation["kwargs"]
    low, high = _value(kwargs.get("min_value"), parameters), _value(kwargs.get("max_value"), parameters)
    if value is None:
        return False
    if low is not None and (value <= low if kwargs.get("strict_min") else value < low):
        return False
    if high is not None and (value >= high if kwargs.get("strict_max") else value > high):
        return False
    return True


def _outcome(expectation: dict, i: int, values: dict, parameters: dict, columns: list[str]):
    """The failure record of expectation ``i`` on one day, or None when the day passes it."""
    kind = expectation["type"]
    missing = _missing_columns(expectation, columns)
    if missing:  # as GX: the expectation fails with the error it met
        return _failure(
            expectation, parameters, {"error": f"column(s) {', '.join(missing)} not in the table"}
        )
    if kind == "expect_table_columns_to_match_set":
        wanted = set(expectation["kwargs"]["column_set"])
        exact = expectation["kwargs"].get("exact_match", True)
        ok = set(columns) == wanted if exact is not False else wanted <= set(columns)
        return None if ok else _failure(expectation, parameters, list(columns))
    if kind == "expect_table_row_count_to_be_between":
        rows = int(values.get("__rows") or 0)
        return None if _between(rows, expectation, parameters) else _failure(expectation, parameters, rows)
    if kind in AGGREGATE_TYPES:
        value = values.get(f"__a{i}")
        return None if _between(value, expectation, parameters) else _failure(expectation, parameters, value)
    unexpected = int(values.get(f"__u{i}") or 0)
    if not unexpected:
        return None
    judged, missing = int(values.get(f"__n{i}") or 0), int(values.get(f"__m{i}") or 0)
    null_rule = kind in ("expect_column_values_to_not_be_null", "expect_column_values_to_be_null")
    base = judged if null_rule else judged - missing
    mostly = expectation["kwargs"].get("mostly")
    if mostly is not None and base and (base - unexpected) / base >= mostly:
        return None
    return _failure(
        expectation,
        parameters,
        {
            "unexpected_count": unexpected,
            "unexpected_percent": 100.0 * unexpected / base if base else None,
            "unexpected_sample": [],
        },
    )


def _add_samples(rows, expectations, parameters, failing: dict[str, list[int]], verdicts) -> None:
    """Up to ``MAX_SHOWN`` unexpected values of each failed column rule, for the held days only
    (one more pass, as GX's SUMMARY run is only made for a failing suite)."""
    from pyspark.sql import functions as F

    wanted = {
        i
        for failed in failing.values()
        for i in failed
        if expectations[i]["type"] in MAP_TYPES + UNIQUE_TYPES
        and not _missing_columns(expectations[i], rows.columns)
    }
    if not wanted:
        return
    days = sorted(failing)
    held = rows.where(F.col("__day").isin(days))
    samples: dict[tuple[str, int], list] = {}
    for i in sorted(wanted):
        e = expectations[i]
        if e["type"] in MAP_TYPES:
            failed = _fails(_with_columns(e, _per_row_parameters(e, parameters, "__day")), {})
            picked = held.where(failed).select("__day", F.col(e["kwargs"]["column"]).alias("v"))
        else:
            cols = _columns(e)
            value = F.col(cols[0]) if e["type"] == "expect_column_values_to_be_unique" else F.struct(*cols)
            picked = held.where(F.col(f"__c{i}") > 1).select("__day", value.alias("v"))
        numbered = picked.withColumn("__k", F.row_number().over(_window_by_day())).where(
            F.col("__k") <= MAX_SHOWN
        )
        for r in numbered.collect():
            v = r["v"].asDict() if hasattr(r["v"], "asDict") else r["v"]
            samples.setdefault((r["__day"], i), []).append(v)
    for ds, failed in failing.items():
        records = [f for f in verdicts[ds].failed]
        for record, i in zip(records, failed, strict=True):
            if (ds, i) in samples and isinstance(record["observed"], dict):
                record["observed"]["unexpected_sample"] = _json_safe(samples[(ds, i)])


def _window_by_day():
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    return Window.partitionBy("__day").orderBy(F.col("v").asc_nulls_first())
