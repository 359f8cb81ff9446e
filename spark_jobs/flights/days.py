"""The flights feature table of many days in one pass: for every day of a range, the table the
day's own job builds (``spark_jobs.flights.day.build_day``), row for row, without a job per day.

A day's features read the day and the ``HISTORY_DAYS`` days before it (routes' and carriers' air
times, a route's latest distance, the carriers and airports known): over a range, each of those is
one aggregate per key and day flown, paired with every day whose window holds it and summed per
key and day, instead of a job per day. The views are each day's own, row for row (what the
scoring service looks requests up in); the weather is looked up by airport, hour and day; the
planes by tail number (a range lies within one year: a plane's age is counted in the year of the
day); the calendar by day.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs.flights.features import (
    WEATHER_FEATURES,
    WIND_SPEED_MAX_MPH,
    assemble,
    days_to_holiday,
    plane_facts,
)
from spark_jobs.flights.project import HISTORY_DAYS

# the views of LOOKUPS that change from day to day, looked up by the day too (``assemble``)
BY_DAY = frozenset({"weather", "route", "carrier_route"})


def _paired_with_days(frame: DataFrame, days: DataFrame) -> DataFrame:
    """Each row of ``frame`` (with its ``ds``) once for every day ``D`` of ``days`` whose own job
    reads it: ``D - HISTORY_DAYS <= ds <= D`` (``D`` as ``_on``)."""
    return frame.join(
        F.broadcast(days),
        (frame["ds"] <= days["_on"]) & (frame["ds"] >= F.date_sub(days["_on"], HISTORY_DAYS)),
    )


def range_views(flights: DataFrame, weather: DataFrame, days: list[str], planes: DataFrame) -> dict:
    """The feature views of every day of ``days``, each row with its day (``ds``) but the planes'
    (the same all year): for each day, exactly the views its own job builds
    (``features.feature_views``), from the flights it reads (the day and the ``HISTORY_DAYS`` days
    before it). ``flights``: the validated flights of ``days`` and of the ``HISTORY_DAYS`` days
    before the first; ``weather``: the validated weather of ``days``.

    Each day's history is a few aggregates per key and day flown, paired with the days whose
    window holds that day flown, then summed per key and day: no job per day."""
    spark = flights.sparkSession
    years = {dt.date.fromisoformat(d).year for d in days}
    if len(years) != 1:
        raise ValueError(
            f"a range lies within one year (a plane's age is counted in it): {days[0]}..{days[-1]}"
        )
    on = spark.createDataFrame([(dt.date.fromisoformat(d),) for d in days], "_on date")
    air = F.col("air_time").cast("double")
    flew = F.col("air_time").isNotNull()

    def known(column: str) -> DataFrame:  # what a request's carrier or airport must be among
        seen = flights.select(column, "ds").distinct()
        return _paired_with_days(seen, on).select(column, F.col("_on").alias("ds")).distinct()

    def history(keys: list[str]) -> DataFrame:  # per key, day and day flown
        per_day = flights.groupBy(*keys, "ds").agg(
            F.sum(F.when(flew, air)).alias("_air"),
            F.count(F.when(flew, F.lit(1))).alias("_flew"),
            F.max(F.col("distance").cast("double")).alias("_distance"),
        )
        return _paired_with_days(per_day, on)

    before = F.col("ds") < F.col("_on")
    routes = (
        history(["origin", "dest"])
        .groupBy("origin", "dest", "_on")
        .agg(
            # the distance of the latest day flown up to the day (features.route_facts)
            F.max_by("_distance", F.when(F.col("_distance").isNotNull(), F.col("ds"))).alias("distance"),
            F.sum(F.when(before, F.col("_air"))).alias("_air"),
            F.sum(F.when(before, F.col("_flew"))).alias("_flew"),
        )
        .where(F.col("distance").isNotNull())
    )
    route = routes.select(
        "origin",
        "dest",
        "distance",
        F.when(F.col("_flew") > 0, F.col("_air") / F.col("_flew")).alias("route_air_time_mean"),
        F.when(F.col("_flew") > 0, F.col("_flew").cast("double")).alias("route_flights"),
        F.col("_on").alias("ds"),
    )
    carrier_route = (
        history(["carrier", "origin", "dest"])
        .where(before)
        .groupBy("carrier", "origin", "dest", "_on")
        .agg(F.sum("_air").alias("_air"), F.sum("_flew").alias("_flew"))
        .where(F.col("_flew") > 0)
        .select(
            "carrier",
            "origin",
            "dest",
            (F.col("_air") / F.col("_flew")).alias("carrier_route_air_time_mean"),
            F.col("_on").alias("ds"),
        )
    )
    wind = F.when(F.col("wind_speed") <= F.lit(WIND_SPEED_MAX_MPH), F.col("wind_speed"))
    hourly = (
        weather.withColumn("wind_speed", wind)
        .groupBy("origin", "time_hour", "ds")
        .agg(*[F.avg(F.col(name).cast("double")).alias(name) for name in WEATHER_FEATURES])
    )
    calendar = spark.createDataFrame(
        [(dt.date.fromisoformat(d), days_to_holiday(d)) for d in days], "ds date, days_to_holiday int"
    ).select("ds", F.month("ds").alias("month"), F.dayofweek("ds").alias("day_of_week"), "days_to_holiday")
    return {
        "carriers": known("carrier"),
        "origins": known("origin"),
        "dests": known("dest"),
        "weather": hourly,
        "route": route,
        "carrier_route": carrier_route,
        "plane": plane_facts(planes, days[0]),
        "calendar": calendar,
    }


def build_days(flights: DataFrame, weather: DataFrame, days: list[str], planes: DataFrame) -> DataFrame:
    """The feature table of every day of ``days`` (within one year), as each day's own job builds
    it. ``flights``, ``weather``: as ``range_views`` reads them."""
    return assemble_days(flights, days, range_views(flights, weather, days, planes))


def assemble_days(flights: DataFrame, days: list[str], views: dict) -> DataFrame:
    """The feature rows of the flights of ``days``, from the views of ``range_views``."""
    wanted = [dt.date.fromisoformat(d) for d in days]
    return assemble(flights.where(F.col("ds").isin(wanted)), views, by_day=BY_DAY)


def build_range(spark, data_root: str, days: list[str], hold=None):
    """(the feature rows of ``days``, the days of history each day was built on, the views of
    ``range_views``): ``day.build_day`` for many days, from the validated partitions there are
    (a day's history is the validated days of its window, as its own job finds them). ``hold``:
    as ``day.build_day``'s."""
    from spark_jobs.common import existing_partitions, read_partitions
    from spark_jobs.flights.day import read_planes
    from spark_jobs.flights.features import VALIDATED
    from spark_jobs.flights.schemas import RAW_SCHEMAS

    first = dt.date.fromisoformat(days[0])
    window = [(first - dt.timedelta(days=back)).isoformat() for back in range(HISTORY_DAYS, 0, -1)]
    found = existing_partitions(spark, data_root, "validated/flights", window + list(days))
    flights = read_partitions(spark, data_root, "validated/flights", found)
    with_weather = existing_partitions(spark, data_root, "validated/weather", days)
    if with_weather:
        weather = read_partitions(spark, data_root, "validated/weather", with_weather)
    else:  # no reading on any of the days (the gate passed them empty)
        weather = VALIDATED["weather"](spark.createDataFrame([], RAW_SCHEMAS["weather"]()), days[0])
    present = {dt.date.fromisoformat(d) for d in found}
    history_days = {}
    for ds in days:
        day = dt.date.fromisoformat(ds)
        history_days[ds] = sum(
            1 for back in range(1, HISTORY_DAYS + 1) if day - dt.timedelta(days=back) in present
        )
    views = range_views(flights, weather, days, read_planes(spark, data_root))
    if hold is not None:
        views = {name: hold(view) for name, view in views.items()}
    return assemble_days(flights, days, views), history_days, views
