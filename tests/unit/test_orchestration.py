"""Small functions the DAGs lean on: which days a run is about (whether a window can train:
``test_training_inputs.py``)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from mlcycle.config import days_between, next_day
from mlcycle.orchestration.operators import days_of_args, partitions_from_events, spark_conf
from mlcycle.quality.landing import interval_days
from mlcycle.scoring import chunks, days_in, days_to_score, recorded_version, scoring_plan


def _features(root, *days, gate_ok=True):
    for d in days:
        (root / "features" / f"ds={d}").mkdir(parents=True)
        gate = root / "gates" / "features" / f"ds={d}.json"
        gate.parent.mkdir(parents=True, exist_ok=True)
        gate.write_text(json.dumps({"success": gate_ok}))


def _event(**extra):
    return SimpleNamespace(extra=extra)


def test_days_between_is_inclusive_and_refuses_a_reversed_window():
    assert days_between("2013-02-27", "2013-03-02") == [
        "2013-02-27",
        "2013-02-28",
        "2013-03-01",
        "2013-03-02",
    ]
    assert next_day("2013-12-31") == "2014-01-01"
    with pytest.raises(ValueError, match="before it starts"):
        days_between("2013-03-02", "2013-03-01")


def test_the_days_of_a_month_run_and_of_a_job():
    from datetime import UTC, datetime

    march = interval_days(
        datetime(2013, 3, 1, tzinfo=UTC), datetime(2013, 4, 1, tzinfo=UTC), "2013-01-01", "2013-12-31"
    )
    assert (march[0], march[-1], len(march)) == ("2013-03-01", "2013-03-31", 31)
    # clipped to the use case's days; an interval beyond them has none
    assert interval_days("2012-12-01", "2013-01-03", "2013-01-01", "2013-12-31") == [
        "2013-01-01",
        "2013-01-02",
    ]
    assert interval_days("2014-01-01", "2014-02-01", "2013-01-01", "2013-12-31") == []
    # a job's days: each --ds, or every day of --start..--end
    assert days_of_args(["--start", "2013-01-30", "--end", "2013-02-01", "--data-root", "/d"]) == [
        "2013-01-30",
        "2013-01-31",
        "2013-02-01",
    ]
    assert days_of_args(["--ds", "2013-01-05", "--ds", "2013-01-03", "--model", "m"]) == [
        "2013-01-03",
        "2013-01-05",
    ]
    assert days_in(["--ds", "2013-01-05", "--ds", "2013-01-03", "--model", "m"]) == [
        "2013-01-05",
        "2013-01-03",
    ]
    # a scoring or monitoring job takes a month of days at most
    year = [f"2013-01-{d:02d}" for d in range(1, 32)] + ["2013-02-01"]
    assert [len(c) for c in chunks(year)] == [31, 1] and chunks(["2013-01-01"]) == [["2013-01-01"]]


def test_a_job_refuses_days_given_two_ways_or_backwards():
    import argparse

    from spark_jobs.common import add_days_arguments, days_of

    parser = argparse.ArgumentParser()
    add_days_arguments(parser)
    assert days_of(parser.parse_args(["--start", "2013-02-27", "--end", "2013-03-01"])) == [
        "2013-02-27",
        "2013-02-28",
        "2013-03-01",
    ]
    assert days_of(parser.parse_args(["--ds", "2013-01-02", "--ds", "2013-01-02"])) == ["2013-01-02"]
    for wrong in (
        [],
        ["--start", "2013-01-02"],
        ["--ds", "2013-01-02", "--start", "2013-01-01", "--end", "2013-01-03"],
    ):
        with pytest.raises(SystemExit, match="give --ds DAY, or --start DAY --end DAY"):
            days_of(parser.parse_args(wrong))
    with pytest.raises(SystemExit, match="is before --start"):
        days_of(parser.parse_args(["--start", "2013-01-03", "--end", "2013-01-02"]))


def test_partitions_from_events_collects_single_days_and_lists():
    events = [_event(ds="2013-01-02"), _event(ds=["2013-01-01", "2013-01-02"]), _event()]
    assert partitions_from_events(events) == ["2013-01-01", "2013-01-02"]


def test_days_to_score_takes_features_and_champion_events_with_features_present(tmp_path):
    _features(tmp_path, "2013-01-02", "2013-01-05")
    events = {
        "features": [_event(ds="2013-01-02"), _event(ds="2013-01-03")],
        "champion": [_event(score_from="2013-01-05")],
    }
    assert days_to_score(str(tmp_path), [], events) == ["2013-01-02", "2013-01-05"]
    assert days_to_score(str(tmp_path), ["2013-01-05"], {}) == ["2013-01-05"]


def test_days_to_score_skips_with_the_reason_when_nothing_is_ready(tmp_path):
    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException, match="2013-01-09"):
        days_to_score(str(tmp_path), ["2013-01-09"], {})


def test_spark_conf_is_overridden_from_the_environment(monkeypatch):
    monkeypatch.setenv("MLCYCLE_SPARK_CONF", "spark.sql.shuffle.partitions=64, spark.executor.memory=4g")
    conf = spark_conf()
    assert conf["spark.sql.shuffle.partitions"] == "64"
    assert conf["spark.executor.memory"] == "4g"


def _scored(root, ds, **verdict):
    path = root / "gates" / "predictions" / f"ds={ds}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(verdict))


def test_a_day_scored_before_keeps_its_version_unless_rescored(tmp_path):
    _scored(tmp_path, "2013-01-02", success=True, model_name="m", model_version="3")
    _scored(tmp_path, "2013-01-03", success=True, model_uri="models:/m/2")  # recorded by an older run
    _scored(tmp_path, "2013-01-04", success=False, model_version="3")  # rejected: nothing was written
    days = ["2013-01-02", "2013-01-03", "2013-01-04", "2013-01-05"]
    champion = {"version": 5, "uri": "models:/m/5"}
    plan = scoring_plan(str(tmp_path), days, "m", champion, rescore=False)
    assert [(p["ds"], p["version"], p["uri"]) for p in plan] == [
        ("2013-01-02", 3, "models:/m/3"),
        ("2013-01-03", 2, "models:/m/2"),
        ("2013-01-04", 5, "models:/m/5"),
        ("2013-01-05", 5, "models:/m/5"),
    ]
    assert [p["reason"] for p in plan] == ["recorded for the day"] * 2 + ["champion"] * 2
    rescored = scoring_plan(str(tmp_path), days, "m", champion, rescore=True)
    assert {p["version"] for p in rescored} == {5}
    assert recorded_version(str(tmp_path), "2013-01-09") is None


def test_a_connect_server_answers_only_where_something_listens():
    import socket

    from mlcycle.orchestration.operators import connect_answers

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert connect_answers(f"sc://127.0.0.1:{port}/;user_id=airflow")
    assert not connect_answers(f"sc://127.0.0.1:{port}/", timeout=1)


def test_the_connect_server_runs_every_job_but_those_its_extra_submits(monkeypatch):
    import json

    from mlcycle.orchestration.operators import connect_url

    def connection(**extra) -> None:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SPARK_CONNECT",
            json.dumps({"conn_type": "spark_connect", "host": "127.0.0.1", "port": 15002, "extra": extra}),
        )

    connection()
    assert connect_url("train") == connect_url("score") == "sc://127.0.0.1:15002/"
    connection(submit=["train"])
    assert connect_url("train") is None  # a driver of its own, through spark_default
    assert connect_url("score") == "sc://127.0.0.1:15002/"
    connection(submit="train")  # one task id, written as a string
    assert connect_url("train") is None
