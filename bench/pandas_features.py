"""The feature table of one day computed with pandas: the same definition as the Spark job's
``spark_jobs.flights.features.build_features`` (weather at the scheduled hour, 28-day route and
carrier-route air times, plane facts, calendar), for the scale benchmark's comparison. The
benchmark checks on the real data that both give the same table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spark_jobs.flights.features import WEATHER_FEATURES, WIND_SPEED_MAX_MPH, days_to_holiday
from spark_jobs.flights.project import FEATURE_TABLE_COLUMNS, HISTORY_DAYS, KEY, LABEL, NUMERIC


def build_features(
    flights: pd.DataFrame, weather: pd.DataFrame, ds: str, planes: pd.DataFrame
) -> pd.DataFrame:
    """``flights``/``weather``: validated rows with a ``ds`` column of day timestamps."""
    day = pd.Timestamp(ds)
    if flights["ds"].dtype == object:  # dates, as toPandas gives them
        flights = flights.assign(ds=pd.to_datetime(flights["ds"]))
    if weather["ds"].dtype == object:
        weather = weather.assign(ds=pd.to_datetime(weather["ds"]))
    of_day = flights[flights["ds"] == day]
    w = weather[weather["ds"] == day]
    w = w.assign(wind_speed=w["wind_speed"].where(w["wind_speed"] <= WIND_SPEED_MAX_MPH))
    hourly = w.groupby(["origin", "time_hour"], as_index=False)[list(WEATHER_FEATURES)].mean()

    past = flights[
        (flights["ds"] < day)
        & (flights["ds"] >= day - pd.Timedelta(days=HISTORY_DAYS))
        & flights["air_time"].notna()
    ]
    by_route = (
        past.groupby(["origin", "dest"])["air_time"]
        .agg(route_air_time_mean="mean", route_flights="count")
        .reset_index()
    )
    by_carrier_route = (
        past.groupby(["carrier", "origin", "dest"])["air_time"]
        .mean()
        .rename("carrier_route_air_time_mean")
        .reset_index()
    )
    facts = planes.drop_duplicates("tailnum").assign(plane_age=lambda p: day.year - p["year"])
    joined = (
        of_day.merge(hourly, on=["origin", "time_hour"], how="left")
        .merge(by_route, on=["origin", "dest"], how="left")
        .merge(by_carrier_route, on=["carrier", "origin", "dest"], how="left")
        .merge(facts[["tailnum", "plane_age", "engine", "seats"]], on="tailnum", how="left")
    )
    out = pd.DataFrame(
        {
            KEY: joined[KEY],
            "ds": joined["ds"],
            LABEL: joined["air_time"].where(joined["dep_time"].notna()),
            "arr_delay": joined["arr_delay"].where(joined["dep_time"].notna()),
            "carrier": joined["carrier"],
            "origin": joined["origin"],
            "dest": joined["dest"],
            "distance": joined["distance"],
            "sched_dep_hour": joined["sched_dep_time"] // 100,
            "month": day.month,
            "day_of_week": (day.weekday() + 1) % 7 + 1,  # 1 = Sunday, as Spark's dayofweek
            "days_to_holiday": days_to_holiday(ds),
            **{name: joined[name] for name in WEATHER_FEATURES},
            "route_air_time_mean": joined["route_air_time_mean"],
            "route_flights": joined["route_flights"].fillna(0),
            "carrier_route_air_time_mean": joined["carrier_route_air_time_mean"],
            "engine": joined["engine"],
            "plane_age": joined["plane_age"],
            "seats": joined["seats"],
        }
    )
    for name in NUMERIC:
        out[name] = out[name].astype(np.float64)
    return out[list(FEATURE_TABLE_COLUMNS)]
