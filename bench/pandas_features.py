"""The feature table of many days computed with pandas: the same definition as the Spark job's
range path (``spark_jobs.flights.days.build_days``: weather at the scheduled hour, 28-day route and
carrier-route air times, the route's distance, plane facts, calendar), for the scale benchmark's
comparison. Written as pandas is written for a year: each route's history is one aggregate per
day flown, summed over a 28-day window by a rolling window per route, not a filter per day.
``tests/unit/test_pandas_features.py`` shows both give the Spark job's table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spark_jobs.flights.features import WEATHER_FEATURES, WIND_SPEED_MAX_MPH, days_to_holiday
from spark_jobs.flights.project import DEFAULTS, FEATURE_TABLE_COLUMNS, HISTORY_DAYS, KEY, LABEL, NUMERIC

# what a flight is looked up with (besides its key and day)
REQUEST = ["carrier", "origin", "dest", "sched_dep_time", "time_hour", "tailnum"]
WINDOW = f"{HISTORY_DAYS}D"


def _as_days(frame: pd.DataFrame) -> pd.DataFrame:
    if not pd.api.types.is_datetime64_any_dtype(frame["ds"]):  # dates, or partition names
        frame = frame.assign(ds=pd.to_datetime(frame["ds"].astype(str)))
    return frame


def history(flights: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per key and day flown: the sum and count of the air times of the ``HISTORY_DAYS`` days
    strictly before it (``_air``, ``_flew``), and the day's own longest distance."""
    flew = flights["air_time"].notna()
    per_day = (
        flights.assign(_air=flights["air_time"].where(flew).astype("float64"), _flew=flew.astype("int64"))
        .groupby([*keys, "ds"], sort=True)
        .agg(_air=("_air", "sum"), _flew=("_flew", "sum"), distance=("distance", "max"))
        .reset_index()
    )
    rolled = (
        per_day.set_index("ds")
        .groupby(keys, sort=False)[["_air", "_flew"]]
        .rolling(WINDOW, closed="left")  # [day - 28 days, day)
        .sum()
        .reset_index()
    )
    return per_day.drop(columns=["_air", "_flew"]).merge(rolled, on=[*keys, "ds"], how="left")


def build_days(
    flights: pd.DataFrame, weather: pd.DataFrame, days: list[str], planes: pd.DataFrame
) -> pd.DataFrame:
    """The feature rows of the flights of ``days`` (within one year). ``flights``: validated rows
    of ``days`` and of the ``HISTORY_DAYS`` before the first, with ``ds``; ``weather``: validated
    rows of ``days``. A validated flight always has a distance (the raw gate sets aside one
    without), so a route's distance on a day it is flown is that day's."""
    flights, weather = _as_days(flights), _as_days(weather)
    wanted = pd.to_datetime(pd.Series(days))
    of_days = flights[flights["ds"].isin(wanted)]

    route = history(flights, ["origin", "dest"])
    flown = route["_flew"].fillna(0)
    route = route.assign(
        route_air_time_mean=(route["_air"] / flown).where(flown > 0),
        route_flights=flown.astype("float64"),
    )
    carrier = history(flights, ["carrier", "origin", "dest"])
    carrier = carrier.assign(
        carrier_route_air_time_mean=(carrier["_air"] / carrier["_flew"]).where(carrier["_flew"] > 0)
    )
    w = weather[weather["ds"].isin(wanted)]
    w = w.assign(wind_speed=w["wind_speed"].where(w["wind_speed"] <= WIND_SPEED_MAX_MPH))
    hourly = w.groupby(["origin", "time_hour", "ds"], as_index=False)[list(WEATHER_FEATURES)].mean()
    year = wanted.iloc[0].year
    facts = planes.drop_duplicates("tailnum").assign(plane_age=lambda p: year - p["year"])
    calendar = pd.DataFrame(
        {
            "ds": wanted,
            "month": wanted.dt.month,
            "day_of_week": (wanted.dt.weekday + 1) % 7 + 1,  # 1 = Sunday, as Spark's dayofweek
            "days_to_holiday": [days_to_holiday(d) for d in days],
        }
    )
    joined = (
        of_days[[KEY, "ds", "dep_time", "air_time", "arr_delay", *REQUEST]]
        .merge(hourly, on=["origin", "time_hour", "ds"], how="left")
        .merge(
            route[["origin", "dest", "ds", "distance", "route_air_time_mean", "route_flights"]],
            on=["origin", "dest", "ds"],
            how="left",
        )
        .merge(
            carrier[["carrier", "origin", "dest", "ds", "carrier_route_air_time_mean"]],
            on=["carrier", "origin", "dest", "ds"],
            how="left",
        )
        .merge(facts[["tailnum", "plane_age", "engine", "seats"]], on="tailnum", how="left")
        .merge(calendar, on="ds", how="left")
    )
    flew = joined["dep_time"].notna()
    out = pd.DataFrame(
        {
            KEY: joined[KEY],
            "ds": joined["ds"],
            LABEL: joined["air_time"].where(flew),
            "arr_delay": joined["arr_delay"].where(flew),
            "carrier": joined["carrier"],
            "origin": joined["origin"],
            "dest": joined["dest"],
            "distance": joined["distance"],
            "sched_dep_hour": joined["sched_dep_time"] // 100,
            **{name: joined[name] for name in ("month", "day_of_week", "days_to_holiday")},
            **{name: joined[name] for name in WEATHER_FEATURES},
            "route_air_time_mean": joined["route_air_time_mean"],
            "route_flights": joined["route_flights"],
            "carrier_route_air_time_mean": joined["carrier_route_air_time_mean"],
            "engine": joined["engine"],
            "plane_age": joined["plane_age"],
            "seats": joined["seats"],
        }
    )
    for name, value in DEFAULTS.items():
        out[name] = out[name].fillna(value)
    for name in NUMERIC:
        out[name] = out[name].astype(np.float64)
    return out[list(FEATURE_TABLE_COLUMNS)]
