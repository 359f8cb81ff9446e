"""Flights features on small frames: strict reading, the flight key, the point-in-time weather join."""

from __future__ import annotations

import datetime as dt

import pytest

from spark_jobs.flights import project
from spark_jobs.flights.features import (
    build_features,
    read_raw,
    validated_flights,
    validated_weather,
)
from spark_jobs.flights.project import FEATURE_TABLE_COLUMNS, NUMERIC
from spark_jobs.flights.schemas import (
    CORRUPT_RECORD,
    FLIGHTS_COLUMNS,
    WEATHER_COLUMNS,
    flights_schema,
    weather_schema,
)

pytestmark = pytest.mark.spark

DS = "2013-01-02"  # a Wednesday
UTC = dt.UTC


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def flight_row(**values) -> dict:
    row = {
        "year": 2013,
        "month": 1,
        "day": 2,
        "dep_time": 600,
        "sched_dep_time": 559,
        "dep_delay": 1.0,
        "arr_time": 900,
        "sched_arr_time": 850,
        "arr_delay": 10.0,
        "carrier": "AA",
        "flight": 100,
        "tailnum": "N1",
        "origin": "JFK",
        "dest": "MIA",
        "air_time": 150.0,
        "distance": 1089,
        "hour": 5,
        "minute": 59,
        "time_hour": utc(2013, 1, 2, 10),
    }
    row.update(values)
    return row


def weather_row(**values) -> dict:
    row = {
        "origin": "JFK",
        "year": 2013,
        "month": 1,
        "day": 2,
        "hour": 5,
        "temp": 30.0,
        "dewp": 20.0,
        "humid": 60.0,
        "wind_dir": 270.0,
        "wind_speed": 10.0,
        "wind_gust": None,
        "precip": 0.0,
        "pressure": 1015.0,
        "visib": 10.0,
        "time_hour": utc(2013, 1, 2, 10),
    }
    row.update(values)
    return row


def frame(spark, schema, columns, rows):
    names = [name for name, _ in columns]
    return spark.createDataFrame([tuple(r[n] for n in names) + (None,) for r in rows], schema)


def flights_df(spark, *rows):
    return validated_flights(frame(spark, flights_schema(), FLIGHTS_COLUMNS, rows), DS)


def weather_df(spark, *rows):
    return validated_weather(frame(spark, weather_schema(), WEATHER_COLUMNS, rows), DS)


def by_key(df) -> dict:
    return {row["flight_id"]: row for row in df.collect()}


def test_read_raw_types_nulls_and_keeps_malformed_lines(spark, tmp_path):
    header = ",".join(name for name, _ in FLIGHTS_COLUMNS)
    good = "2013,1,2,42,2359,43,518,442,36,B6,707,N580JB,JFK,SJU,189,1598,23,59,2013-01-03T04:00:00Z"
    cancelled = "2013,1,2,NA,600,NA,NA,901,NA,UA,1,NA,EWR,ORD,NA,719,6,0,2013-01-02T11:00:00Z"
    malformed = "2013,1,2,soon,600,NA,NA,901,NA,UA,2,N2,EWR,ORD,NA,719,6,0,2013-01-02T11:00:00Z"
    path = tmp_path / "flights.csv"
    path.write_text("\n".join([header, good, cancelled, malformed]) + "\n")

    rows = read_raw(spark, str(path), flights_schema()).cache().collect()

    assert len(rows) == 3
    first, second, third = rows
    assert first["dep_time"] == 42 and first["air_time"] == 189.0 and first[CORRUPT_RECORD] is None
    # 04:00 UTC on the 3rd is 23:00 in New York on the 2nd: the instant is kept, not the wall clock
    assert first["time_hour"] == dt.datetime(2013, 1, 3, 4, 0)
    assert second["dep_time"] is None and second["tailnum"] is None and second[CORRUPT_RECORD] is None
    assert third["dep_time"] is None and third[CORRUPT_RECORD] == malformed


def test_read_raw_refuses_a_header_that_does_not_match_the_schema(spark, tmp_path):
    path = tmp_path / "weather.csv"
    header = ",".join(name for name, _ in WEATHER_COLUMNS).replace("temp", "temperature")
    path.write_text(header + "\nJFK,2013,1,2,5,30,20,60,270,10,NA,0,1015,10,2013-01-02T10:00:00Z\n")
    with pytest.raises(Exception, match="(?i)header"):
        read_raw(spark, str(path), weather_schema()).collect()


