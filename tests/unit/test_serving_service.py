"""The scoring service over HTTP, on a data root holding one day's feature views: the token, the
answers and what they name, the request log, the rules a bad request breaks (a 4xx naming the
field, never a 500), and how it follows the registry: a new champion takes over, one that fails
to load leaves the current one serving, a registry that does not answer changes nothing, a
challenger is scored in the shadow. The registry and the versions are stand-ins here (the
registry's aliases as a dict, a version as a function of the features); the real MLflow server and
real models are the end-to-end tier's."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlcycle.serving.service import RequestLog, Scorer, make_server
from mlcycle.specs import find_model

DS = "2013-01-02"
TOKEN = "s3cret-for-tests"
REQUEST = {
    "carrier": "B6",
    "flight": 707,
    "tailnum": "N547JB",
    "origin": "JFK",
    "dest": "LAX",
    "sched_dep": f"{DS}T14:30",
}


def _views(root: Path) -> None:
    utc = pd.Timestamp(f"{DS} 19:00", tz="UTC")  # 14:00 in New York, in January
    views = {
        "carriers": pd.DataFrame({"carrier": ["B6", "AA"]}),
        "origins": pd.DataFrame({"origin": ["JFK", "EWR"]}),
        "dests": pd.DataFrame({"dest": ["LAX", "BOS"]}),
        "weather": pd.DataFrame(
            {
                "origin": ["JFK"],
                "time_hour": [utc],
                "temp": [30.0],
                "wind_speed": [9.2],
                "precip": [0.0],
                "visib": [10.0],
            }
        ),
        "route": pd.DataFrame(
            {
                "origin": ["JFK", "EWR"],
                "dest": ["LAX", "BOS"],
                "distance": [2475.0, 200.0],
                "route_air_time_mean": [330.0, 40.0],
                "route_flights": [300.0, None],
            }
        ),
        "carrier_route": pd.DataFrame(
            {"carrier": ["B6"], "origin": ["JFK"], "dest": ["LAX"], "carrier_route_air_time_mean": [335.0]}
        ),
        "plane": pd.DataFrame(
            {"tailnum": ["N547JB"], "plane_age": [9], "engine": ["Turbo-fan"], "seats": [200]}
        ),
        "calendar": pd.DataFrame({"month": [1], "day_of_week": [4], "days_to_holiday": [1]}),
    }
    for name, frame in views.items():
        folder = root / "feature_views" / f"ds={DS}" / f"view={name}"
        folder.mkdir(parents=True)
        frame.to_parquet(folder / "part-0.parquet", index=False)
    (root / "features" / f"ds={DS}").mkdir(parents=True)


class Version:
    """A stand-in version: answers ``version * 10000 + distance``, so an answer shows both."""

    def __init__(self, version: int):
        self.version = version

    def predict(self, columns):
        return np.asarray([self.version * 10000 + d for d in columns["distance"]])


@pytest.fixture
def service(tmp_path):
    _views(tmp_path)
    registry = {"champion": 1, "challenger": None, "down": False}
    broken = {3}

    def aliases(models):
        if registry["down"]:
            raise ConnectionError("Connection refused")
        return {m.name: (registry["champion"], registry["challenger"]) for m in models}

    def load(model, version):
        if version in broken:
            raise ValueError("stage 3 is a LinearRegressionModel, which this engine does not evaluate")
        return Version(version)

    scorer = Scorer([find_model("air_time")], tmp_path, load=load, aliases=aliases, max_batch=5)
    scorer.follow_once()
    server = make_server(scorer, "127.0.0.1", 0, TOKEN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    yield url, scorer, registry, tmp_path
    server.shutdown()
    scorer.log.close()


def call(url: str, path: str, body=None, token: str | None = TOKEN, raw: bytes | None = None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url + path, data=data, method="POST" if data is not None else "GET")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
            return response.status, (json.loads(text) if path != "/metrics" else text)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read().decode())


PREDICT = "/v1/models/air_time/predict"


def test_an_answer_names_model_version_and_request_and_is_logged(service):
    url, scorer, registry, root = service
    code, answer = call(url, PREDICT, REQUEST)
    assert code == 200, answer
    assert (answer["model"], answer["registered_name"], answer["version"]) == (
        "air_time",
        "flights_air_time",
        1,
    )
    assert answer["prediction"] == 10000 + 2475.0 and len(answer["request_id"]) == 32

    code, batch = call(url, PREDICT, {"flights": [REQUEST, {**REQUEST, "origin": "EWR", "dest": "BOS"}]})
    assert code == 200 and batch["predictions"] == [12475.0, 10200.0] and batch["version"] == 1

    logged = [
        json.loads(line)
        for p in (root / "models" / "air_time" / "requests" / f"ds={DS}").glob("*.jsonl")
        for line in p.read_text().splitlines()
    ]
    # a line per request, column by column
    assert [r["request_id"] for r in logged] == [answer["request_id"], batch["request_id"]]
    first, second = logged
    assert first["flights"] == 1 and first["predictions"] == [answer["prediction"]] and first["version"] == 1
    assert first["fields"]["sched_dep_time"] == [1430] and first["features"]["sched_dep_hour"] == [14.0]
    assert first["features"]["temp"] == [30.0]  # the weather of the scheduled hour at the origin
    assert (first["shadow_version"], first["shadow_predictions"]) == (None, None)
    assert second["flights"] == 2 and second["predictions"] == batch["predictions"]
    assert second["fields"]["origin"] == ["JFK", "EWR"]
    assert second["features"]["route_flights"] == [300.0, 0.0]  # a route without history: the default


def test_a_request_over_two_days_is_logged_in_each_day_with_its_own_flights(tmp_path):
    log = RequestLog(tmp_path)
    days = ["2013-02-01", "2013-02-02", "2013-02-01"]
    fields = [{"flight_id": f"F{i}", "ds": ds} for i, ds in enumerate(days)]
    log.write(
        "air_time", "r1", fields, {"temp": [1.0, 2.0, 3.0]}, (4, [10.0, 20.0, 30.0]), (5, [11.0, 21.0, 31.0])
    )
    log.close()
    lines = {}
    for ds in sorted(set(days)):
        (written,) = (tmp_path / "models" / "air_time" / "requests" / f"ds={ds}").glob("*.jsonl")
        (lines[ds],) = [json.loads(line) for line in written.read_text().splitlines()]
    one, two = lines["2013-02-01"], lines["2013-02-02"]
    assert (one["flights"], one["fields"]["flight_id"], one["features"]["temp"]) == (
        2,
        ["F0", "F2"],
        [1.0, 3.0],
    )
    assert (one["predictions"], one["shadow_predictions"]) == ([10.0, 30.0], [11.0, 31.0])
    assert (two["flights"], two["fields"]["flight_id"], two["predictions"]) == (1, ["F1"], [20.0])
    assert one["request_id"] == two["request_id"] == "r1" and one["version"] == two["version"] == 4


def test_without_the_token_nothing_is_answered(service):
    url, *_ = service
    assert call(url, PREDICT, REQUEST, token=None)[0] == 401
    code, answer = call(url, PREDICT, REQUEST, token="not-it")
    assert code == 401 and answer["error"]["field"] == "Authorization"


@pytest.mark.parametrize(
    ("body", "raw", "code", "field"),
    [
        (None, b"{not json", 400, "body"),
        ({k: v for k, v in REQUEST.items() if k != "flight"}, None, 422, "flight"),
        ({**REQUEST, "flight": "707"}, None, 422, "flight"),
        ({**REQUEST, "origin": "XYZ"}, None, 422, "origin"),
        ({**REQUEST, "carrier": "ZZ"}, None, 422, "carrier"),
        ({**REQUEST, "dest": "BOS"}, None, 422, "dest"),  # no flight from JFK to BOS
        ({**REQUEST, "sched_dep": "2013-05-01T10:00"}, None, 422, "sched_dep"),  # outside the days
        ({**REQUEST, "seats": 3}, None, 422, "seats"),
        ({"flights": [REQUEST] * 6}, None, 413, "flights"),
        ({"flights": [REQUEST, {**REQUEST, "dest": "ORD"}]}, None, 422, "flights[1].dest"),
        # the first wrong request of a batch is named, whatever is wrong with the later ones
        (
            {"flights": [REQUEST, {**REQUEST, "dest": "BOS"}, {**REQUEST, "carrier": "ZZ"}]},
            None,
            422,
            "flights[1].dest",
        ),
        (
            {"flights": [REQUEST, {**REQUEST, "dest": "BOS"}, {**REQUEST, "flight": 0}]},
            None,
            422,
            "flights[1].dest",
        ),
        (
            {"flights": [REQUEST, {**REQUEST, "sched_dep": "2013-05-01T10:00"}]},
            None,
            422,
            "flights[1].sched_dep",
        ),
        (
            {
                "flights": [
                    REQUEST,
                    {**REQUEST, "sched_dep": "2013-05-01T10:00"},
                    {**REQUEST, "origin": "XYZ"},
                ]
            },
            None,
            422,
            "flights[1].sched_dep",
        ),
        (
            {
                "flights": [
                    REQUEST,
                    {**REQUEST, "origin": "XYZ"},
                    {**REQUEST, "sched_dep": "2013-05-01T10:00"},
                ]
            },
            None,
            422,
            "flights[1].origin",
        ),
        ({"flights": [REQUEST, 7]}, None, 400, "flights[1].request"),
    ],
)
def test_a_bad_request_gets_a_4xx_naming_the_field_and_the_rule(service, body, raw, code, field):
    url, *_ = service
    got, answer = call(url, PREDICT, body, raw=raw)
    assert (got, answer["error"]["field"]) == (code, field), answer
    assert answer["error"]["rule"]
    assert call(url, PREDICT, REQUEST)[0] == 200  # and the service goes on answering


def test_it_follows_the_registry_and_keeps_serving_through_its_faults(service):
    url, scorer, registry, root = service
    registry["champion"] = 2
    scorer.follow_once()
    assert call(url, PREDICT, REQUEST)[1]["version"] == 2

    registry["champion"] = 3  # a version that does not load
    scorer.follow_once()
    assert call(url, PREDICT, REQUEST)[1]["version"] == 2
    code, health = call(url, "/health")
    air_time = health["models"]["air_time"]
    assert (code, health["status"]) == (200, "degraded")  # still answering: a restart would not help
    assert (air_time["version"], air_time["champion"], air_time["current"]) == (2, 3, False)
    assert "version 3 (champion) failed to load" in air_time["problem"]

    registry["champion"], registry["down"] = 4, True  # the registry stops answering
    scorer.follow_once()
    assert call(url, PREDICT, REQUEST)[1]["version"] == 2
    assert "did not answer" in call(url, "/health")[1]["registry"]

    registry["down"] = False
    scorer.follow_once()
    assert call(url, PREDICT, REQUEST)[1]["version"] == 4
    code, health = call(url, "/health")
    assert (
        code == 200 and health["models"]["air_time"]["current"] is True and health["registry"] == "reachable"
    )


def test_a_challenger_is_scored_in_the_shadow_and_logged_never_returned(service):
    url, scorer, registry, root = service
    registry["challenger"] = 5
    scorer.follow_once()
    code, answer = call(url, PREDICT, REQUEST)
    assert answer["version"] == 1 and answer["prediction"] == 12475.0
    assert "shadow" not in json.dumps(answer)
    (line,) = [
        json.loads(line)
        for p in (root / "models" / "air_time" / "requests" / f"ds={DS}").glob("*.jsonl")
        for line in p.read_text().splitlines()
    ]
    assert (line["shadow_version"], line["shadow_predictions"]) == (5, [52475.0])
    assert call(url, "/health")[1]["models"]["air_time"]["shadow"] == 5


def test_metrics_are_in_prometheus_text(service):
    url, *_ = service
    call(url, PREDICT, REQUEST)
    call(url, PREDICT, REQUEST, token=None)
    code, text = call(url, "/metrics")
    assert code == 200
    assert 'mlcycle_serving_requests_total{model="air_time",code="200"} 1' in text
    assert 'mlcycle_serving_requests_total{model="air_time",code="401"} 1' in text
    assert 'mlcycle_serving_errors_total{model="air_time"} 1' in text
    assert 'mlcycle_serving_latency_seconds_count{model="air_time"} 2' in text
    assert 'mlcycle_serving_version{model="air_time",role="champion"} 1' in text
    (rss,) = [line for line in text.splitlines() if line.startswith("process_resident_memory_bytes ")]
    with open("/proc/self/status") as status:  # the service runs in this process here
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    assert abs(int(rss.split()[1]) - kib * 1024) < 64 * 2**20


def test_the_request_log_keeps_a_bounded_number_of_files_open_and_loses_no_line(tmp_path):
    log = RequestLog(tmp_path)
    days = [f"2013-02-{d:02d}" for d in range(1, 21)]
    for round_ in range(2):  # each day written, then each again after its file was closed
        for ds in days:
            log.write("air_time", f"{ds}-{round_}", [{"ds": ds}], {}, (1, [0.0]))
            assert len(log._files) <= RequestLog.KEEP_OPEN
    log.close()
    for ds in days:
        (written,) = (tmp_path / "models" / "air_time" / "requests" / f"ds={ds}").glob("*.jsonl")
        assert [json.loads(line)["request_id"] for line in written.read_text().splitlines()] == [
            f"{ds}-0",
            f"{ds}-1",
        ]
