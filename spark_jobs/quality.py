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

With ``--start D1 --end D2`` every day of the range is gated in one job (``validate_days``): the
files are read in one scan and the batch rules of every day judged in one pass
(``mlcycle.quality.by_day``); each day that passes is written, each verdict kept as above, and a
held day (judged again by GX, which writes its Data Docs) holds that day only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass, field

from mlcycle.config import partition_path
from mlcycle.quality.by_day import gate_day
from mlcycle.quality.gates import (
    FAILURES,
    GATE_FAILED_EXIT,
    GateFailed,
    GateResult,
    docs_dir,
    failure_message,
    load_thresholds,
    read_result,
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
from spark_jobs.common import (
    add_days_arguments,
    days_of,
    delete_partition,
    files,
    overwrite_partitions,
    pinned,
    run_gated_day,
    side_by_side,
)

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
    add_days_arguments(parser)
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
    """Check, split and judge one dataset of one day; writes its quarantine partition. The judged
    rows are read once and pinned (``spark_jobs.common.pinned``: a rerun after a fix, in the same
    session, reads the file anew)."""
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
    judged = pinned(judged.withColumn(QUARANTINED, (F.size(FAILURES) > 0).cast("int")))
    totals = judged.agg(F.count(F.lit(1)).alias("rows"), F.sum(QUARANTINED).alias("quarantined")).first()
    rows, quarantined = int(totals["rows"]), int(totals["quarantined"] or 0)
    per_rule = {
        r["rule"]: int(r["count"])
        for r in judged.select(F.explode(FAILURES).alias("rule")).groupBy("rule").count().collect()
    }
    set_aside = judged.where(F.col(QUARANTINED) == 1)

    result, _ = gate_day(
        judged.withColumn("ds", F.lit(ds)),
        suite,
        name=gate,
        ds=ds,
        docs_dir=docs_dir(data_root, gate, ds),
        parameters=parameters,
        include_row_rules=False,
        gx_frame=judged,
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
    )


def validate_day(spark, data_root: str, ds: str, usecase=None) -> list[RawVerdict]:
    """Gate every raw dataset of ``ds`` (side by side); write them all to ``validated/`` (side by
    side) only if all pass."""
    usecase = usecase or find_usecase()
    code = usecase.code_module()
    verdicts = side_by_side(
        *[
            lambda dataset=dataset: gate_dataset(spark, data_root, dataset, ds, usecase)
            for dataset in usecase.datasets
        ]
    )
    held = [v for v in verdicts if not v.result.success]
    if not held:
        side_by_side(
            *[
                lambda v=verdict: overwrite_partitions(
                    code.validated(v.dataset, v.kept, ds), data_root, f"validated/{v.dataset}"
                )
                for verdict in verdicts
            ]
        )
    for verdict in verdicts:
        write_result(verdict.result, result_path(data_root, verdict.gate, ds), **verdict.record())
    if held:
        failures = [GateFailed(v.result, f"ds={ds}", v.quarantine) for v in held]
        raise failures[0] if len(failures) == 1 else GateFailed.combine(failures)
    return verdicts


def read_many_bytes(spark, paths: list[str]) -> dict[str, bytes]:
    """The bytes of the landing files among ``paths`` that exist, read in one Spark job."""
    present = [p for p in paths if files(spark, p).is_file()]
    if not present:
        return {}
    rows = spark.read.format("binaryFile").load(present).select("path", "content").collect()
    by_name = {_same_file(r.path): bytes(r.content) for r in rows}
    # a file with no byte has no row: it is there, and empty
    return {p: by_name.get(_same_file(p), b"") for p in present}


def _same_file(path: str) -> str:
    """A path as Spark names the file it read: a local one absolute (a data root may be given
    relative to the working directory; Spark answers with ``file:/`` and the absolute path)."""
    import os

    local = path.removeprefix("file://").removeprefix("file:")
    return local if "://" in local else os.path.abspath(local)


def gate_days(spark, data_root: str, dataset: str, days: list[str], usecase) -> dict[str, RawVerdict]:
    """``gate_dataset`` for many days: every file is checked as bytes, the readable ones are read
    in one scan, split by the row rules, and the suite's batch rules judge every day in one pass
    (``mlcycle.quality.by_day``); days in order, so a day's volume band comes from the days before
    it (earlier days of the range included). A held day is judged again by GX alone, which writes
    its Data Docs; days that pass have their verdict without a Data Docs page."""
    from pyspark.sql import functions as F

    from mlcycle.quality.by_day import measure_days

    code = usecase.code_module()
    gate = f"raw_{dataset}"
    suite = str(usecase.datasets[dataset].suite)
    thresholds = load_thresholds(str(usecase.thresholds), gate)
    schema = code.raw_schema(dataset)
    columns = [f.name for f in schema.fields if f.name != code.CORRUPT_RECORD]
    sources = {ds: landing_path(data_root, dataset, ds) for ds in days}
    contents = read_many_bytes(spark, list(sources.values()))

    verdicts: dict[str, RawVerdict] = {}
    lines: dict[str, int] = {}
    for ds, source in sources.items():
        content = contents.get(source)
        if content is None:
            problems, count = [_missing(source, dataset, ds)], 0
        else:
            inspection = inspect_csv(
                content, columns, require_final_newline=thresholds.get("require_final_newline", True)
            )
            problems, count = inspection.problems, inspection.data_lines
        if problems:
            verdicts[ds] = RawVerdict(
                dataset, ds, GateResult(False, gate, gate, len(problems), problems), source, rows=count
            )
        else:
            lines[ds] = count
    readable = sorted(lines)
    if not readable:
        return verdicts

    def fixed(ds: str) -> dict:
        day = dt.date.fromisoformat(ds)
        return {
            "year": day.year,
            "month": day.month,
            "day": day.day,
            "max_quarantine_share": thresholds["max_quarantine_share"],
            "latest_hour_min": thresholds["latest_hour_min"],
        }

    day_of_file = F.regexp_extract(F.col("_metadata.file_path"), r"ds=(\d{4}-\d{2}-\d{2})", 1)
    raw = code.read_raw(spark, [sources[ds] for ds in readable], schema).withColumn("ds", day_of_file)
    judged = split_rows(raw, row_rules(suite), {})
    judged = pinned(judged.withColumn(QUARANTINED, (F.size(FAILURES) > 0).cast("int")))
    measured = measure_days(
        judged,
        suite,
        name=gate,
        row_parameters={ds: fixed(ds) for ds in readable},
        include_row_rules=False,
    )
    per_rule: dict[str, dict[str, int]] = {}
    for r in judged.select("ds", F.explode(FAILURES).alias("rule")).groupBy("ds", "rule").count().collect():
        per_rule.setdefault(r["ds"], {})[r["rule"]] = int(r["count"])

    trailing_days = thresholds["volume_trailing_days"]
    results = {}
    for ds in readable:
        day = dt.date.fromisoformat(ds)
        trailing = []
        for back in range(1, trailing_days + 1):
            before = (day - dt.timedelta(days=back)).isoformat()
            if before in results:  # judged earlier in this range
                if results[before].success and before in lines:
                    trailing.append(measured.rows_of(before))
            elif before not in sources:
                record = read_result(data_root, gate, before)
                if record and record.get("success") and isinstance(record.get("rows"), int):
                    trailing.append(record["rows"])
        low, high = volume_bounds(thresholds, trailing)
        parameters = {**fixed(ds), "min_rows": low, "max_rows": high}
        rows = measured.rows_of(ds)
        result = measured.verdict(ds, parameters)
        if rows != lines[ds]:
            result.success = False
            result.failed.append(
                {
                    "expectation": "rows_reconcile",
                    "column": None,
                    "observed": {"lines": lines[ds], "rows_read": rows},
                    "expected": "one row read per line of the file",
                }
            )
        if not result.success:  # GX's own verdict and its Data Docs for a held day
            reconcile = [f for f in result.failed if f["expectation"] == "rows_reconcile"]
            result = run_suite(
                judged.where(F.col("ds") == ds).drop("ds"),
                suite,
                name=gate,
                docs_dir=docs_dir(data_root, gate, ds),
                parameters=parameters,
                include_row_rules=False,
            )
            if reconcile:
                result.success = False
                result.failed += reconcile
        results[ds] = result
        counts = per_rule.get(ds, {})
        verdicts[ds] = RawVerdict(
            dataset,
            ds,
            result,
            sources[ds],
            rows=rows,
            reconciled=rows == lines[ds],
            quarantine_rules=dict(sorted(counts.items())),
        )
    totals = {
        r["ds"]: int(r["q"] or 0) for r in judged.groupBy("ds").agg(F.sum(QUARANTINED).alias("q")).collect()
    }
    for ds in readable:
        verdicts[ds].quarantined = totals.get(ds, 0)
        verdicts[ds].validated = verdicts[ds].rows - verdicts[ds].quarantined
    held_rows = [ds for ds in readable if verdicts[ds].quarantined]
    if held_rows:
        overwrite_partitions(
            judged.where((F.col(QUARANTINED) == 1) & F.col("ds").isin(held_rows))
            .drop(QUARANTINED)
            .withColumn("ds", F.to_date("ds")),
            data_root,
            f"quarantine/{dataset}",
        )
    for ds in readable:
        if verdicts[ds].quarantined:
            verdicts[ds].quarantine = partition_path(data_root, f"quarantine/{dataset}", ds)
        else:  # a fixed drop leaves no stale quarantine behind
            delete_partition(spark, data_root, f"quarantine/{dataset}", ds)
    kept = judged.where(F.col(QUARANTINED) == 0).drop(FAILURES, QUARANTINED)
    for ds in readable:
        verdicts[ds].kept = kept
    return verdicts


def validate_days(spark, data_root: str, days: list[str], usecase=None) -> dict[str, list[RawVerdict]]:
    """``validate_day`` for many days at once (``gate_days``): each day whose datasets all pass
    is written to ``validated/`` (one write per dataset, each day's partition replaced), every
    verdict is kept under ``gates/``, and a held day holds that day only. Returns each day's
    verdicts, held days included."""
    from pyspark.sql import functions as F

    usecase = usecase or find_usecase()
    code = usecase.code_module()
    datasets = list(usecase.datasets)
    gated = dict(
        zip(
            datasets,
            side_by_side(
                *[
                    lambda dataset=dataset: gate_days(spark, data_root, dataset, days, usecase)
                    for dataset in datasets
                ]
            ),
            strict=True,
        )
    )
    by_day = {ds: [gated[dataset][ds] for dataset in datasets] for ds in days}
    good = [ds for ds, verdicts in by_day.items() if all(v.result.success for v in verdicts)]

    def write(dataset: str) -> None:
        kept = gated[dataset][good[0]].kept.where(F.col("ds").isin(good))
        overwrite_partitions(code.validated(dataset, kept, F.col("ds")), data_root, f"validated/{dataset}")

    if good:
        side_by_side(*[lambda dataset=dataset: write(dataset) for dataset in datasets])
    for verdicts in by_day.values():
        for verdict in verdicts:
            write_result(verdict.result, result_path(data_root, verdict.gate, verdict.ds), **verdict.record())
    return by_day


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
    days = days_of(args)
    usecase = find_usecase(args.usecase)
    if len(days) > 1:
        return validate_range(days, args.data_root, usecase)
    ds = days[0]
    code, verdicts = run_gated_day(
        "validate_raw", ds, lambda spark: validate_day(spark, args.data_root, ds, usecase)
    )
    for verdict in verdicts or []:
        print(describe(verdict))
    return code


def validate_range(days: list[str], data_root: str, usecase) -> int:
    """Gate a range of days; the days that pass are written, a held day's own message is printed
    and the job exits with ``GATE_FAILED_EXIT``, naming the held days."""
    code, by_day = run_gated_day(
        "validate_raw", f"{days[0]}..{days[-1]}", lambda spark: validate_days(spark, data_root, days, usecase)
    )
    if code:
        return code
    held = []
    for ds, verdicts in by_day.items():
        for verdict in verdicts:
            print(describe(verdict))
            if not verdict.result.success:
                print(verdict.record()["message"], file=sys.stderr)
        if not all(v.result.success for v in verdicts):
            held.append(ds)
    passed = len(days) - len(held)
    print(f"validate_raw {days[0]}..{days[-1]}: {passed} of {len(days)} days validated")
    if held:
        print(
            f"held days: {', '.join(held)} (each day's verdict: gates/raw_<dataset>/ds=D.json)",
            file=sys.stderr,
        )
        return GATE_FAILED_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
