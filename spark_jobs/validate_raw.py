"""Raw gate of one day: landing CSVs -> Great Expectations -> ``validated/<dataset>/ds=D``.

    spark-submit spark_jobs/validate_raw.py --ds 2013-01-02 --data-root /path/to/data

Every raw dataset of the day is read strictly and checked before anything is written: if one
gate fails, no dataset of that day is validated (the day stays all-or-nothing for the jobs
downstream), each verdict is kept under ``gates/raw_<dataset>/ds=D.json`` with its Data Docs,
and the job exits with ``GATE_FAILED_EXIT`` and a message naming what failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from mlcycle.config import REPO_ROOT
from mlcycle.gates import GateFailed, enforce, run_suite, write_result
from mlcycle.landing import landing_path
from spark_jobs.common import overwrite_partitions, run_gated_day
from spark_jobs.flights import project
from spark_jobs.flights.features import VALIDATED, read_raw
from spark_jobs.flights.schemas import RAW_SCHEMAS

SUITES = REPO_ROOT / "expectations" / project.NAME


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", required=True, type=dt.date.fromisoformat, help="day, YYYY-MM-DD")
    parser.add_argument("--data-root", required=True, help="root of landing/, validated/, gates/")
    return parser.parse_args(argv)


def read_landing(spark, data_root: str, dataset: str, ds: str):
    """The landing CSV of one dataset and day, cached: the gate makes many passes over it."""
    from pyspark.errors import AnalysisException

    path = landing_path(data_root, dataset, ds)
    try:
        return read_raw(spark, path, RAW_SCHEMAS[dataset]()).cache()
    except AnalysisException as exc:
        if exc.getCondition() == "PATH_NOT_FOUND":
            raise FileNotFoundError(f"no landing file for {dataset} on {ds}: {path} does not exist") from exc
        raise


def validate_day(spark, data_root: str, ds: str) -> dict[str, int]:
    """Gate every raw dataset of ``ds``; write them all to ``validated/`` only if all pass."""
    day = dt.date.fromisoformat(ds)
    parameters = {"year": day.year, "month": day.month, "day": day.day}
    raw, rows, failures = {}, {}, []
    for dataset in project.RAW_DATASETS:
        df = read_landing(spark, data_root, dataset, ds)
        rows[dataset] = df.count()
        result = run_suite(
            df,
            str(SUITES / f"raw_{dataset}.json"),
            name=f"raw_{dataset}",
            docs_dir=f"{data_root}/data_docs",
            parameters=parameters,
        )
        write_result(
            result,
            f"{data_root}/gates/raw_{dataset}/ds={ds}.json",
            ds=ds,
            rows=rows[dataset],
            source=landing_path(data_root, dataset, ds),
        )
        try:
            enforce(result, partition=f"ds={ds}")
        except GateFailed as failed:
            failures.append(failed)
        raw[dataset] = df
    if failures:
        raise failures[0] if len(failures) == 1 else GateFailed.combine(failures)
    for dataset, df in raw.items():
        overwrite_partitions(VALIDATED[dataset](df, ds), data_root, f"validated/{dataset}")
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    ds = args.ds.isoformat()
    code, rows = run_gated_day("validate_raw", ds, lambda spark: validate_day(spark, args.data_root, ds))
    if code == 0:
        print(
            f"validate_raw ds={ds} " + " ".join(f"{name}={n}" for name, n in rows.items()) + " rows validated"
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
