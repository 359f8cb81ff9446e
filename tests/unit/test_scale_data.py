"""The scale benchmark's data (``bench/scale_data.py``): more airlines from more airports, not copies
of the same flights. Copy 0 is the real data; every other copy has its own carriers, airports,
routes, planes and keys, its weather where its flights leave, and outcomes that differ a little."""

from __future__ import annotations

import sys
from datetime import date, datetime

import pandas as pd

from mlcycle.config import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "bench"))

import scale_data  # noqa: E402


def _flights(spark):
    rows = [
        ("B6", 707, "N547JB", "JFK", "LAX", 1430, 330.0, 5.0, 12.0, "B6707-JFK-20130102-1430"),
        ("UA", 1545, "N14228", "EWR", "IAH", 515, 227.0, 2.0, 11.0, "UA1545-EWR-20130102-0515"),
        ("B6", 1001, None, "JFK", "BOS", 600, 38.0, None, None, "B61001-JFK-20130102-0600"),
    ]
    frame = pd.DataFrame(
        rows,
        columns=["carrier", "flight", "tailnum", "origin", "dest", "sched_dep_time", "air_time",
                 "dep_delay", "arr_delay", "flight_id"],
    )  # fmt: skip
    frame["ds"] = date(2013, 1, 2)
    return spark.createDataFrame(frame)


def _weather(spark):
    frame = pd.DataFrame(
        {
            "origin": ["JFK", "EWR"],
            "temp": [30.0, 28.0],
            "time_hour": [datetime(2013, 1, 2, 19), datetime(2013, 1, 2, 10)],
        }
    )
    frame["ds"] = date(2013, 1, 2)
    return spark.createDataFrame(frame)


def test_the_codes_of_each_copy_are_new_and_copy_zero_is_real():
    maps = scale_data.code_maps(["B6", "UA"], ["JFK", "EWR", "LAX", "IAH", "BOS"], 30)
    assert maps[0] == ({"B6": "B6", "UA": "UA"}, {a: a for a in ["BOS", "EWR", "IAH", "JFK", "LAX"]})
    carriers = [c for m, _ in maps for c in m.values()]
    airports = [a for _, m in maps for a in m.values()]
    assert len(set(carriers)) == 2 * 30 and len(set(airports)) == 5 * 30  # all distinct
    assert all(len(c) == 2 and c.isalnum() and c.upper() == c for c in carriers)
    assert all(len(a) == 3 and a.isalpha() and a.isupper() for a in airports)


def test_three_copies_are_three_airlines_of_distinct_flights_with_their_weather(spark):
    flights, weather = _flights(spark), _weather(spark)
    maps = scale_data.code_maps(["B6", "UA"], ["JFK", "EWR", "LAX", "IAH", "BOS"], 3)
    scaled = scale_data.scaled_flights(flights, maps).toPandas()
    skies = scale_data.scaled_weather(weather, maps).toPandas()

    assert len(scaled) == 9 and scaled["flight_id"].is_unique
    real = scaled[scaled["carrier"].isin(["B6", "UA"])].sort_values("flight_id").reset_index(drop=True)
    assert real.equals(flights.toPandas().sort_values("flight_id").reset_index(drop=True)[real.columns])
    # each copy: its own carriers, routes and planes, and keys made as the gate makes them
    assert scaled.groupby(["origin", "dest"]).ngroups == 9 and scaled["carrier"].nunique() == 6
    assert scaled["tailnum"].dropna().nunique() == 6
    for r in scaled.itertuples():
        assert r.flight_id == f"{r.carrier}{r.flight}-{r.origin}-20130102-{r.sched_dep_time:04d}"
    # its flights leave from airports with weather, a little changed
    assert len(skies) == 6 and skies.groupby("origin").ngroups == 6
    assert set(scaled["origin"]) <= set(skies["origin"])
    copies = skies[~skies["origin"].isin(["JFK", "EWR"])]
    assert ((copies["temp"] - 29.0).abs() <= 2.0).all() and copies["temp"].nunique() == 4
    # outcomes a little changed, never the same rows again
    real_air = scaled.merge(real[["flight", "air_time"]], on="flight", suffixes=("", "_real"))
    assert (
        (real_air["air_time"] - real_air["air_time_real"]).abs() <= 0.03 * real_air["air_time_real"] + 0.5
    ).all()
    assert (real_air["air_time"] != real_air["air_time_real"]).sum() >= 3
    assert not scaled.drop(columns=["carrier", "origin", "dest", "tailnum", "flight_id"]).duplicated().all()
    assert scaled["dep_delay"].isna().sum() == 3  # a missing value stays missing


def test_each_copy_has_its_planes():
    planes = pd.DataFrame({"tailnum": ["N547JB", "N14228"], "seats": ["200", "149"]})
    scaled = scale_data.scaled_planes(planes, 3)
    assert list(scaled["tailnum"]) == ["N547JB", "N14228", "N547JBx1", "N14228x1", "N547JBx2", "N14228x2"]
    assert list(scaled["seats"]) == ["200", "149"] * 3
