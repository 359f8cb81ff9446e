"""Data-quality gates: a Great Expectations suite (JSON under ``expectations/``) run on a Spark
DataFrame, with an answer a person can act on.

GX is imported inside the functions: it costs seconds, and DAG files import this module while
being parsed. The context is ephemeral (nothing of GX's own state outlives the run): the suite
JSON in git is the source of truth, the gate result JSON and the Data Docs site are the record.
A checkpoint does not raise when expectations fail, so ``enforce`` turns ``success=False`` into
``GateFailed``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

DOCS_SITE = "mlcycle_docs"
# The Spark tasks of the pipeline that run gates, by task id (``task_gates`` says which gates);
# their verdicts are kept under ``<data_root>/gates/<gate>/ds=D.json`` (``result_path``; a model's
# predictions under its own records) and read by the training DAG, the training job and the
# data-quality view of the Airflow UI.
GATED_TASKS = ("validate_raw", "build_features", "score")


def task_gates(task_id: str, usecase=None) -> tuple[str, ...]:
    """The gates a task runs: ``raw_<dataset>`` for each raw dataset of the use case (default: the
    only one of the catalog) for ``validate_raw``, ``features``, ``predictions``."""
    if task_id == "validate_raw":
        from mlcycle.specs import find_usecase

        return (usecase or find_usecase()).raw_gates
    return {"build_features": ("features",), "score": ("predictions",)}.get(task_id, ())


# Exit status of a Spark entry point whose gate rejected its partition (1 stays "the job broke").
GATE_FAILED_EXIT = 3
MAX_SHOWN = 5  # unexpected values quoted per failed expectation


@dataclass
class GateResult:
    success: bool
    suite: str
    name: str
    evaluated: int
    failed: list[dict] = field(default_factory=list)
    docs: str | None = None
    docs_page: str | None = None  # this validation's own page in the Data Docs site

    def as_dict(self) -> dict:
        return asdict(self)


class GateFailed(Exception):
    """A gate rejected a partition. Not worth retrying: the data, not the run, has to change."""

    def __init__(self, result: GateResult, partition: str, quarantine: str | None = None):
        self.result = result
        self.results = [result]
        self.partition = partition
        super().__init__(failure_message(result, partition, quarantine))

    @classmethod
    def combine(cls, failures: list[GateFailed]) -> GateFailed:
        """One failure for several gates of the same run, so a person sees every problem at once."""
        combined = cls(failures[0].result, failures[0].partition)
        combined.results = [result for failure in failures for result in failure.results]
        combined.args = ("\n\n".join(str(failure) for failure in failures),)
        return combined

    def summary(self) -> list[str]:
        """One line per rejected data set: its name and the expectations (with column) that failed."""
        return [
            f"{r.name}: " + ", ".join(f"{f['expectation']}({f.get('column')})" for f in r.failed)
            for r in self.results
        ]


def failure_message(result: GateResult, partition: str, quarantine: str | None = None) -> str:
    lines = [
        f"Gate '{result.suite}' rejected {result.name} {partition}: "
        f"{len(result.failed)} of {result.evaluated} expectations failed."
    ]
    for failure in result.failed:
        column = f" on {failure['column']}" if failure.get("column") else ""
        observed = json.dumps(failure.get("observed"), default=str)
        expected = failure.get("expected")
        wanted = f", expected {json.dumps(expected, default=str)}" if expected not in (None, {}) else ""
        lines.append(f"  - {failure['expectation']}{column}: observed {observed}{wanted}")
    if quarantine:
        lines.append(f"Quarantined rows: {quarantine}")
    docs = result.docs_page or result.docs
    lines.append(f"Data Docs: {docs}" if docs else "Data Docs: not built for this run")
    return "\n".join(lines)


def enforce(result: GateResult, *, partition: str, quarantine: str | None = None) -> None:
    if not result.success:
        raise GateFailed(result, partition, quarantine)


QUARANTINE = "quarantine"  # meta.on_failure of a row rule: a failing row is set aside
BLOCK = "block"  # the default: a failure blocks the whole partition


def on_failure(expectation: dict) -> str:
    return (expectation.get("meta") or {}).get("on_failure", BLOCK)


def row_rules(suite_path: str) -> list[dict]:
    """The suite's row rules (``meta.on_failure == "quarantine"``): each row is judged alone.

    A rule with ``mostly`` below 1 is refused: GX passes it while enough rows pass, so whether one
    failing row is acceptable depends on all the others, and no verdict of a single row can be
    what GX decides. Quarantining every failing row would set aside rows GX tolerates.
    """
    spec = json.loads(Path(suite_path).read_text())
    rules = [e for e in spec.get("expectations", []) if on_failure(e) == QUARANTINE]
    for rule in rules:
        mostly = rule.get("kwargs", {}).get("mostly")
        if mostly is not None and mostly != 1:
            raise ValueError(
                f"{suite_path}: row rule {rule_label(rule)} has mostly={mostly!r}; a row rule judges "
                "each row alone and cannot tolerate a share of failing rows. Either drop 'mostly' "
                "(each failing row is quarantined; the day's share of quarantined rows is bounded "
                "by max_quarantine_share in thresholds.toml) or make the rule a batch rule "
                '(meta.on_failure: "block") so GX judges the share over the whole day.'
            )
    return rules


def load_suite(suite_path: str, *, include_row_rules: bool = True):
    """The suite stored at ``suite_path`` (GX 1.x ExpectationSuite JSON); without its row rules
    when they are applied row by row instead (``split_rows``).

    GX logs and drops an expectation it cannot build instead of raising, which would quietly
    weaken the gate; a suite that loses expectations on the way in is refused.
    """
    import great_expectations as gx

    spec = json.loads(Path(suite_path).read_text())
    declared = spec.get("expectations", [])
    if not include_row_rules:
        declared = [e for e in declared if on_failure(e) != QUARANTINE]
    suite = gx.ExpectationSuite(
        name=spec["name"],
        expectations=declared,
        meta=spec.get("meta"),
        notes=spec.get("notes"),
    )
    if len(suite.expectations) != len(declared):
        raise ValueError(
            f"{suite_path}: {len(declared) - len(suite.expectations)} of {len(declared)} expectations "
            "are not valid GX 1.x expectations (see the GX log above)"
        )
    return suite


def _json_safe(value):
    """Observed values as plain JSON: NaN/inf become null, unknown types become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _errors(exception_info: dict | None) -> list[str]:
    """Messages of the exceptions GX caught while evaluating an expectation. GX 1.x keys them by
    metric (``{metric_id: {"raised_exception": ...}}``); older results hold one flat dict."""
    info = exception_info or {}
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    return [str(e.get("exception_message")) for e in entries if e.get("raised_exception")]