def test_read_raw_takes_a_byte_order_mark_before_the_header_as_the_same_header(spark, tmp_path):
    path = tmp_path / "weather.csv"
    header = ",".join(name for name, _ in WEATHER_COLUMNS)
    line = "JFK,2013,1,2,5,30,20,60,270,10,NA,0,1015,10,2013-01-02T10:00:00Z"
    path.write_bytes(b"\xef\xbb\xbf" + f"{header}\n{line}\n".encode())
    rows = read_raw(spark, str(path), weather_schema()).cache().collect()
    assert [(r["origin"], r["temp"], r[CORRUPT_RECORD]) for r in rows] == [("JFK", 30.0, None)]


def test_flight_key_is_stable_readable_and_null_when_incomplete(spark):
    df = flights_df(
        spark,
        flight_row(carrier="B6", flight=707, origin="JFK", sched_dep_time=2359),
        flight_row(carrier="UA", flight=1, origin="EWR", sched_dep_time=5),
        flight_row(carrier=None, flight=2),
    )
    rows = df.select("flight_id", "ds").collect()
    assert [r["flight_id"] for r in rows] == ["B6707-JFK-20130102-2359", "UA1-EWR-20130102-0005", None]
    assert {r["ds"] for r in rows} == {dt.date(2013, 1, 2)}
    assert CORRUPT_RECORD not in df.columns


def test_features_take_the_origin_weather_of_the_scheduled_hour(spark):
    flights = flights_df(
        spark,
        flight_row(flight=1, origin="JFK", sched_dep_time=559, hour=5, time_hour=utc(2013, 1, 2, 10)),
        flight_row(flight=2, origin="EWR", sched_dep_time=559, hour=5, time_hour=utc(2013, 1, 2, 10)),
        flight_row(flight=3, origin="JFK", sched_dep_time=600, hour=6, time_hour=utc(2013, 1, 2, 11)),
        flight_row(flight=4, origin="LGA", sched_dep_time=700, hour=7, time_hour=utc(2013, 1, 2, 12)),
    )
    weather = weather_df(
        spark,
        weather_row(origin="JFK", hour=5, temp=30.0, time_hour=utc(2013, 1, 2, 10)),
        weather_row(origin="JFK", hour=6, temp=31.0, time_hour=utc(2013, 1, 2, 11)),
        weather_row(origin="EWR", hour=5, temp=25.0, time_hour=utc(2013, 1, 2, 10)),
        weather_row(origin="EWR", hour=6, temp=26.0, time_hour=utc(2013, 1, 2, 11)),
    )

    features = build_features(flights, weather, DS)

    assert tuple(features.columns) == FEATURE_TABLE_COLUMNS
    rows = by_key(features)
    assert len(rows) == 4
    assert rows["AA1-JFK-20130102-0559"]["temp"] == 30.0
    assert rows["AA2-EWR-20130102-0559"]["temp"] == 25.0
    assert rows["AA3-JFK-20130102-0600"]["temp"] == 31.0
    # no observation for LGA: the flight stays, with unknown weather
    assert rows["AA4-LGA-20130102-0700"]["temp"] is None


def test_autumn_clock_change_pairs_each_flight_with_its_own_0100(spark):
    ds = "2013-11-03"
    day = {"month": 11, "day": 3, "hour": 1}
    flights = validated_flights(
        frame(
            spark,
            flights_schema(),
            FLIGHTS_COLUMNS,
            [
                flight_row(flight=1, sched_dep_time=130, **day, time_hour=utc(2013, 11, 3, 5)),
                flight_row(flight=2, sched_dep_time=155, **day, time_hour=utc(2013, 11, 3, 6)),
            ],
        ),
        ds,
    )
    weather = validated_weather(
        frame(
            spark,
            weather_schema(),
            WEATHER_COLUMNS,
            [
                weather_row(**day, temp=51.0, time_hour=utc(2013, 11, 3, 5)),
                weather_row(**day, temp=50.0, time_hour=utc(2013, 11, 3, 6)),
            ],
        ),
        ds,
    )
    rows = by_key(build_features(flights, weather, ds))
    assert rows["AA1-JFK-20131103-0130"]["temp"] == 51.0
    assert rows["AA2-JFK-20131103-0155"]["temp"] == 50.0


