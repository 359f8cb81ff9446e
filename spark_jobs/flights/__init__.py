"""The Spark code of the flights use case (``usecases/flights/usecase.toml`` names this package as
its ``code``). The generic jobs of ``spark_jobs/`` reach the use case through these functions
only; each imports its module when called, so naming the package costs nothing.

- ``land_day(data_root, ds)``, ``load_reference(data_root)``: the upstream drop of a day, replayed
  into ``landing/`` (``replay.py``); ``land_days(data_root, days)``: the same for many days;
- ``raw_schema(dataset)``, ``read_raw(spark, path, schema)``, ``validated(dataset, df, ds)``: how
  a landed file (or a list of them) is read strictly, and its kept rows typed for ``validated/``
  (``ds``: the day, or a column holding each row's day; ``schemas.py``, ``features.py``);
  ``CORRUPT_RECORD`` is the column of a malformed line;
- ``build_day(spark, data_root, ds, hold=None)``: the feature rows of a day, the days of history
  behind them, and the day's feature views they were assembled from, each view passed through
  ``hold`` first when given (the features job reads them twice: ``spark_jobs.common.pinned``)
  (``day.py``); ``build_days(spark, data_root, days, hold=None)``: the same for many days of one
  year in one pass, each row and view with its day, the days of history per day (``days.py``);
- ``request_fields(request)``: a scoring request turned into the fields a flight is scheduled
  with, or a ``ValueError`` naming the field and the rule (``online.py``); ``feature_spec()``: how
  the features are found from those fields and the views (``project.py``).
"""

from __future__ import annotations

CORRUPT_RECORD = "_corrupt_record"


def land_day(data_root: str, ds: str) -> dict:
    from spark_jobs.flights.replay import land_day

    return land_day(data_root, ds)


def land_days(data_root: str, days: list[str]) -> dict:
    from spark_jobs.flights.replay import land_days

    return land_days(data_root, days)


def load_reference(data_root: str) -> dict:
    from spark_jobs.flights.replay import load_reference

    return load_reference(data_root)


def raw_schema(dataset: str):
    from spark_jobs.flights.schemas import RAW_SCHEMAS

    return RAW_SCHEMAS[dataset]()


def read_raw(spark, path: str, schema):
    from spark_jobs.flights.features import read_raw

    return read_raw(spark, path, schema)


def validated(dataset: str, df, ds: str):
    from spark_jobs.flights.features import VALIDATED

    return VALIDATED[dataset](df, ds)


def build_day(spark, data_root: str, ds: str, hold=None):
    from spark_jobs.flights.day import build_day

    return build_day(spark, data_root, ds, hold=hold)


def build_days(spark, data_root: str, days: list[str], hold=None):
    from spark_jobs.flights.days import build_range

    return build_range(spark, data_root, days, hold=hold)


_online = None  # online.py, once imported: asked once per flight of a request


def request_fields(request: dict) -> dict:
    global _online
    if _online is None:
        from spark_jobs.flights import online as _online
    return _online.request_fields(request)


def feature_spec():
    from spark_jobs.flights import project

    return project