def _observed(outcome) -> object:
    errors = _errors(outcome.exception_info)
    if errors:
        return {"error": "; ".join(sorted(set(errors)))}
    detail = outcome.result or {}
    if "observed_value" in detail:
        return _json_safe(detail["observed_value"])
    return _json_safe(
        {
            "unexpected_count": detail.get("unexpected_count"),
            "unexpected_percent": detail.get("unexpected_percent"),
            "unexpected_sample": list(detail.get("partial_unexpected_list") or [])[:MAX_SHOWN],
        }
    )


EXPECTED_KWARGS = ("min_value", "max_value", "strict_min", "strict_max", "value_set", "regex", "mostly")


def _failure(outcome) -> dict:
    kwargs = outcome.expectation_config.kwargs
    column = kwargs.get("column") or kwargs.get("column_list") or kwargs.get("column_A")
    return {
        "expectation": outcome.expectation_config.type,
        "column": _json_safe(column),
        "observed": _observed(outcome),
        "expected": _json_safe({k: kwargs[k] for k in EXPECTED_KWARGS if kwargs.get(k) is not None}),
    }


def _docs_site_config(docs_dir: str) -> dict:
    return {
        "class_name": "SiteBuilder",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(Path(docs_dir).resolve()),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }


_TEMPLATES = None  # one process's compiled Data Docs templates, shared by every rendering
# GX keeps its current context in a module of its own: two gates of a job judged side by side
# (``spark_jobs.common.side_by_side``) make and use their contexts one at a time.
_GX = threading.RLock()


