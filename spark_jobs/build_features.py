"""Feature table of one day: ``validated/{flights,weather}/ds=D`` -> gate -> ``features/ds=D``.

    spark-submit spark_jobs/build_features.py --ds 2013-01-02 --data-root /path/to/data

The gate verdict is kept under ``gates/features/ds=D.json`` (Data Docs under ``data_docs/features/ds=D/``);
a rejected day is not written and the job exits with ``GATE_FAILED_EXIT``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from mlcycle.config import REPO_ROOT
from mlcycle.gates import docs_dir, enforce, run_suite, write_result
from spark_jobs.common import overwrite_partitions, read_partitions, run_gated_day
from spark_jobs.flights import project
from spark_jobs.flights.features import VALIDATED, build_features
from spark_jobs.flights.schemas import RAW_SCHEMAS

SUITE = REPO_ROOT / "expectations" / project.NAME / "features.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", required=True, type=dt.date.fromisoformat, help="day, YYYY-MM-DD")
    parser.add_argument("--data-root", required=True, help="root of validated/, features/, gates/")
    return parser.parse_args(argv)


def read_validated(spark, data_root: str, dataset: str, ds: str):
    """One validated partition. Spark writes no partition for an empty day (weather has no
    observations on 2013-12-31), so a missing one is read as empty only when the raw gate
    recorded that day as passed with zero rows; otherwise the day was not validated."""
    from pyspark.errors import AnalysisException

    try:
        return read_partitions(spark, data_root, f"validated/{dataset}", [ds])
    except AnalysisException as exc:
        gate = Path(f"{data_root}/gates/raw_{dataset}/ds={ds}.json")
        record = json.loads(gate.read_text()) if gate.is_file() else {}
        if exc.getCondition() != "PATH_NOT_FOUND" or not (record.get("success") and record.get("rows") == 0):
            raise
        return VALIDATED[dataset](spark.createDataFrame([], RAW_SCHEMAS[dataset]()), ds)


def features_of_day(spark, data_root: str, ds: str) -> int:
    flights = read_validated(spark, data_root, "flights", ds)
    weather = read_validated(spark, data_root, "weather", ds)
    features = build_features(flights, weather, ds).cache()
    try:
        rows = features.count()
        result = run_suite(
            features, str(SUITE), name="features", docs_dir=docs_dir(data_root, "features", ds)
        )
        write_result(result, f"{data_root}/gates/features/ds={ds}.json", ds=ds, rows=rows, gate="features")
        enforce(result, partition=f"ds={ds}")
        overwrite_partitions(features, data_root, "features")
        return rows
    finally:
        features.unpersist()  # a cached plan would answer a rerun in the same session


def main(argv=None) -> int:
    args = parse_args(argv)
    ds = args.ds.isoformat()
    code, rows = run_gated_day("build_features", ds, lambda spark: features_of_day(spark, args.data_root, ds))
    if code == 0:
        print(f"build_features ds={ds} features={rows} rows")
    return code


if __name__ == "__main__":
    sys.exit(main())
