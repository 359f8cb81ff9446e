"""Flights: from the upstream drop to the feature table, as pure DataFrame -> DataFrame functions.

Every function takes the day it works on as an argument (``ds``, ``YYYY-MM-DD``) and never looks
at the clock, so a backfill computes what the daily run computed. Spark 4 runs in ANSI mode,
where a bad cast raises instead of yielding null: the raw schemas already type every column, and
the only casts left here are widening ones (int -> double) that cannot fail.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.flights.project import FEATURE_TABLE_COLUMNS, KEY, LABEL, NUMERIC
from spark_jobs.flights.schemas import CORRUPT_RECORD, TIMESTAMP_FORMAT

# Surface wind at a New York airport never comes near this; the upstream holds one reading of
# 1048 mph (EWR, 2013-02-12 03:00), an instrument glitch that would dominate any linear model.
WIND_SPEED_MAX_MPH = 150.0
WEATHER_FEATURES = ("temp", "wind_speed", "precip", "visib")


def read_raw(spark: SparkSession, path: str, schema) -> DataFrame:
    """Read an upstream CSV strictly against ``schema``.

    The header must name the schema's columns in order (``enforceSchema=false``), ``NA`` is the
    missing value, and a line that does not fit the schema keeps its text in ``_corrupt_record``
    (PERMISSIVE mode) so the raw gate can count and show it. Spark refuses queries that touch only
    the corrupt-record column of an uncached CSV scan: cache the result before checking it.
    """
    return (
        spark.read.schema(schema)
        .option("header", True)
        .option("enforceSchema", False)
        .option("nullValue", "NA")
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
        .option("timestampFormat", TIMESTAMP_FORMAT)
        .csv(path)
    )


def _day(ds: str) -> Column:
    return F.to_date(F.lit(ds), "yyyy-MM-dd")


def _without_corrupt(df: DataFrame) -> DataFrame:
    return df.drop(CORRUPT_RECORD) if CORRUPT_RECORD in df.columns else df


def flight_key(ds: str) -> Column:
    """``carrier`` + ``flight`` + ``origin`` + scheduled departure (local), e.g.
    ``B6707-JFK-20130102-2359``. Unique within every day of 2013 (checked over all 336,776
    flights); null when a part is missing, which the features gate rejects."""
    parts = [F.col("carrier"), F.col("flight"), F.col("origin"), F.col("sched_dep_time")]
    key = F.format_string(
        "%s%d-%s-%s-%04d",
        F.col("carrier"),
        F.col("flight"),
        F.col("origin"),
        F.date_format(_day(ds), "yyyyMMdd"),
        F.col("sched_dep_time"),
    )
    all_present = parts[0].isNotNull()
    for part in parts[1:]:
        all_present = all_present & part.isNotNull()
    return F.when(all_present, key)


def validated_flights(df: DataFrame, ds: str) -> DataFrame:
    """Raw flights that passed the gate, with the partition date and the flight key."""
    return _without_corrupt(df).withColumn("ds", _day(ds)).withColumn(KEY, flight_key(ds))


def validated_weather(df: DataFrame, ds: str) -> DataFrame:
    """Raw weather that passed the gate, with the partition date."""
    return _without_corrupt(df).withColumn("ds", _day(ds))


# How each raw dataset becomes its validated form, by dataset name (project.RAW_DATASETS).
VALIDATED = {"flights": validated_flights, "weather": validated_weather}


def hourly_weather(weather: DataFrame) -> DataFrame:
    """One row per airport and hour. Duplicate observations of the same hour (none in 2013, but
    nothing upstream forbids them) are averaged, so a join can never multiply flights."""
    wind = F.when(F.col("wind_speed") <= F.lit(WIND_SPEED_MAX_MPH), F.col("wind_speed"))
    return (
        weather.withColumn("wind_speed", wind)
        .groupBy("origin", "time_hour")
        .agg(*[F.avg(F.col(name).cast("double")).alias(name) for name in WEATHER_FEATURES])
    )


def build_features(flights: DataFrame, weather: DataFrame, ds: str) -> DataFrame:
    """The feature table of day ``ds``: one row per scheduled flight, exactly
    ``FEATURE_TABLE_COLUMNS``.

    Only what is known when the flight is scheduled: route, carrier, the scheduled hour and
    date, and the weather observed at the origin at the scheduled departure hour (joined on the
    ``time_hour`` instant, so the autumn clock change cannot pair a flight with the wrong hour).
    Flights whose hour has no observation keep null weather. The label ``air_time`` is null when
    the flight did not fly (cancelled: no departure; diverted: no arrival at its destination).
    """
    day = _day(ds)
    flights_of_day = flights.where(F.col("ds") == day)
    weather_of_day = hourly_weather(weather.where(F.col("ds") == day))
    joined = flights_of_day.join(weather_of_day, on=["origin", "time_hour"], how="left")
    columns = {
        KEY: F.col(KEY),
        "ds": F.col("ds"),
        LABEL: F.when(F.col("dep_time").isNotNull(), F.col("air_time").cast("double")),
        "carrier": F.col("carrier"),
        "origin": F.col("origin"),
        "dest": F.col("dest"),
        "distance": F.col("distance"),
        # sched_dep_time is HHMM; integer division keeps the hour without a string round trip
        "sched_dep_hour": F.floor(F.col("sched_dep_time") / F.lit(100)),
        "month": F.month(day),
        "day_of_week": F.dayofweek(day),  # 1 = Sunday ... 7 = Saturday
        **{name: F.col(name) for name in WEATHER_FEATURES},
    }
    numeric = set(NUMERIC)
    return joined.select(
        *[
            (columns[name].cast("double") if name in numeric else columns[name]).alias(name)
            for name in FEATURE_TABLE_COLUMNS
        ]
    )