def _one_context_at_a_time(function):
    import functools

    @functools.wraps(function)
    def locked(*args, **kwargs):
        with _GX:
            return function(*args, **kwargs)

    return locked


def _share_compiled_templates() -> None:
    """GX renders Data Docs with a new Jinja environment per view, which compiles its templates
    again each time: about 0.8 s of every gate with Data Docs, more than a quarter of a features
    gate. One in-memory bytecode cache for all of them keeps each template compiled once per
    process; the templates, filters and output are GX's own."""
    global _TEMPLATES
    if _TEMPLATES is not None:
        return
    from great_expectations.render.view.view import DefaultJinjaView
    from jinja2 import BytecodeCache

    class InMemory(BytecodeCache):
        def __init__(self) -> None:
            self.compiled: dict[str, bytes] = {}

        def load_bytecode(self, bucket) -> None:
            if bucket.key in self.compiled:
                bucket.bytecode_from_string(self.compiled[bucket.key])

        def dump_bytecode(self, bucket) -> None:
            self.compiled[bucket.key] = bucket.bytecode_to_string()

    _TEMPLATES = InMemory()
    built = DefaultJinjaView.__init__

    def __init__(self, *args, **kwargs) -> None:
        built(self, *args, **kwargs)
        self.env.bytecode_cache = _TEMPLATES

    DefaultJinjaView.__init__ = __init__


@_one_context_at_a_time
def run_suite(
    df,
    suite_path: str,
    *,
    name: str,
    docs_dir: str | None = None,
    parameters: dict | None = None,
    include_row_rules: bool = True,
) -> GateResult:
    """Validate a Spark DataFrame against the suite at ``suite_path``.

    ``name`` is what is being validated (``raw_flights``, ``features``...): it names the GX data
    asset, hence the Data Docs pages. ``parameters`` fill the suite's ``{"$PARAMETER": ...}``
    placeholders, e.g. the day a raw partition must hold. With ``docs_dir``, the validation is
    rendered into the filesystem Data Docs site there and ``docs`` points at its ``index.html``.

    The verdict is computed first with ``BOOLEAN_ONLY`` results: on Spark each quoted unexpected
    value costs a job per expectation, about five times the cost of the verdict itself. Only a
    failing suite is run again with ``SUMMARY`` results, so the failure record and its Data Docs
    show what was observed.
    """
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    _share_compiled_templates()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    suite = context.suites.add(load_suite(suite_path, include_row_rules=include_row_rules))
    batch_definition = (
        context.data_sources.add_spark(name=f"{name}_spark")
        .add_dataframe_asset(name=name)
        .add_batch_definition_whole_dataframe(name=f"{name}_batch")
    )
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(data=batch_definition, suite=suite, name=f"{name}_validation")
    )
    actions = []
    if docs_dir:
        Path(docs_dir).mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(site_name=DOCS_SITE, site_config=_docs_site_config(docs_dir))
        actions.append(UpdateDataDocsAction(name="update_data_docs", site_names=[DOCS_SITE]))

    def checkpoint_run(result_format: str):
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{name}_gate_{result_format.lower()}",
                validation_definitions=[validation],
                actions=actions,
                result_format={"result_format": result_format, "partial_unexpected_count": MAX_SHOWN},
            )
        )
        return checkpoint.run(batch_parameters={"dataframe": df}, expectation_parameters=parameters or {})

    run = checkpoint_run("BOOLEAN_ONLY")
    if not run.success:
        run = checkpoint_run("SUMMARY")
    outcomes = [outcome for result in run.run_results.values() for outcome in result.results]
    docs = page = None
    if docs_dir:
        index = Path(docs_dir).resolve() / "index.html"
        docs = str(index) if index.exists() else None
        page = _docs_page(context, next(iter(run.run_results), None))
    return GateResult(
        success=bool(run.success),
        suite=suite.name,
        name=name,
        evaluated=len(outcomes),
        failed=[_failure(outcome) for outcome in outcomes if not outcome.success],
        docs=docs,
        docs_page=page,
    )


