"""Feature table of one day: ``validated/{flights,weather}/ds=D`` -> gate -> ``features/ds=D``.

    spark-submit spark_jobs/build_features.py --ds 2013-01-02 --data-root /path/to/data

The gate verdict is kept under ``gates/features/ds=D.json`` (Data Docs under ``data_docs/``);
a rejected day is not written and the job exits with ``GATE_FAILED_EXIT``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from mlcycle.config import REPO_ROOT
from mlcycle.gates import GATE_FAILED_EXIT, GateFailed, enforce, run_suite, write_result
from spark_jobs.common import get_spark, overwrite_partitions, read_partitions
from spark_jobs.flights import project
from spark_jobs.flights.features import build_features

SUITE = REPO_ROOT / "expectations" / project.NAME / "features.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", required=True, type=dt.date.fromisoformat, help="day, YYYY-MM-DD")
    parser.add_argument("--data-root", required=True, help="root of validated/, features/, gates/")
    return parser.parse_args(argv)


def features_of_day(spark, data_root: str, ds: str) -> int:
    flights = read_partitions(spark, data_root, "validated/flights", [ds])
    weather = read_partitions(spark, data_root, "validated/weather", [ds])
    features = build_features(flights, weather, ds).cache()
    rows = features.count()
    result = run_suite(features, str(SUITE), name="features", docs_dir=f"{data_root}/data_docs")
    write_result(result, f"{data_root}/gates/features/ds={ds}.json", ds=ds, rows=rows)
    enforce(result, partition=f"ds={ds}")
    overwrite_partitions(features, data_root, "features")
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    ds = args.ds.isoformat()
    spark = get_spark(f"build_features ds={ds}")
    try:
        rows = features_of_day(spark, args.data_root, ds)
    except GateFailed as failed:
        print(str(failed), file=sys.stderr)
        return GATE_FAILED_EXIT
    finally:
        spark.stop()
    print(f"build_features ds={ds} features={rows} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
