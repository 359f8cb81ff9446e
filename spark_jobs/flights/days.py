"""The flights feature table of many days in one pass: for every day of a range, the table the
day's own job builds (``spark_jobs.flights.day.build_day``), row for row, without a job per day.

A day's features read the day and the ``HISTORY_DAYS`` days before it (routes' and carriers' air
times, a route's latest distance): over a range, each of those is one aggregate per key and day,
then a window over the days before each day (``rangeBetween``), instead of a join per day. The
weather is looked up by airport, hour and day; the planes by tail number (a range lies within one
year: a plane's age is counted in the year of the day); the calendar by day.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
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


def _day_number(column: str = "ds"):
    return F.datediff(F.col(column), F.lit("1970-01-01").cast("date"))


def _history(flights: DataFrame, keys: list[str]) -> DataFrame:
    """Per key and day the key was flown: the flights that flew and their summed air time over
    the ``HISTORY_DAYS`` days strictly before it (``features.route_history`` of each day)."""
    daily = flights.groupBy(*keys, "ds").agg(
        F.sum(F.col("air_time").cast("double")).alias("_air"),
        F.count(F.col("air_time")).alias("_flew"),
    )
    before = Window.partitionBy(*keys).orderBy(_day_number()).rangeBetween(-HISTORY_DAYS, -1)
    return daily.select(
        *keys,
        "ds",
        F.sum("_air").over(before).alias("_air"),
        F.sum("_flew").over(before).alias("_flew"),
    )


def _mean(name: str):
    return F.when(F.col("_flew") > 0, F.col("_air") / F.col("_flew")).alias(name)


def range_views(flights: DataFrame, weather: DataFrame, days: list[str], planes: DataFrame) -> dict:
    """The views ``assemble`` looks the flights of ``days`` up in, each row with its day where the
    view changes from day to day (``BY_DAY``). ``flights``: the validated flights of ``days`` and
    of the ``HISTORY_DAYS`` days before the first; ``weather``: the validated weather of ``days``."""
    spark = flights.sparkSession
    years = {dt.date.fromisoformat(d).year for d in days}
    if len(years) != 1:
        raise ValueError(
            f"a range lies within one year (a plane's age is counted in it): {days[0]}..{days[-1]}"
        )
    wind = F.when(F.col("wind_speed") <= F.lit(WIND_SPEED_MAX_MPH), F.col("wind_speed"))
    hourly = (
        weather.withColumn("wind_speed", wind)
        .groupBy("origin", "time_hour", "ds")
        .agg(*[F.avg(F.col(name).cast("double")).alias(name) for name in WEATHER_FEATURES])
    )
    route = _history(flights, ["origin", "dest"])
    # a route's distance as the latest day flown up to the day gives it (features.route_facts)
    flown = flights.groupBy("origin", "dest", "ds").agg(
        F.max(F.col("distance").cast("double")).alias("_distance")
    )
    up_to = Window.partitionBy("origin", "dest").orderBy(_day_number()).rangeBetween(-HISTORY_DAYS, 0)
    distance = flown.select(
        "origin", "dest", "ds", F.last("_distance", ignorenulls=True).over(up_to).alias("distance")
    )
    route = route.join(distance, on=["origin", "dest", "ds"]).select(
        "origin",
        "dest",
        "ds",
        "distance",
        _mean("route_air_time_mean"),
        F.when(F.col("_flew") > 0, F.col("_flew").cast("double")).alias("route_flights"),
    )
    carrier_route = _history(flights, ["carrier", "origin", "dest"]).select(
        "carrier", "origin", "dest", "ds", _mean("carrier_route_air_time_mean")
    )
    calendar = spark.createDataFrame(
        [(dt.date.fromisoformat(d), days_to_holiday(d)) for d in days], "ds date, days_to_holiday int"
    ).select("ds", F.month("ds").alias("month"), F.dayofweek("ds").alias("day_of_week"), "days_to_holiday")
    return {
        "weather": hourly,
        "route": route,
        "carrier_route": carrier_route,
        "plane": plane_facts(planes, days[0]),
        "calendar": calendar,
    }


def build_days(flights: DataFrame, weather: DataFrame, days: list[str], planes: DataFrame) -> DataFrame:
    """The feature table of every day of ``days`` (consecutive, within one year), as each day's own
    job builds it. ``flights``, ``weather``: as ``range_views`` reads them."""
    first = dt.date.fromisoformat(days[0])
    wanted = [dt.date.fromisoformat(d) for d in days]
    of_days = flights.where(F.col("ds").isin(wanted))
    history = flights.where(F.col("ds") >= F.lit(first - dt.timedelta(days=HISTORY_DAYS)))
    return assemble(of_days, range_views(history, weather, days, planes), by_day=BY_DAY)