@_one_context_at_a_time
def passed_with_docs(
    suite_path: str,
    *,
    name: str,
    docs_dir: str,
    parameters: dict | None = None,
    include_row_rules: bool = True,
) -> GateResult:
    """A passing verdict computed without GX (``mlcycle.quality.by_day``: the suite's metrics in one
    Spark pass, checked against GX's own verdicts in ``tests/integration/test_gates_by_day.py``),
    recorded in the Data Docs site as ``run_suite`` records a passing validation: the suite's
    expectations, each with its ``$PARAMETER`` values filled in and marked passed, with GX's
    ``BOOLEAN_ONLY`` results (no observed values, as GX itself gives for a passing day), rendered
    by GX into the same pages. GX's metric-by-metric plan costs a Spark job per metric: most of a
    day's gate on a warm engine."""
    import datetime as dt

    import great_expectations as gx
    from great_expectations import __version__ as gx_version
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    _share_compiled_templates()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    suite = context.suites.add(load_suite(suite_path, include_row_rules=include_row_rules))
    Path(docs_dir).mkdir(parents=True, exist_ok=True)
    context.add_data_docs_site(site_name=DOCS_SITE, site_config=_docs_site_config(docs_dir))
    datasource, batch_id = f"{name}_spark", f"{name}_spark-{name}"
    # the parameters filled in and the expectations grouped by column, as GX's validator does
    by_column: dict[str, list] = {}
    for configuration in suite.expectation_configurations:
        configuration.process_suite_parameters(
            suite_parameters=parameters or {}, interactive_evaluation=True, data_context=context
        )
        configuration = configuration.to_domain_obj().configuration  # its fields' own types
        configuration.kwargs["batch_id"] = batch_id
        column = configuration.kwargs.get("column")
        by_column.setdefault(column if isinstance(column, str) else "", []).append(configuration)
    results = []
    for configuration in (c for group in by_column.values() for c in group):
        results.append(
            ExpectationValidationResult(
                success=True,
                expectation_config=configuration,
                result={},
                exception_info={
                    "raised_exception": False,
                    "exception_traceback": None,
                    "exception_message": None,
                },
            )
        )
    run_id = RunIdentifier(run_time=dt.datetime.now(dt.UTC))
    validation = ExpectationSuiteValidationResult(
        success=True,
        results=results,
        suite_name=suite.name,
        statistics={
            "evaluated_expectations": len(results),
            "successful_expectations": len(results),
            "unsuccessful_expectations": 0,
            "success_percent": 100.0,
        },
        meta={
            "great_expectations_version": gx_version,
            "batch_spec": {"batch_data": "SparkDataFrame"},
            "batch_markers": {"ge_load_time": run_id.run_time.strftime("%Y%m%dT%H%M%S.%fZ")},
            "active_batch_definition": {
                "datasource_name": datasource,
                "data_connector_name": "fluent",
                "data_asset_name": name,
                "batch_identifiers": {"dataframe": "<DATAFRAME>"},
            },
            "run_id": run_id,
            "validation_time": run_id.run_time,
            "batch_parameters": {"dataframe": "<DATAFRAME>"},
        },
        batch_id=batch_id,
    )
    suite_id = ExpectationSuiteIdentifier(name=suite.name)
    identifier = ValidationResultIdentifier(
        expectation_suite_identifier=suite_id, run_id=run_id, batch_identifier=batch_id
    )
    context.validation_results_store.store_validation_results(validation, identifier, suite_id)
    context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=[identifier, suite_id])
    index = Path(docs_dir).resolve() / "index.html"
    return GateResult(
        success=True,
        suite=suite.name,
        name=name,
        evaluated=len(results),
        docs=str(index) if index.exists() else None,
        docs_page=_docs_page(context, identifier),
    )


