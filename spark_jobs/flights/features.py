"""Flights: from the upstream drop to the feature table, as pure DataFrame -> DataFrame functions.

Every function takes the day it works on as an argument (``ds``, ``YYYY-MM-DD``) and never looks
at the clock, so a backfill computes what the daily run computed. Spark 4 runs in ANSI mode,
where a bad cast raises instead of yielding null: the raw schemas already type every column, and
the only casts left here are widening ones (int -> double) that cannot fail.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.flights.project import (
    DEFAULTS,
    DERIVED,
    FEATURE_TABLE_COLUMNS,
    HISTORY_DAYS,
    KEPT,
    KEY,
    LABEL,
    LOOKUPS,
    NUMERIC,
    REQUEST_FIELDS,
)
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
    the corrupt-record column of an uncached CSV scan: pin the result (``spark_jobs.common.pinned``)
    before checking it.
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


def _day(ds: str | Column) -> Column:
    """A day (``YYYY-MM-DD``), or a column of them (the rows of many days), as a date."""
    return F.to_date(ds if isinstance(ds, Column) else F.lit(ds), "yyyy-MM-dd")


def _without_corrupt(df: DataFrame) -> DataFrame:
    return df.drop(CORRUPT_RECORD) if CORRUPT_RECORD in df.columns else df


def flight_key(ds: str | Column) -> Column:
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


def validated_flights(df: DataFrame, ds: str | Column) -> DataFrame:
    """Raw flights that passed the gate, with the partition date and the flight key."""
    return _without_corrupt(df).withColumn("ds", _day(ds)).withColumn(KEY, flight_key(ds))


def validated_weather(df: DataFrame, ds: str | Column) -> DataFrame:
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


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The ``n``-th ``weekday`` (0 = Monday) of a month; ``n = -1`` is the last one."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = (dt.date(year, month % 12 + 1, 1) if month < 12 else dt.date(year + 1, 1, 1)) - dt.timedelta(
        days=1
    )
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def us_holidays(year: int) -> list[dt.date]:
    """The US federal holidays of a year (as observed dates are not what travel follows, the
    days themselves): New Year, MLK, Presidents, Memorial, Independence, Labor, Columbus,
    Veterans, Thanksgiving, Christmas."""
    return sorted(
        [
            dt.date(year, 1, 1),
            _nth_weekday(year, 1, 0, 3),
            _nth_weekday(year, 2, 0, 3),
            _nth_weekday(year, 5, 0, -1),
            dt.date(year, 7, 4),
            _nth_weekday(year, 9, 0, 1),
            _nth_weekday(year, 10, 0, 2),
            dt.date(year, 11, 11),
            _nth_weekday(year, 11, 3, 4),
            dt.date(year, 12, 25),
        ]
    )


def days_to_holiday(ds: str) -> int:
    """Days from ``ds`` to the nearest federal holiday (of its year or the next/previous one)."""
    day = dt.date.fromisoformat(ds)
    near = [*us_holidays(day.year - 1), *us_holidays(day.year), *us_holidays(day.year + 1)]
    return min(abs((h - day).days) for h in near)


def route_history(flights: DataFrame, ds: str, days: int = HISTORY_DAYS) -> tuple[DataFrame, DataFrame]:
    """Air-time statistics of the ``days`` days strictly before ``ds``, per route and per carrier
    on a route. Only flights that flew count. Nothing of day ``ds`` or later is read, whatever
    ``flights`` holds: these are what is known when the day's flights are scheduled."""
    day = _day(ds)
    past = flights.where(
        (F.col("ds") < day) & (F.col("ds") >= F.date_sub(day, days)) & F.col("air_time").isNotNull()
    )
    air_time = F.col("air_time").cast("double")
    by_route = past.groupBy("origin", "dest").agg(
        F.avg(air_time).alias("route_air_time_mean"), F.count(F.lit(1)).cast("double").alias("route_flights")
    )
    by_carrier_route = past.groupBy("carrier", "origin", "dest").agg(
        F.avg(air_time).alias("carrier_route_air_time_mean")
    )
    return by_route, by_carrier_route


def plane_facts(planes: DataFrame, ds: str) -> DataFrame:
    """Per tail number: the plane's age in the year of ``ds``, its engine type and its seats."""
    year = dt.date.fromisoformat(ds).year
    return planes.select(
        F.col("tailnum"),
        F.when(F.col("year").isNotNull(), F.lit(year) - F.col("year")).alias("plane_age"),
        F.col("engine"),
        F.col("seats"),
    ).dropDuplicates(["tailnum"])


