"""Raw gate of one day: landing CSVs -> checks -> ``validated/`` and ``quarantine/``.

    spark-submit spark_jobs/quality.py --ds 2013-01-02 --data-root /path/to/data

``--usecase`` names the use case (default: the only one of the catalog); its folder says which
raw datasets it has, their suites and thresholds, and its Spark code how a file is read. For each
raw dataset of the day (flights and weather for the flights use case):

1. The file itself is checked as bytes (present, not empty, UTF-8, the exact header, not cut off).
2. It is read strictly (explicit schema, header checked, malformed lines kept in
   ``_corrupt_record``) and every row is judged by the suite's row rules: failing rows go to
   ``quarantine/<dataset>/ds=D`` with the rules they failed, the others are kept.
3. The suite's batch rules judge the day (volume against the trailing days, share of quarantined
   rows, dates outside the partition, duplicate keys, freshness), with Data Docs.

Counts reconcile: lines in the file = rows read = kept + quarantined. Only when every dataset of
the day passes are the kept rows written to ``validated/<dataset>/ds=D`` (dynamic partition
overwrite: exactly that partition is replaced, and a failed write leaves the previous one). Each
verdict is kept under ``gates/raw_<dataset>/ds=D.json``; a held day exits with
``GATE_FAILED_EXIT`` and a message naming the partition, the rules, observed and expected values,
the quarantined rows and the Data Docs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass, field

from mlcycle.config import partition_path
from mlcycle.quality.gates import (
    FAILURES,
    GateFailed,
    GateResult,
    docs_dir,
    failure_message,
    load_thresholds,
    result_path,
    row_rules,
    run_suite,
    split_rows,
    trailing_rows,
    volume_bounds,
    write_result,
)
from mlcycle.quality.landing import landing_path
from mlcycle.quality.raw_files import inspect_csv
from mlcycle.specs import find_usecase
from spark_jobs.common import delete_partition, files, overwrite_partitions, run_gated_day

QUARANTINED = "_quarantined"  # 1 for a row set aside, 0 for a kept row (its mean is the share)


@dataclass
class RawVerdict:
    dataset: str
    ds: str
    result: GateResult
    source: str
    rows: int = 0
    validated: int = 0
    quarantined: int = 0
    reconciled: bool = False
    quarantine: str | None = None
    quarantine_rules: dict = field(default_factory=dict)
    kept: object = None  # the kept rows (a DataFrame) when the file could be read
    cached: object = None  # the judged rows, cached while the day is gated

    @property
    def gate(self) -> str:
        return f"raw_{self.dataset}"

    def record(self) -> dict:
        failed = not self.result.success
        return {
            "gate": self.gate,
            "ds": self.ds,
            "source": self.source,
            "rows": self.rows,
            "validated": self.validated,
            "quarantined": self.quarantined,
            "reconciled": self.reconciled,
            "quarantine": self.quarantine,
            "quarantine_rules": self.quarantine_rules,
            "message": failure_message(self.result, f"ds={self.ds}", self.quarantine) if failed else None,
        }


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", required=True, type=dt.date.fromisoformat, help="day, YYYY-MM-DD")
    parser.add_argument("--data-root", required=True, help="root of landing/, validated/, gates/")
    parser.add_argument("--usecase", default=None, help="the use case (default: the only one)")
    return parser.parse_args(argv)


def read_bytes(spark, path: str) -> bytes | None:
    """The bytes of one landing file, or None when it does not exist. Read by Spark itself, so a
    drop on any storage Spark knows is checked the same."""
    if not files(spark, path).is_file():
        return None
    rows = spark.read.format("binaryFile").load(path).select("content").collect()
    return bytes(rows[0].content) if rows else b""  # an empty file has no row


def _missing(path: str, dataset: str, ds: str) -> dict:
    return {
        "expectation": "file_exists",
        "column": None,
        "observed": {"path": path, "exists": False},
        "expected": f"the {dataset} drop of {ds}: deliver it there, then clear the task",
    }


def gate_dataset(spark, data_root: str, dataset: str, ds: str, usecase=None) -> RawVerdict:
    """Check, split and judge one dataset of one day; writes its quarantine partition."""
    from pyspark.sql import functions as F

    usecase = usecase or find_usecase()
    code = usecase.code_module()
    gate = f"raw_{dataset}"
    suite = str(usecase.datasets[dataset].suite)
    thresholds = load_thresholds(str(usecase.thresholds), gate)
    source = landing_path(data_root, dataset, ds)
    schema = code.raw_schema(dataset)
    columns = [f.name for f in schema.fields if f.name != code.CORRUPT_RECORD]

    content = read_bytes(spark, source)
    if content is None:
        problems, lines = [_missing(source, dataset, ds)], 0
    else:
        inspection = inspect_csv(
            content, columns, require_final_newline=thresholds.get("require_final_newline", True)
        )
        problems, lines = inspection.problems, inspection.data_lines
    if problems:
        result = GateResult(False, gate, gate, len(problems), problems)
        return RawVerdict(dataset, ds, result, source, rows=lines)

    day = dt.date.fromisoformat(ds)
    low, high = volume_bounds(
        thresholds, trailing_rows(data_root, gate, ds, thresholds["volume_trailing_days"])
    )
    parameters = {
        "year": day.year,
        "month": day.month,
        "day": day.day,
        "min_rows": low,
        "max_rows": high,
        "max_quarantine_share": thresholds["max_quarantine_share"],
        "latest_hour_min": thresholds["latest_hour_min"],
    }
    judged = split_rows(code.read_raw(spark, source, schema), row_rules(suite), parameters)
    judged = judged.withColumn(QUARANTINED, (F.size(FAILURES) > 0).cast("int")).cache()
    totals = judged.agg(F.count(F.lit(1)).alias("rows"), F.sum(QUARANTINED).alias("quarantined")).first()
    rows, quarantined = int(totals["rows"]), int(totals["quarantined"] or 0)
    per_rule = {
        r["rule"]: int(r["count"])
        for r in judged.select(F.explode(FAILURES).alias("rule")).groupBy("rule").count().collect()
    }
    set_aside = judged.where(F.col(QUARANTINED) == 1)

    result = run_suite(
        judged,
        suite,
        name=gate,
        docs_dir=docs_dir(data_root, gate, ds),
        parameters=parameters,
        include_row_rules=False,
    )
    reconciled = rows == lines
    if not reconciled:
        result.success = False
        result.failed.append(
            {
                "expectation": "rows_reconcile",
                "column": None,
                "observed": {"lines": lines, "rows_read": rows},
                "expected": "one row read per line of the file",
            }
        )

    quarantine = None
    if quarantined:
        overwrite_partitions(
            set_aside.drop(QUARANTINED).withColumn("ds", F.to_date(F.lit(ds))),
            data_root,
            f"quarantine/{dataset}",
        )
        quarantine = partition_path(data_root, f"quarantine/{dataset}", ds)
    else:  # a fixed drop leaves no stale quarantine behind
        delete_partition(spark, data_root, f"quarantine/{dataset}", ds)
    return RawVerdict(
        dataset,
        ds,
        result,
        source,
        rows=rows,
        validated=rows - quarantined,
        quarantined=quarantined,
        reconciled=reconciled,
        quarantine=quarantine,
        quarantine_rules=dict(sorted(per_rule.items())),
        kept=judged.where(F.col(QUARANTINED) == 0).drop(FAILURES, QUARANTINED),
        cached=judged,
    )


def validate_day(spark, data_root: str, ds: str, usecase=None) -> list[RawVerdict]:
    """Gate every raw dataset of ``ds``; write them all to ``validated/`` only if all pass."""
    usecase = usecase or find_usecase()
    code = usecase.code_module()
    verdicts = [gate_dataset(spark, data_root, dataset, ds, usecase) for dataset in usecase.datasets]
    held = [v for v in verdicts if not v.result.success]
    try:
        if not held:
            for verdict in verdicts:
                overwrite_partitions(
                    code.validated(verdict.dataset, verdict.kept, ds),
                    data_root,
                    f"validated/{verdict.dataset}",
                )
    finally:
        # A cached scan is matched by its plan, not by the file's content: a session that gates
        # the same path again (a rerun after a fix) must read the file anew.
        for verdict in verdicts:
            if verdict.cached is not None:
                verdict.cached.unpersist()
    for verdict in verdicts:
        write_result(verdict.result, result_path(data_root, verdict.gate, ds), **verdict.record())
    if held:
        failures = [GateFailed(v.result, f"ds={ds}", v.quarantine) for v in held]
        raise failures[0] if len(failures) == 1 else GateFailed.combine(failures)
    return verdicts


def describe(verdict: RawVerdict) -> str:
    docs = verdict.result.docs_page or verdict.result.docs
    rules = ", ".join(f"{rule}: {n}" for rule, n in verdict.quarantine_rules.items())
    return (
        f"validate_raw ds={verdict.ds} {verdict.dataset}: {verdict.rows} rows = {verdict.validated} validated"
        f" + {verdict.quarantined} quarantined"
        + (f" ({rules}) in {verdict.quarantine}" if rules else "")
        + f"; Data Docs: {docs}"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    ds = args.ds.isoformat()
    usecase = find_usecase(args.usecase)
    code, verdicts = run_gated_day(
        "validate_raw", ds, lambda spark: validate_day(spark, args.data_root, ds, usecase)
    )
    for verdict in verdicts or []:
        print(describe(verdict))
    return code


if __name__ == "__main__":
    sys.exit(main())