def test_repeated_weather_readings_never_multiply_flights(spark):
    flights = flights_df(spark, flight_row(flight=1), flight_row(flight=2))
    weather = weather_df(spark, weather_row(temp=30.0), weather_row(temp=32.0), weather_row(origin="EWR"))
    features = build_features(flights, weather, DS)
    assert features.count() == 2
    assert features.select("flight_id").distinct().count() == 2
    assert {r["temp"] for r in features.collect()} == {31.0}


def test_label_calendar_and_types(spark):
    flights = flights_df(
        spark,
        flight_row(flight=1, air_time=150.0, distance=4983, sched_dep_time=2359, hour=23),
        flight_row(flight=2, dep_time=None, dep_delay=None, arr_time=None, arr_delay=None, air_time=None),
        flight_row(flight=3, air_time=140.0, arr_time=None, arr_delay=None, dep_time=None),  # no departure
    )
    weather = weather_df(spark, weather_row(wind_speed=1048.36058), weather_row(origin="EWR"))
    features = build_features(flights, weather, DS)

    types = dict(features.dtypes)
    assert all(types[name] == "double" for name in NUMERIC)
    assert types["air_time"] == "double" and types["ds"] == "date" and types["flight_id"] == "string"
    rows = by_key(features)
    first = rows["AA1-JFK-20130102-2359"]
    assert first["air_time"] == 150.0
    assert first["distance"] == 4983.0
    assert first["sched_dep_hour"] == 23.0
    assert (first["month"], first["day_of_week"]) == (1.0, 4.0)  # Wednesday, Sunday = 1
    assert first["wind_speed"] is None  # the 1048 mph glitch is not a wind
    assert rows["AA2-JFK-20130102-0559"]["air_time"] is None
    assert rows["AA3-JFK-20130102-0559"]["air_time"] is None


def test_only_the_requested_day_is_built(spark):
    flights = flights_df(spark, flight_row(flight=1)).unionByName(
        validated_flights(
            frame(spark, flights_schema(), FLIGHTS_COLUMNS, [flight_row(flight=9, day=3)]), "2013-01-03"
        )
    )
    weather = weather_df(spark, weather_row())
    assert [r["flight_id"] for r in build_features(flights, weather, DS).collect()] == [
        "AA1-JFK-20130102-0559"
    ]


def test_spark_runs_in_ansi_mode(spark):
    # the features are only safe casts because ANSI turns a bad cast into an error, not a null
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"


def flights_on(spark, ds: str, *rows):
    day = dt.date.fromisoformat(ds)
    return validated_flights(
        frame(
            spark,
            flights_schema(),
            FLIGHTS_COLUMNS,
            [{**r, "year": day.year, "month": day.month, "day": day.day} for r in rows],
        ),
        ds,
    )


def planes_df(spark, *rows):
    from spark_jobs.flights.schemas import PLANES_COLUMNS, planes_schema

    base = {c: None for c, _ in PLANES_COLUMNS}
    return frame(spark, planes_schema(), PLANES_COLUMNS, [{**base, **r} for r in rows]).drop(CORRUPT_RECORD)


def test_history_counts_only_the_days_before(spark):
    history = (
        flights_on(spark, "2013-01-01", flight_row(flight=11, air_time=100.0))
        .unionByName(flights_on(spark, "2013-01-01", flight_row(flight=12, air_time=120.0, carrier="B6")))
        .unionByName(flights_on(spark, "2012-11-30", flight_row(flight=13, air_time=500.0)))  # too old
        .unionByName(flights_on(spark, "2013-01-01", flight_row(flight=14, air_time=None)))  # did not fly
    )
    flights = flights_df(spark, flight_row(flight=1, air_time=999.0)).unionByName(history)
    row = by_key(build_features(flights, weather_df(spark, weather_row()), DS))["AA1-JFK-20130102-0559"]
    assert (row["route_air_time_mean"], row["route_flights"]) == (110.0, 2.0)
    assert row["carrier_route_air_time_mean"] == 100.0  # AA on JFK-MIA only