def route_facts(flights: DataFrame, ds: str) -> DataFrame:
    """Per route flown on ``ds`` or in the days before it that ``flights`` holds: its distance (as
    the latest day flown gives it: a route's distance changed once in 2013, to EGE) and its
    history (``route_history``: days before ``ds`` only)."""
    from pyspark.sql import Window

    day = _day(ds)
    known = flights.where((F.col("ds") <= day) & F.col("distance").isNotNull())
    latest = Window.partitionBy("origin", "dest").orderBy(F.col("ds").desc(), F.col("distance").desc())
    routes = (
        known.select("origin", "dest", "ds", F.col("distance").cast("double").alias("distance"))
        .withColumn("_latest", F.row_number().over(latest))
        .where(F.col("_latest") == 1)
        .select("origin", "dest", "distance")
    )
    by_route, _ = route_history(flights, ds)
    return routes.join(by_route, on=["origin", "dest"], how="left")


def calendar(spark: SparkSession, ds: str) -> DataFrame:
    """The day's own features: month, weekday (1 = Sunday ... 7 = Saturday), days to a holiday."""
    day = _day(ds)
    return spark.range(1).select(
        day.alias("ds"),
        F.month(day).alias("month"),
        F.dayofweek(day).alias("day_of_week"),
        F.lit(days_to_holiday(ds)).alias("days_to_holiday"),
    )


def feature_views(
    flights: DataFrame, weather: DataFrame, ds: str, planes: DataFrame | None = None
) -> dict[str, DataFrame]:
    """What the features of day ``ds`` are looked up in, one table per view of ``LOOKUPS``, keyed
    by what a flight is scheduled with: the carriers and airports known, the weather observed at each airport and hour of the day,
    each route's distance and history, each carrier's history on a route, each plane, the day.
    Only what is known when the day's flights are scheduled (history: days before ``ds``)."""
    spark = flights.sparkSession
    if planes is None:
        planes = spark.createDataFrame([], "tailnum string, year int, engine string, seats int")
    _, by_carrier_route = route_history(flights, ds)
    known = flights.where(F.col("ds") <= _day(ds))
    return {
        "carriers": known.select("carrier").distinct(),
        "origins": known.select("origin").distinct(),
        "dests": known.select("dest").distinct(),
        "weather": hourly_weather(weather.where(F.col("ds") == _day(ds))),
        "route": route_facts(flights, ds),
        "carrier_route": by_carrier_route,
        "plane": plane_facts(planes, ds),
        "calendar": calendar(spark, ds),
    }


def assemble(
    flights_of_day: DataFrame, views: dict[str, DataFrame], by_day: frozenset = frozenset()
) -> DataFrame:
    """The feature table of a day's flights: each flight's request fields, each view's features
    for the flight's key (``LOOKUPS``; null when the view has none, or ``DEFAULTS``), the derived
    ones (``DERIVED``), and the outcomes (null when the flight did not fly). The views named in
    ``by_day`` hold many days, each row with its ``ds``: they are looked up by the day too."""
    joined = flights_of_day.select(KEY, "dep_time", "air_time", "arr_delay", *REQUEST_FIELDS)
    for view, keys, columns in LOOKUPS:
        if columns:  # a view of keys only says what is known: every flight of the day is
            on = [*keys, "ds"] if view in by_day and "ds" not in keys else list(keys)
            joined = joined.join(views[view].select(*on, *columns), on=on, how="left")
    columns = {
        KEY: F.col(KEY),
        "ds": F.col("ds"),
        LABEL: F.when(F.col("dep_time").isNotNull(), F.col("air_time").cast("double")),
        "arr_delay": F.when(F.col("dep_time").isNotNull(), F.col("arr_delay").cast("double")),
        **{field: F.col(field) for field in KEPT},
        **{name: F.floor(F.col(field) / F.lit(divisor)) for name, field, divisor in DERIVED},
        **{c: F.col(c) for _, _, cols in LOOKUPS for c in cols},
    }
    for name, value in DEFAULTS.items():
        columns[name] = F.coalesce(columns[name], F.lit(value))
    numeric = set(NUMERIC)
    return joined.select(
        *[
            (columns[name].cast("double") if name in numeric else columns[name]).alias(name)
            for name in FEATURE_TABLE_COLUMNS
        ]
    )


def build_features(
    flights: DataFrame, weather: DataFrame, ds: str, planes: DataFrame | None = None
) -> DataFrame:
    """The feature table of day ``ds``: one row per scheduled flight, exactly
    ``FEATURE_TABLE_COLUMNS``, assembled from the day's ``feature_views``.

    Only what is known when the flight is scheduled: route, carrier, the scheduled hour and
    date, how far the day is from a holiday, the weather observed at the origin at the scheduled
    departure hour (joined on the ``time_hour`` instant, so the autumn clock change cannot pair a
    flight with the wrong hour), the route's distance and the route's and the carrier's air times
    over the previous ``HISTORY_DAYS`` days (``route_history``: days before ``ds`` only), and the
    plane's age, engine and seats (``planes``). ``flights`` may hold other days: only ``ds`` is
    built, and only earlier days feed the statistics. Missing history, weather or plane facts stay
    null. The label ``air_time`` is null when the flight did not fly (cancelled: no departure;
    diverted: no arrival at its destination).
    """
    flights_of_day = flights.where(F.col("ds") == _day(ds))
    return assemble(flights_of_day, feature_views(flights, weather, ds, planes))
