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
from dataclasses import asdict, dataclass, field
from pathlib import Path

DOCS_SITE = "mlcycle_docs"
# The gates each Spark task of the pipeline runs, by task id; their verdicts are kept under
# ``<data_root>/gates/<gate>/ds=D.json`` (``result_path``) and read by the training DAG, the
# training job and the data-quality view of the Airflow UI.
TASK_GATES = {
    "validate_raw": ("raw_flights", "raw_weather"),
    "build_features": ("features",),
    "score": ("predictions",),
}
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

    def as_dict(self) -> dict:
        return asdict(self)


class GateFailed(Exception):
    """A gate rejected a partition. Not worth retrying: the data, not the run, has to change."""

    def __init__(self, result: GateResult, partition: str):
        self.result = result
        self.results = [result]
        self.partition = partition
        super().__init__(failure_message(result, partition))

    @classmethod
    def combine(cls, failures: list[GateFailed]) -> GateFailed:
        """One failure for several gates of the same run, so a person sees every problem at once."""
        combined = cls(failures[0].result, failures[0].partition)
        combined.results = [result for failure in failures for result in failure.results]
        combined.args = ("\n\n".join(str(failure) for failure in failures),)
        return combined


def failure_message(result: GateResult, partition: str) -> str:
    lines = [
        f"Gate '{result.suite}' rejected {result.name} {partition}: "
        f"{len(result.failed)} of {result.evaluated} expectations failed."
    ]
    for failure in result.failed:
        column = f" on {failure['column']}" if failure.get("column") else ""
        observed = json.dumps(failure.get("observed"), default=str)
        lines.append(f"  - {failure['expectation']}{column}: observed {observed}")
    lines.append(f"Data Docs: {result.docs}" if result.docs else "Data Docs: not built for this run")
    return "\n".join(lines)


def enforce(result: GateResult, *, partition: str) -> None:
    if not result.success:
        raise GateFailed(result, partition)


def load_suite(suite_path: str):
    """The suite stored at ``suite_path`` (GX 1.x ExpectationSuite JSON).

    GX logs and drops an expectation it cannot build instead of raising, which would quietly
    weaken the gate; a suite that loses expectations on the way in is refused.
    """
    import great_expectations as gx

    spec = json.loads(Path(suite_path).read_text())
    declared = spec.get("expectations", [])
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


def _failure(outcome) -> dict:
    kwargs = outcome.expectation_config.kwargs
    column = kwargs.get("column") or kwargs.get("column_list") or kwargs.get("column_A")
    return {
        "expectation": outcome.expectation_config.type,
        "column": _json_safe(column),
        "observed": _observed(outcome),
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


def run_suite(
    df, suite_path: str, *, name: str, docs_dir: str | None = None, parameters: dict | None = None
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

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    suite = context.suites.add(load_suite(suite_path))
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
    docs = None
    if docs_dir:
        index = Path(docs_dir).resolve() / "index.html"
        docs = str(index) if index.exists() else None
    return GateResult(
        success=bool(run.success),
        suite=suite.name,
        name=name,
        evaluated=len(outcomes),
        failed=[_failure(outcome) for outcome in outcomes if not outcome.success],
        docs=docs,
    )


def result_path(data_root: str, gate: str, ds: str) -> str:
    return f"{data_root}/gates/{gate}/ds={ds}.json"


def read_result(data_root: str, gate: str, ds: str) -> dict | None:
    """The recorded verdict of one gate on one day, or None when the gate never ran on it."""
    path = Path(result_path(data_root, gate, ds))
    return json.loads(path.read_text()) if path.is_file() else None


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