# What is known of a flight when it is scheduled. Every other column of the upstream row is an
# outcome (what happened on the day), derived from the schema so that a new column counts as an
# outcome, and is changed by the leakage test below, until it is named here.
SCHEDULED = {
    "year",
    "month",
    "day",
    "sched_dep_time",
    "sched_arr_time",
    "carrier",
    "flight",
    "tailnum",
    "origin",
    "dest",
    "distance",
    "hour",
    "minute",
    "time_hour",
}
OUTCOMES = {name: kind for name, kind in FLIGHTS_COLUMNS if name not in SCHEDULED}
# A weather row is identified by its airport and hour; the rest are readings.
WEATHER_KEYS = {"origin", "year", "month", "day", "hour", "time_hour"}
READINGS = {name: kind for name, kind in WEATHER_COLUMNS if name not in WEATHER_KEYS}


def test_outcome_and_reading_columns_follow_the_schema():
    names = {name for name, _ in FLIGHTS_COLUMNS}
    assert SCHEDULED <= names and WEATHER_KEYS <= {name for name, _ in WEATHER_COLUMNS}
    assert list(OUTCOMES) == ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]
    assert list(READINGS) == [
        "temp",
        "dewp",
        "humid",
        "wind_dir",
        "wind_speed",
        "wind_gust",
        "precip",
        "pressure",
        "visib",
    ]


def other(value, kind: str, step: int):
    """Another value of the same type: what a column could have held instead."""
    if kind == "int":
        return (value or 0) + 7 * step
    if kind == "double":
        return (value or 0.0) + 11.5 * step
    if kind == "string":
        return f"{value or ''}~{step}"
    if kind == "timestamp":
        return value + dt.timedelta(hours=step)
    raise AssertionError(f"no other value for a {kind} column")


def changed(row: dict, columns: dict, step: int | None) -> dict:
    """``row`` with every one of ``columns`` changed; ``step=None`` empties them instead."""
    return {**row, **{c: None if step is None else other(row[c], kind, step) for c, kind in columns.items()}}


def weather_on(spark, ds: str, *rows):
    day = dt.date.fromisoformat(ds)
    return validated_weather(
        frame(
            spark,
            weather_schema(),
            WEATHER_COLUMNS,
            [{**r, "year": day.year, "month": day.month, "day": day.day} for r in rows],
        ),
        ds,
    )