def _docs_page(context, identifier) -> str | None:
    """The file of one validation's page in the Data Docs site, if GX rendered it."""
    if identifier is None:
        return None
    for site in context.get_docs_sites_urls(resource_identifier=identifier, site_names=[DOCS_SITE]):
        url = site.get("site_url") or ""
        path = Path(url.removeprefix("file://"))
        if path.is_file():
            return str(path)
    return None


# Row rules: the column-map expectations a single row can fail, compiled to one Spark pass.
# Semantics follow GX's: a null passes every rule but the null checks themselves, and
# ``row_condition`` (a GX condition object: comparison, nullity, and, or) limits the rows judged.
ROW_RULE_TYPES = (
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_match_regex",
)
FAILURES = "_failed_rules"  # array of "rule(column)" labels, empty for a good row


def rule_label(expectation: dict) -> str:
    return f"{expectation['type']}({expectation['kwargs'].get('column')})"


def _fails(expectation: dict, parameters: dict):
    """A Spark column that is true exactly when a row fails ``expectation``."""
    from pyspark.sql import functions as F

    kind, kwargs = expectation["type"], dict(expectation["kwargs"])
    for key, value in kwargs.items():
        if isinstance(value, dict) and "$PARAMETER" in value:
            kwargs[key] = parameters[value["$PARAMETER"]]
    column = F.col(kwargs["column"])
    if kind == "expect_column_values_to_not_be_null":
        failed = column.isNull()
    elif kind == "expect_column_values_to_be_null":
        failed = column.isNotNull()
    elif kind == "expect_column_values_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        failed = F.lit(False)
        if low is not None:
            failed = failed | ((column <= low) if kwargs.get("strict_min") else (column < low))
        if high is not None:
            failed = failed | ((column >= high) if kwargs.get("strict_max") else (column > high))
        failed = column.isNotNull() & failed
    elif kind == "expect_column_values_to_be_in_set":
        failed = column.isNotNull() & ~column.isin(list(kwargs["value_set"]))
    elif kind == "expect_column_values_to_match_regex":
        failed = column.isNotNull() & ~column.cast("string").rlike(kwargs["regex"])
    else:
        raise ValueError(
            f"{kind} cannot be a row rule (meta.on_failure=quarantine); row rules are {', '.join(ROW_RULE_TYPES)}"
        )
    condition = kwargs.get("row_condition")
    if condition:
        failed = _condition(condition) & failed
    return F.coalesce(failed, F.lit(False))


_OPERATORS = {
    "==": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
    "IN": lambda c, v: c.isin(list(v)),
    "NOT_IN": lambda c, v: ~c.isin(list(v)),
}


def _condition(condition):
    """A GX 1.x row condition (its JSON form) as a Spark column."""
    from functools import reduce

    from pyspark.sql import functions as F

    if not isinstance(condition, dict):
        raise ValueError(f"row_condition must be a GX condition object, got {condition!r}")
    kind = condition.get("type")
    if kind == "comparison":
        return _OPERATORS[condition["operator"]](F.col(condition["column"]["name"]), condition["parameter"])
    if kind == "nullity":
        column = F.col(condition["column"]["name"])
        return column.isNull() if condition["is_null"] else column.isNotNull()
    if kind in ("and", "or"):
        parts = [_condition(c) for c in condition["conditions"]]
        return reduce((lambda a, b: a & b) if kind == "and" else (lambda a, b: a | b), parts)
    raise ValueError(f"unsupported row_condition type {kind!r}")


def split_rows(df, rules: list[dict], parameters: dict | None = None):
    """``df`` with the labels of the row rules each row fails, in ``_failed_rules``."""
    from pyspark.sql import functions as F

    labels = [F.when(_fails(rule, parameters or {}), F.lit(rule_label(rule))) for rule in rules]
    failed = F.filter(F.array(*labels), lambda label: label.isNotNull()) if labels else F.array()
    return df.withColumn(FAILURES, failed.cast("array<string>"))


def docs_dir(data_root: str, gate: str, ds: str) -> str:
    """The Data Docs site of one gate on one day. One site per partition: GX rebuilds a site
    from the validations it knows, and each run knows only its own."""
    return f"{data_root}/data_docs/{gate}/ds={ds}"


