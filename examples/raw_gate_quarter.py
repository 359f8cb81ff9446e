"""The raw gate over a real quarter of 2013: how many rows were validated, how many quarantined and
why, which days were held. Days run in order in one Spark session, as a backfill would, so the
volume rule sees its trailing days.

    .venv/bin/python examples/raw_gate_quarter.py --start 2013-01-01 --end 2013-03-31

Writes the replayed drops and the gate's outputs under --data-root (a temporary folder by default)
and prints a summary; ``--json`` writes it as JSON too.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from mlcycle.config import days_between
from mlcycle.quality.gates import GateFailed, read_result
from spark_jobs.flights.replay import land_day, load_reference

DATASETS = ("flights", "weather")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2013-01-01")
    parser.add_argument("--end", default="2013-03-31")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--json", default=None, help="also write the summary to this file")
    args = parser.parse_args(argv)
    root = args.data_root or tempfile.mkdtemp(prefix="raw_gate_quarter_")

    from pyspark.sql import SparkSession

    from spark_jobs.common import get_spark
    from spark_jobs.quality import validate_day

    # the session the jobs would get from spark-submit --master local[2]
    SparkSession.builder.master("local[2]").config("spark.sql.shuffle.partitions", "4").config(
        "spark.ui.enabled", "false"
    ).getOrCreate()
    spark = get_spark("raw-gate-quarter")
    spark.sparkContext.setLogLevel("ERROR")
    load_reference(root)

    totals = {d: Counter() for d in DATASETS}
    rules = {d: Counter() for d in DATASETS}
    held: dict[str, list[str]] = {}
    started = time.monotonic()
    days = days_between(args.start, args.end)
    for day in days:
        land_day(root, day)
        with contextlib.redirect_stderr(io.StringIO()):
            try:
                validate_day(spark, root, day)
            except GateFailed as failed:
                held[day] = failed.summary()
        for dataset in DATASETS:
            record = read_result(root, f"raw_{dataset}", day) or {}
            totals[dataset].update(
                {
                    "rows": record.get("rows", 0),
                    "validated": record.get("validated", 0),
                    "quarantined": record.get("quarantined", 0),
                    "reconciled_days": int(bool(record.get("reconciled"))),
                }
            )
            rules[dataset].update(record.get("quarantine_rules", {}))
    elapsed = time.monotonic() - started
    spark.stop()

    summary = {
        "window": f"{args.start}..{args.end}",
        "days": len(days),
        "seconds": round(elapsed, 1),
        "data_root": root,
        "datasets": {d: {**totals[d], "quarantine_rules": dict(rules[d].most_common())} for d in DATASETS},
        "held_days": held,
    }
    print(f"raw gate over {summary['window']} ({len(days)} days, {elapsed:.0f} s, data under {root})")
    for dataset in DATASETS:
        t = totals[dataset]
        print(
            f"  {dataset:8s} rows {t['rows']:>7,} = validated {t['validated']:>7,} + quarantined "
            f"{t['quarantined']:>4,}   reconciled on {t['reconciled_days']}/{len(days)} days"
        )
        for rule, count in rules[dataset].most_common():
            print(f"      quarantined by {rule}: {count}")
    print(f"  days held: {len(held)}")
    for day, reasons in held.items():
        print(f"    {day}: {'; '.join(reasons)}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
