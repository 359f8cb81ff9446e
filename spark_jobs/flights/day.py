"""One day of the flights feature table, from what the raw gate validated: the day's flights and
weather, the validated flights of the days before it (route and carrier history), and the planes
reference the replay wrote."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from spark_jobs.common import existing_partitions, read_partitions
from spark_jobs.flights import project
from spark_jobs.flights.features import VALIDATED, assemble, feature_views, read_raw
from spark_jobs.flights.schemas import CORRUPT_RECORD, RAW_SCHEMAS, planes_schema


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


def build_day(spark, data_root: str, ds: str, hold=None):
    """(the feature rows of ``ds``, the days of history they were built on, the day's feature
    views they were assembled from: what the scoring service looks a request up in). ``hold``
    (e.g. ``spark_jobs.common.pinned``) is applied to the flights (the day's and its history's,
    which five of the views read) and then to each view before the rows are assembled from it, for
    a caller that reads the views again."""
    from pyspark.sql import functions as F

    flights = read_validated(spark, data_root, "flights", ds)
    weather = read_validated(spark, data_root, "weather", ds)
    history, history_days = read_history(spark, data_root, ds)
    if history is not None:
        flights = flights.unionByName(history)
    if hold is not None:  # read once, not once per view
        flights = hold(flights)
    views = feature_views(flights, weather, ds, planes=read_planes(spark, data_root))
    if hold is not None:
        views = {name: hold(view) for name, view in views.items()}
    features = assemble(flights.where(F.col("ds") == F.lit(ds).cast("date")), views)
    return features, history_days, views