def test_no_feature_of_a_day_uses_that_day_or_later(spark):
    """Everything not known when D's flights are scheduled changes nothing in D's features but the
    label: how D's flights went (every outcome column, whether they left at all), the weather
    after their scheduled hour on D and all weather on later days, and later days' flights."""
    hour = utc(2013, 1, 2, 10)  # every flight of D is scheduled at 05:00 in New York
    on_day = [
        flight_row(flight=1, air_time=150.0),
        flight_row(flight=2, air_time=160.0, dep_delay=-3.0, arr_delay=-12.0),
        flight_row(flight=3, origin="EWR", dest="ORD", distance=719, air_time=110.0),
    ]
    past = flights_on(spark, "2013-01-01", flight_row(flight=11, air_time=100.0)).unionByName(
        flights_on(spark, "2013-01-01", flight_row(flight=12, origin="EWR", dest="ORD", air_time=120.0))
    )
    later = [flight_row(flight=1, air_time=155.0), flight_row(flight=5, origin="EWR", dest="ORD")]

    def readings(origin: str, base: float) -> list[dict]:
        return [
            weather_row(origin=origin, hour=h - 5, temp=base + h, time_hour=hour + dt.timedelta(hours=h - 10))
            for h in (9, 10, 11, 12, 23)
        ]

    weather_of_day = readings("JFK", 20.0) + readings("EWR", 40.0)
    weather_later = [weather_row(origin=o, hour=5, time_hour=utc(2013, 1, 3, 10)) for o in ("JFK", "EWR")]

    def world(flights_of_day, later_flights, day_weather, later_weather):
        flights = (
            flights_df(spark, *flights_of_day)
            .unionByName(past)
            .unionByName(flights_on(spark, "2013-01-03", *later_flights))
        )
        weather = weather_df(spark, *day_weather).unionByName(weather_on(spark, "2013-01-03", *later_weather))
        return by_key(build_features(flights, weather, DS))

    as_flown = world(on_day, later, weather_of_day, weather_later)
    other_day = [
        changed(on_day[0], OUTCOMES, None),  # did not leave after all
        changed(on_day[1], OUTCOMES, 1),
        changed(on_day[2], OUTCOMES, 2),
    ]
    other_weather = [r if r["time_hour"] <= hour else changed(r, READINGS, 3) for r in weather_of_day] + [
        weather_row(origin="JFK", hour=6, temp=-30.0, time_hour=hour + dt.timedelta(hours=1))
    ]
    other_later = [
        changed(later[0], OUTCOMES, 4),
        flight_row(flight=6, air_time=900.0),
        flight_row(flight=7, origin="EWR", dest="ORD", air_time=5.0),
    ]
    # every one of them is a change that reaches build_features
    assert all(
        changed_row[c] != row[c] for row, changed_row in zip(on_day, other_day, strict=True) for c in OUTCOMES
    )
    assert sum(r["time_hour"] > hour for r in other_weather) == 7
    as_changed = world(
        other_day, other_later, other_weather, [changed(r, READINGS, 5) for r in weather_later]
    )

    assert (
        sorted(as_flown)
        == sorted(as_changed)
        == sorted(["AA1-JFK-20130102-0559", "AA2-JFK-20130102-0559", "AA3-EWR-20130102-0559"])
    )
    for key in as_flown:
        a, b = as_flown[key].asDict(), as_changed[key].asDict()
        for outcome in project.OUTCOMES:  # the day's outcomes (the labels are made of them) move
            assert a.pop(outcome) != b.pop(outcome), (key, outcome)
        assert a == b, key
    # the features compared are known, not missing on both sides
    jfk = as_flown["AA1-JFK-20130102-0559"]
    ewr = as_flown["AA3-EWR-20130102-0559"]
    assert (jfk["temp"], jfk["route_air_time_mean"], jfk["carrier_route_air_time_mean"]) == (
        30.0,
        100.0,
        100.0,
    )
    assert (ewr["temp"], ewr["route_air_time_mean"], ewr["route_flights"]) == (50.0, 120.0, 1.0)
    assert None not in (jfk["wind_speed"], jfk["precip"], jfk["visib"])


def test_plane_facts_and_holidays(spark):
    from spark_jobs.flights.features import days_to_holiday, us_holidays

    planes = planes_df(
        spark,
        {"tailnum": "N1", "year": 2004, "seats": 55, "engine": "Turbo-fan"},
        {"tailnum": "N2", "year": None},
    )
    flights = flights_df(
        spark, flight_row(flight=1), flight_row(flight=2, tailnum="N2"), flight_row(flight=3, tailnum="N9")
    )
    rows = by_key(build_features(flights, weather_df(spark, weather_row()), DS, planes=planes))
    first = rows["AA1-JFK-20130102-0559"]
    assert (first["plane_age"], first["seats"], first["engine"]) == (9.0, 55.0, "Turbo-fan")
    assert rows["AA2-JFK-20130102-0559"]["plane_age"] is None  # year unknown
    assert rows["AA3-JFK-20130102-0559"]["engine"] is None  # not in the planes table
    assert first["days_to_holiday"] == 1.0  # New Year the day before

    assert [d.isoformat() for d in us_holidays(2013)] == [
        "2013-01-01",
        "2013-01-21",
        "2013-02-18",
        "2013-05-27",
        "2013-07-04",
        "2013-09-02",
        "2013-10-14",
        "2013-11-11",
        "2013-11-28",
        "2013-12-25",
    ]
    assert (days_to_holiday("2013-11-28"), days_to_holiday("2013-07-01"), days_to_holiday("2013-12-30")) == (
        0,
        3,
        2,
    )


