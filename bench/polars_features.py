"""The feature table of many days computed with Polars: the same definition as the Spark job's
range path (``spark_jobs.flights.days.build_days``) and ``bench/pandas_features.py``, for the
scale benchmark's comparison, written as Polars is written: a lazy query, each route's history a
rolling window per route over its days flown. ``tests/unit/test_pandas_features.py`` shows it
gives the Spark job's table."""

from __future__ import annotations

import datetime as dt

import polars as pl

from spark_jobs.flights.features import WEATHER_FEATURES, WIND_SPEED_MAX_MPH, days_to_holiday
from spark_jobs.flights.project import DEFAULTS, FEATURE_TABLE_COLUMNS, HISTORY_DAYS, KEY, LABEL, NUMERIC

# what a flight is looked up with (besides its key and day)
REQUEST = ["carrier", "origin", "dest", "sched_dep_time", "time_hour", "tailnum"]
WINDOW = f"{HISTORY_DAYS}d"


def _history(flights: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    """Per key and day flown: the sum and count of the air times of the ``HISTORY_DAYS`` days
    strictly before it (``_air``, ``_flew``), and the day's own longest distance."""
    flew = pl.col("air_time").is_not_null()
    per_day = (
        flights.group_by([*keys, "ds"])
        .agg(
            pl.col("air_time").cast(pl.Float64).filter(flew).sum().alias("_air"),
            flew.sum().cast(pl.Int64).alias("_flew"),
            pl.col("distance").max().alias("distance"),
        )
        .sort([*keys, "ds"])
    )
    rolled = per_day.rolling(index_column="ds", period=WINDOW, closed="left", group_by=keys).agg(
        pl.col("_air").sum().alias("_air"), pl.col("_flew").sum().alias("_flew")
    )
    return per_day.drop("_air", "_flew").join(rolled, on=[*keys, "ds"], how="left")


def build_days(
    flights: pl.LazyFrame, weather: pl.LazyFrame, days: list[str], planes: pl.LazyFrame
) -> pl.DataFrame:
    """The feature rows of the flights of ``days`` (within one year), as ``bench.pandas_features``
    builds them; ``ds`` a date column."""
    wanted = [dt.date.fromisoformat(d) for d in days]
    of_days = flights.filter(pl.col("ds").is_in(wanted))
    route = _history(flights, ["origin", "dest"]).with_columns(
        pl.when(pl.col("_flew") > 0).then(pl.col("_air") / pl.col("_flew")).alias("route_air_time_mean"),
        pl.col("_flew").fill_null(0).cast(pl.Float64).alias("route_flights"),
    )
    carrier = _history(flights, ["carrier", "origin", "dest"]).with_columns(
        pl.when(pl.col("_flew") > 0)
        .then(pl.col("_air") / pl.col("_flew"))
        .alias("carrier_route_air_time_mean")
    )
    wind = pl.when(pl.col("wind_speed") <= WIND_SPEED_MAX_MPH).then(pl.col("wind_speed"))
    hourly = (
        weather.filter(pl.col("ds").is_in(wanted))
        .with_columns(wind.alias("wind_speed"))
        .group_by(["origin", "time_hour", "ds"])
        .agg([pl.col(name).cast(pl.Float64).mean() for name in WEATHER_FEATURES])
    )
    year = wanted[0].year
    facts = planes.unique("tailnum", keep="first", maintain_order=True).select(
        "tailnum", (pl.lit(year) - pl.col("year")).alias("plane_age"), "engine", "seats"
    )
    calendar = pl.LazyFrame(
        {
            "ds": wanted,
            "month": [d.month for d in wanted],
            "day_of_week": [(d.weekday() + 1) % 7 + 1 for d in wanted],  # 1 = Sunday, as Spark's
            "days_to_holiday": [days_to_holiday(d) for d in days],
        }
    )
    flew = pl.col("dep_time").is_not_null()
    numeric = set(NUMERIC)
    columns = {
        KEY: pl.col(KEY),
        "ds": pl.col("ds"),
        LABEL: pl.when(flew).then(pl.col("air_time")),
        "arr_delay": pl.when(flew).then(pl.col("arr_delay")),
        "sched_dep_hour": pl.col("sched_dep_time") // 100,
        **{name: pl.col(name).fill_null(value) for name, value in DEFAULTS.items()},
    }
    return (
        of_days.select(KEY, "ds", "dep_time", "air_time", "arr_delay", *REQUEST)
        .join(hourly, on=["origin", "time_hour", "ds"], how="left")
        .join(
            route.select("origin", "dest", "ds", "distance", "route_air_time_mean", "route_flights"),
            on=["origin", "dest", "ds"],
            how="left",
        )
        .join(
            carrier.select("carrier", "origin", "dest", "ds", "carrier_route_air_time_mean"),
            on=["carrier", "origin", "dest", "ds"],
            how="left",
        )
        .join(facts, on="tailnum", how="left")
        .join(calendar, on="ds", how="left")
        .select(
            [
                (
                    columns.get(name, pl.col(name)).cast(pl.Float64)
                    if name in numeric
                    else columns.get(name, pl.col(name))
                ).alias(name)
                for name in FEATURE_TABLE_COLUMNS
            ]
        )
        .collect()
    )
