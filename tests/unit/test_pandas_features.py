"""The scale benchmark compares the Spark feature job with a pandas version of the same features
(``bench/pandas_features.py``). That comparison means something only if both compute the same
table: here they do, on frames that exercise every rule (history window, cancelled flights, wind
glitch, repeated weather readings, planes listed twice or not at all)."""

from __future__ import annotations

import datetime as dt
import importlib.util

import pytest

from mlcycle.config import REPO_ROOT
from spark_jobs.flights.features import build_features, validated_flights, validated_weather
from spark_jobs.flights.schemas import (
    CORRUPT_RECORD,
    FLIGHTS_COLUMNS,
    PLANES_COLUMNS,
    WEATHER_COLUMNS,
    flights_schema,
    planes_schema,
    weather_schema,
)

pytestmark = pytest.mark.spark
DS = "2013-01-30"


def _pandas_features():
    spec = importlib.util.spec_from_file_location(
        "pandas_features", REPO_ROOT / "bench" / "pandas_features.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_features


def _utc(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


def _frame(spark, schema, columns, rows):
    names = [name for name, _ in columns]
    return spark.createDataFrame([tuple(r.get(n) for n in names) + (None,) for r in rows], schema)


def _flights(spark, ds: str, rows: list[dict]):
    day = dt.date.fromisoformat(ds)
    full = [
        {
            "year": day.year, "month": day.month, "day": day.day, "dep_time": 600, "sched_dep_time": 559,
            "dep_delay": 1.0, "arr_time": 900, "sched_arr_time": 850, "arr_delay": 10.0, "carrier": "AA",
            "flight": 100, "tailnum": "N1", "origin": "JFK", "dest": "MIA", "air_time": 150.0,
            "distance": 1089, "hour": 5, "minute": 59, "time_hour": _utc(day, 10), **r,
        }
        for r in rows
    ]  # fmt: skip
    return validated_flights(_frame(spark, flights_schema(), FLIGHTS_COLUMNS, full), ds)


def test_pandas_features_are_the_spark_features(spark):
    day = dt.date.fromisoformat(DS)
    flights = _flights(
        spark,
        DS,
        [
            {"flight": 1},
            {
                "flight": 2,
                "carrier": "B6",
                "tailnum": "N2",
                "sched_dep_time": 1402,
                "time_hour": _utc(day, 19),
            },
            {"flight": 3, "dep_time": None, "air_time": None, "tailnum": "N9"},  # cancelled, unknown plane
            {"flight": 4, "origin": "EWR", "dest": "ORD", "distance": 719, "tailnum": None},
        ],
    )
    for back, air_time in ((1, 140.0), (5, 160.0), (28, 170.0), (29, 999.0)):  # the 29th day is too old
        past = (day - dt.timedelta(days=back)).isoformat()
        flights = flights.unionByName(_flights(spark, past, [{"flight": 10 + back, "air_time": air_time}]))
        flights = flights.unionByName(_flights(spark, past, [{"flight": 50 + back, "air_time": None}]))
    base = {"year": 2013, "month": 1, "day": 30, "hour": 5, "dewp": 20.0, "humid": 60.0, "wind_dir": 270.0}
    weather = validated_weather(
        _frame(
            spark,
            weather_schema(),
            WEATHER_COLUMNS,
            [
                {
                    **base,
                    "origin": "JFK",
                    "temp": 30.0,
                    "wind_speed": 10.0,
                    "precip": 0.0,
                    "visib": 10.0,
                    "time_hour": _utc(day, 10),
                },
                {
                    **base,
                    "origin": "JFK",
                    "temp": 32.0,
                    "wind_speed": 1048.0,
                    "precip": 0.1,
                    "visib": 8.0,
                    "time_hour": _utc(day, 10),
                },  # a repeated reading, with the wind glitch
                {
                    **base,
                    "origin": "JFK",
                    "temp": 40.0,
                    "wind_speed": 5.0,
                    "precip": None,
                    "visib": 10.0,
                    "time_hour": _utc(day, 19),
                },
            ],  # fmt: skip
        ),
        DS,
    )
    planes = _frame(
        spark,
        planes_schema(),
        PLANES_COLUMNS,
        [
            {"tailnum": "N1", "year": 2004, "seats": 55, "engine": "Turbo-fan"},
            {"tailnum": "N2", "year": None, "seats": 200, "engine": "Turbo-jet"},
            {"tailnum": "N1", "year": 1990, "seats": 180, "engine": "Turbo-jet"},  # N1 listed twice
        ],
    ).drop(CORRUPT_RECORD)

    expected = build_features(flights, weather, DS, planes=planes).toPandas()
    got = _pandas_features()(flights.toPandas(), weather.toPandas(), DS, planes.toPandas())

    import pandas as pd

    # the day as text: a date in Spark's frame, a timestamp in pandas'
    expected = expected.assign(ds=expected["ds"].astype(str)).sort_values("flight_id").reset_index(drop=True)
    got = got.assign(ds=got["ds"].dt.strftime("%Y-%m-%d")).sort_values("flight_id").reset_index(drop=True)
    assert len(expected) == 4 and set(expected["ds"]) == {DS}
    assert list(got.columns) == list(expected.columns)
    for frame in (expected, got):  # a missing text is None in Spark's frame, NaN after a pandas merge
        for column in frame.select_dtypes(include="object").columns:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    aa1 = expected.set_index("flight_id").loc["AA1-JFK-20130130-0559"]
    assert aa1["route_flights"] == 3.0
    # the plane listed twice: one row for its flight, with the facts of its first listing (pandas
    # keeps the first by rule; Spark's dropDuplicates does so on a one-partition table like this)
    assert (aa1["plane_age"], aa1["seats"], aa1["engine"]) == (9.0, 55.0, "Turbo-fan")