def result_path(data_root: str, gate: str, ds: str) -> str:
    return f"{data_root}/gates/{gate}/ds={ds}.json"


def read_result(data_root: str, gate: str, ds: str) -> dict | None:
    """The recorded verdict of one gate on one day, or None when the gate never ran on it."""
    path = Path(result_path(data_root, gate, ds))
    return json.loads(path.read_text()) if path.is_file() else None


def held_day_message(data_root: str, task_id: str, ds: str) -> str:
    """What a person reads in the log of a task whose gates held its day: each failed verdict's
    own message (partition, rules, observed and expected values, quarantine, Data Docs), and what
    to do about it."""
    held = []
    for gate in task_gates(task_id) if task_id in GATED_TASKS else ():
        record = read_result(data_root, gate, ds)
        if record is not None and not record.get("success", False):
            held.append(
                record.get("message") or f"gate {gate} failed: see {result_path(data_root, gate, ds)}"
            )
    lines = [
        f"Data-quality gate held ds={ds}. This is a problem of the data, not of the run: retrying "
        "will not change it. Fix or deliver the data again, then clear this task.",
        *held,
    ]
    if not held:
        lines.append("The job refused its input; its own message is in the output above.")
    return "\n\n".join(lines)


def held_days_message(data_root: str, task_id: str, days: list[str]) -> str:
    """``held_day_message`` for a task of many days: the days held, then each one's message."""
    if len(days) == 1:
        return held_day_message(data_root, task_id, days[0])
    held = []
    for ds in days:
        for gate in task_gates(task_id) if task_id in GATED_TASKS else ():
            record = read_result(data_root, gate, ds)
            if record is not None and not record.get("success", False):
                held.append(
                    (
                        ds,
                        record.get("message")
                        or f"gate {gate} failed: see {result_path(data_root, gate, ds)}",
                    )
                )
    names = sorted({ds for ds, _ in held})
    lines = [
        f"Data-quality gates held {len(names)} of {len(days)} days ({', '.join(names) or 'none found'}); "
        "the other days were written. This is a problem of the data, not of the run: retrying will "
        "not change it. Fix or deliver the held days' data again, then clear this task (or run each "
        "held day alone in the daily DAG).",
        *(message for _, message in held),
    ]
    if not held:
        lines.append("The job refused its input; its own message is in the output above.")
    return "\n\n".join(lines)


def write_result(result: GateResult, path: str, **context) -> str:
    """Keep the verdict next to the data (``gates/<gate>/ds=D.json``), written atomically so a
    reader never sees half of it; ``context`` adds e.g. the day and the rows checked."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({**context, **result.as_dict()}, indent=2, sort_keys=True, default=str)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(target)


def load_thresholds(path: str, gate: str) -> dict:
    """The thresholds of one gate from the project's ``thresholds.toml``."""
    import tomllib

    with open(path, "rb") as handle:
        every = tomllib.load(handle)
    if gate not in every:
        raise KeyError(f"{path} has no [{gate}] section")
    return every[gate]


def volume_bounds(thresholds: dict, trailing_rows: list[int]) -> tuple[int, int]:
    """Rows a day may hold: a band around the median of the trailing days that passed their gate,
    inside the absolute bounds; the absolute bounds alone while no trailing day is known."""
    low, high = int(thresholds["min_rows"]), int(thresholds["max_rows"])
    if not trailing_rows:
        return low, high
    ordered = sorted(trailing_rows)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return (
        max(low, math.floor(thresholds["volume_min_ratio"] * median)),
        min(high, math.ceil(thresholds["volume_max_ratio"] * median)),
    )


def trailing_rows(data_root: str, gate: str, ds: str, days: int) -> list[int]:
    """Rows of the ``days`` days before ``ds`` whose gate passed (days not run yet are skipped)."""
    import datetime as dt

    day = dt.date.fromisoformat(ds)
    rows = []
    for back in range(1, days + 1):
        record = read_result(data_root, gate, (day - dt.timedelta(days=back)).isoformat())
        if record and record.get("success") and isinstance(record.get("rows"), int):
            rows.append(record["rows"])
    return rows
