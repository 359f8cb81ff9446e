"""The scale benchmark compares the Spark feature job with pandas and Polars versions of the same
features over many days (``bench/pandas_features.py``, ``bench/polars_features.py``). That
comparison means something only if all compute the same table: here they do, on frames of two days
that exercise every rule (history window, one day's flights in the next day's history, cancelled
flights, wind glitch, repeated weather readings, planes listed twice or not at all)."""

from __future__ import annotations

import datetime as dt
import importlib.util

import pytest

from mlcycle.config import REPO_ROOT
from spark_jobs.flights.days import build_days
from spark_jobs.flights.features import validated_flights, validated_weather
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
DS, NEXT = "2013-01-30", "2013-01-31"


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def _inputs(spark):
    day, next_day = dt.date.fromisoformat(DS), dt.date.fromisoformat(NEXT)
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
    # the next day: its history holds the first day's flights; a route flown for the first time
    flights = flights.unionByName(
        _flights(
            spark,
            NEXT,
            [
                {"flight": 1, "time_hour": _utc(next_day, 10)},
                {"flight": 5, "dest": "SFO", "distance": 2586, "time_hour": _utc(next_day, 10)},
            ],
        )
    )
    for back, air_time in ((1, 140.0), (5, 160.0), (28, 170.0), (29, 999.0)):  # the 29th day is too old
        past = (day - dt.timedelta(days=back)).isoformat()
        flights = flights.unionByName(_flights(spark, past, [{"flight": 10 + back, "air_time": air_time}]))
        flights = flights.unionByName(_flights(spark, past, [{"flight": 50 + back, "air_time": None}]))
    base = {"year": 2013, "month": 1, "hour": 5, "dewp": 20.0, "humid": 60.0, "wind_dir": 270.0}
    readings = [
        (DS, {"temp": 30.0, "wind_speed": 10.0, "precip": 0.0, "visib": 10.0, "time_hour": _utc(day, 10)}),
        # a repeated reading, with the wind glitch
        (DS, {"temp": 32.0, "wind_speed": 1048.0, "precip": 0.1, "visib": 8.0, "time_hour": _utc(day, 10)}),
        (DS, {"temp": 40.0, "wind_speed": 5.0, "precip": None, "visib": 10.0, "time_hour": _utc(day, 19)}),
        (
            NEXT,
            {"temp": 20.0, "wind_speed": 7.0, "precip": 0.2, "visib": 6.0, "time_hour": _utc(next_day, 10)},
        ),
    ]
    weather = None
    for ds, reading in readings:
        row = {**base, "day": int(ds[-2:]), "origin": "JFK", **reading}
        one = validated_weather(_frame(spark, weather_schema(), WEATHER_COLUMNS, [row]), ds)
        weather = one if weather is None else weather.unionByName(one)
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
    return flights, weather, planes


def _comparable(frame):
    """Sorted by key, the day as text, a missing text as None (NaN after a pandas merge)."""
    import pandas as pd

    frame = frame.assign(ds=pd.to_datetime(frame["ds"]).dt.strftime("%Y-%m-%d"))
    frame = frame.sort_values("flight_id").reset_index(drop=True)
    for column in frame.select_dtypes(include="object").columns:
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


@pytest.mark.parametrize("engine", ["pandas", "polars"])
def test_single_machine_features_are_the_spark_features(spark, engine):
    import pandas as pd

    flights, weather, planes = _inputs(spark)
    days = [DS, NEXT]
    expected = _comparable(build_days(flights, weather, days, planes).toPandas())
    frames = [flights.toPandas(), weather.toPandas(), planes.toPandas()]
    if engine == "polars":
        import polars as pl

        got = _bench_module("polars_features").build_days(
            *[pl.from_pandas(f).lazy() for f in frames[:2]], days, pl.from_pandas(frames[2]).lazy()
        )
        got = got.to_pandas()
    else:
        got = _bench_module("pandas_features").build_days(frames[0], frames[1], days, frames[2])
    got = _comparable(got)
    assert len(expected) == 6 and set(expected["ds"]) == {DS, NEXT}
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    by_key = expected.set_index("flight_id")
    aa1 = by_key.loc["AA1-JFK-20130130-0559"]
    assert aa1["route_flights"] == 3.0
    # the next day counts the first day's flights that flew on the route (two of its three)
    assert by_key.loc["AA1-JFK-20130131-0559"]["route_flights"] == 4.0
    assert by_key.loc["AA5-JFK-20130131-0559"]["route_flights"] == 0.0  # a route new that day
    # the plane listed twice: one row for its flight, with the facts of its first listing (pandas
    # and Polars keep the first by rule; Spark's dropDuplicates does so on a one-partition table)
    assert (aa1["plane_age"], aa1["seats"], aa1["engine"]) == (9.0, 55.0, "Turbo-fan")