def test_many_days_in_one_pass_are_each_day_built_alone(spark):
    """``spark_jobs.flights.days.build_days`` against each day's own ``build_features`` (the day and
    its 28 days of history, as the day's job reads them): routes flown on some days only, flights
    that did not fly, a route whose distance changes, an airport without weather one day, a plane
    without facts."""
    from pyspark.sql import functions as F

    from spark_jobs.flights.days import build_days, range_views
    from spark_jobs.flights.features import feature_views

    first = dt.date(2013, 1, 1)
    flight_rows, weather_rows = [], []
    for k in range(36):
        day = first + dt.timedelta(days=k)
        when = {
            "year": 2013,
            "month": day.month,
            "day": day.day,
            "time_hour": utc(day.year, day.month, day.day, 10),
        }
        flight_rows += [
            flight_row(**when, carrier="AA", flight=1, tailnum="N1", air_time=150.0 + k % 5, distance=1089 + (k >= 31)),
            flight_row(**when, carrier="B6", flight=2, tailnum="N2", air_time=160.0 - k % 3, distance=1089 + (k >= 31)),
            flight_row(**when, carrier="AA", flight=3, tailnum="N3", dest="LAX", distance=2475,
                       air_time=None if k % 7 == 3 else 330.0 + k % 4,
                       dep_time=None if k % 7 == 3 else 600),
        ]  # fmt: skip
        if k % 5:  # a route not flown every day
            flight_rows.append(
                flight_row(**when, carrier="UA", flight=4, tailnum="N9", origin="EWR", air_time=155.0 + k % 2)
            )
        weather_rows.append(weather_row(**when, temp=20.0 + k))
        if k != 33:  # no weather at EWR that day
            weather_rows.append(weather_row(**when, origin="EWR", temp=21.0 + k))
    # every day's validated rows in one frame each: the day's date and key as the gate gives them
    day = F.make_date("year", "month", "day")
    flights = (
        frame(spark, flights_schema(), FLIGHTS_COLUMNS, flight_rows)
        .drop(CORRUPT_RECORD)
        .withColumn("ds", day)
        .withColumn(
            project.KEY,
            F.format_string(
                "%s%d-%s-%s-%04d",
                "carrier",
                "flight",
                "origin",
                F.date_format(day, "yyyyMMdd"),
                "sched_dep_time",
            ),
        )
        .cache()
    )
    weather = (
        frame(spark, weather_schema(), WEATHER_COLUMNS, weather_rows)
        .drop(CORRUPT_RECORD)
        .withColumn("ds", day)
        .cache()
    )
    planes = spark.createDataFrame(
        [("N1", 2004, "Turbo-fan", 200), ("N2", 1999, "Turbo-jet", 150), ("N3", None, "Turbo-fan", 180)],
        "tailnum string, year int, engine string, seats int",
    )
    days = [(first + dt.timedelta(days=k)).isoformat() for k in (0, 30, 31, 32, 33)]
    alone, views_alone = {}, {}
    for ds in days:  # each day as its job reads it: the day and the 28 days before it
        day = dt.date.fromisoformat(ds)
        read = flights.where(
            (flights.ds >= day - dt.timedelta(days=project.HISTORY_DAYS)) & (flights.ds <= day)
        )
        alone.update(by_key(build_features(read, weather.where(weather.ds == day), ds, planes)))
        views = feature_views(read, weather.where(weather.ds == day), ds, planes)
        views_alone[ds] = {name: sorted(map(tuple, view.collect())) for name, view in views.items()}
    together = {}
    for run in (days[:1], days[1:]):  # consecutive days, in one pass each
        together.update(by_key(build_days(flights, weather, run, planes)))
        # and each day's views, as the day's own job builds them (what the service looks up)
        for name, view in range_views(flights, weather, run, planes).items():
            rows = view.collect()  # one query per view; split by day here
            for ds in run:
                if name == "plane":  # the same all year
                    of_day = [tuple(r) for r in rows]
                elif name == "calendar":
                    of_day = [tuple(r) for r in rows if r["ds"].isoformat() == ds]
                else:
                    of_day = [
                        tuple(v for k, v in r.asDict().items() if k != "ds")
                        for r in rows
                        if r["ds"].isoformat() == ds
                    ]
                assert sorted(of_day) == views_alone[ds][name], (ds, name)
    assert set(together) == set(alone) and len(alone) == 5 * 4 - 2  # UA4 not flown on k = 0 and 30
    for key, row in alone.items():
        assert together[key].asDict() == row.asDict(), key
    assert together["AA3-JFK-20130201-0559"]["air_time"] is None  # k = 31: did not fly
    assert together["UA4-EWR-20130203-0559"]["temp"] is None  # k = 33: no weather at EWR
