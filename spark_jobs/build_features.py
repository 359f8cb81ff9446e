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
from spark_jobs.common import existing_partitions, overwrite_partitions, read_partitions, run_gated_day
from spark_jobs.flights import project
from spark_jobs.flights.features import VALIDATED, build_features, read_raw
from spark_jobs.flights.schemas import CORRUPT_RECORD, RAW_SCHEMAS, planes_schema

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


def read_history(spark, data_root: str, ds: str):
    """Validated flights of the ``HISTORY_DAYS`` days before ``ds`` that exist (none at the start
    of the data, or while a backfill has not reached them yet)."""
    day = dt.date.fromisoformat(ds)
    days = [(day - dt.timedelta(days=back)).isoformat() for back in range(1, project.HISTORY_DAYS + 1)]
    found = existing_partitions(spark, data_root, "validated/flights", days)
    return read_partitions(spark, data_root, "validated/flights", found) if found else None, len(found)


def read_planes(spark, data_root: str):
    """The planes reference table written by the land task (``load_reference``)."""
    path = f"{data_root}/reference/planes/planes.csv"
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"no planes reference at {path}: the land task of flights_data writes it (load_reference)"
        )
    return read_raw(spark, path, planes_schema()).drop(CORRUPT_RECORD)


def features_of_day(spark, data_root: str, ds: str) -> int:
    flights = read_validated(spark, data_root, "flights", ds)
    weather = read_validated(spark, data_root, "weather", ds)
    history, history_days = read_history(spark, data_root, ds)
    if history is not None:
        flights = flights.unionByName(history)
    print(f"build_features ds={ds}: history of {history_days} day(s) before it")
    features = build_features(flights, weather, ds, planes=read_planes(spark, data_root)).cache()
    try:
        rows = features.count()
        result = run_suite(
            features, str(SUITE), name="features", docs_dir=docs_dir(data_root, "features", ds)
        )
        write_result(
            result,
            f"{data_root}/gates/features/ds={ds}.json",
            ds=ds,
            rows=rows,
            gate="features",
            history_days=history_days,
        )
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
