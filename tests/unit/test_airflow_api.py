"""The REST client asks again when Airflow's SQLite database was busy, and never makes two runs."""

from __future__ import annotations

import pytest

from mlcycle.orchestration import client as airflow_api
from mlcycle.orchestration.client import AirflowClient, AirflowError


class _Resp:
    def __init__(self, status: int, body: dict | None = None, text: str = ""):
        self.status_code = status
        self._body = body or {}
        self.text = text or str(self._body)
        self.content = b"x"

    def json(self):
        return self._body


DB_ERROR = '{"detail":{"reason":"Database error","statement":"hidden"}}'


def _client(monkeypatch, answers: list[_Resp]) -> tuple[AirflowClient, list[dict]]:
    sent: list[dict] = []

    def request(method, url, headers=None, timeout=None, json=None, **kw):
        sent.append({"method": method, "url": url, "json": json})
        answer = answers.pop(0)
        if answer.status_code == 200:  # Airflow answers with the run it made
            answer._body = {"dag_run_id": json["dag_run_id"]}
        return answer

    monkeypatch.setattr(airflow_api.requests, "request", request)
    monkeypatch.setattr(airflow_api.time, "sleep", lambda s: None)
    client = AirflowClient("http://af", "admin", "pw")
    client._token = "t"
    return client, sent


def test_a_busy_database_is_asked_again_with_the_same_run_id(monkeypatch):
    client, sent = _client(monkeypatch, [_Resp(500, text=DB_ERROR), _Resp(200)])
    run_id = client.trigger("flights_rollback", conf={"version": 1})
    assert len(sent) == 2
    assert sent[0]["json"]["dag_run_id"] == sent[1]["json"]["dag_run_id"] == run_id
    assert run_id.startswith("manual__")


def test_a_run_committed_before_the_error_is_not_made_twice(monkeypatch):
    client, sent = _client(monkeypatch, [_Resp(500, text=DB_ERROR), _Resp(409, text="already exists")])
    run_id = client.trigger("flights_data", logical_date="2013-01-05T00:00:00Z")
    assert run_id == "manual__2013-01-05T00:00:00+00:00"
    assert len(sent) == 2


def test_other_errors_are_not_retried(monkeypatch):
    client, sent = _client(monkeypatch, [_Resp(409, text="already exists")])
    with pytest.raises(AirflowError, match="409"):
        client.trigger("flights_data", run_id="mine")
    assert len(sent) == 1


def test_the_embedded_airflow_waits_for_its_database_longer_than_sqlites_default():
    from importlib import import_module

    from mlcycle.devstack import stack

    env = stack.stack_env()
    for key in (
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC",
    ):
        module, name = env[key].rsplit(".", 1)
        assert getattr(import_module(module), name)["timeout"] >= 20


def test_a_backfill_committed_before_the_error_is_returned_not_made_twice(monkeypatch):
    running = {
        "id": 4,
        "dag_id": "flights_data",
        "from_date": "2013-02-01T00:00:00Z",
        "to_date": "2013-05-01T00:00:00Z",
        "created_at": "2026-11-30T07:00:00Z",
        "completed_at": None,
    }
    done = {**running, "id": 3, "to_date": "2013-03-02T00:00:00Z", "completed_at": "2026-11-30T06:57:53Z"}
    its_run = {"dag_run_id": "backfill__2013-02-02", "queued_at": "2026-11-30T07:00:00.2Z"}
    answers = [
        _Resp(500, text=DB_ERROR),
        _Resp(409, text='{"detail":"There is already a running backfill for dag flights_data"}'),
        _Resp(200, {"backfills": [done, running]}),
        _Resp(200, {"dag_runs": [{"dag_run_id": "manual_1", "queued_at": "2026-11-29T10:00:00Z"}, its_run]}),
    ]
    sent = []

    def request(method, url, headers=None, timeout=None, json=None, **kw):
        sent.append((method, url.rsplit("/api/v2/", 1)[-1]))
        return answers.pop(0)

    monkeypatch.setattr(airflow_api.requests, "request", request)
    monkeypatch.setattr(airflow_api.time, "sleep", lambda s: None)
    client = AirflowClient("http://af", "admin", "pw")
    client._token = "t"

    assert client.backfill("flights_data", "2013-02-01", "2013-05-01")["id"] == 4
    assert sent == [
        ("POST", "backfills"),
        ("POST", "backfills"),
        ("GET", "backfills"),
        ("GET", "dags/flights_data/dagRuns"),
    ]


def test_a_backfill_committed_without_its_runs_is_cancelled_and_made_again(monkeypatch):
    """Airflow commits a backfill before its runs: a lock error between the two leaves a backfill
    with no run, which would hold the DAG's next backfill and run nothing."""
    orphan = {
        "id": 2,
        "dag_id": "flights_data",
        "from_date": "2013-02-01T00:00:00Z",
        "to_date": "2013-02-07T00:00:00Z",
        "created_at": "2026-12-04T02:16:36Z",
        "completed_at": None,
    }
    answers = [
        _Resp(503, text='{"detail":"database is locked"}'),
        _Resp(409, text='{"detail":"There is already a running backfill for dag flights_data"}'),
        _Resp(200, {"backfills": [orphan]}),
        # the days' runs are older than the backfill: it made none
        _Resp(
            200,
            {"dag_runs": [{"dag_run_id": "bench__real__2013-02-01", "queued_at": "2026-12-04T01:25:08Z"}]},
        ),
        _Resp(200, {**orphan, "completed_at": "2026-12-04T02:16:40Z"}),
        _Resp(200, {**orphan, "id": 3, "created_at": "2026-12-04T02:16:42Z"}),
    ]
    sent = []

    def request(method, url, headers=None, timeout=None, json=None, **kw):
        sent.append((method, url.rsplit("/api/v2/", 1)[-1]))
        return answers.pop(0)

    monkeypatch.setattr(airflow_api.requests, "request", request)
    monkeypatch.setattr(airflow_api.time, "sleep", lambda s: None)
    client = AirflowClient("http://af", "admin", "pw")
    client._token = "t"

    assert client.backfill("flights_data", "2013-02-01", "2013-02-07")["id"] == 3
    assert sent == [
        ("POST", "backfills"),
        ("POST", "backfills"),
        ("GET", "backfills"),
        ("GET", "dags/flights_data/dagRuns"),
        ("PUT", "backfills/2/cancel"),
        ("POST", "backfills"),
    ]



def test_a_backfill_seen_before_its_rollback_is_not_cancelled_but_made_again(monkeypatch):
    """A backfill listed while the request that made it fails is rolled back before it can be
    cancelled (404): the backfill is asked for again."""
    rolled_back = {
        "id": 8,
        "dag_id": "flights_data",
        "from_date": "2013-02-01T00:00:00Z",
        "to_date": "2013-05-01T00:00:00Z",
        "created_at": "2026-12-04T06:20:31Z",
        "completed_at": None,
    }
    client, sent = _plain(
        monkeypatch,
        [
            _Resp(503, text='{"detail":"database is locked"}'),
            _Resp(409, text='{"detail":"There is already a running backfill for dag flights_data"}'),
            _Resp(200, {"backfills": [rolled_back]}),
            _Resp(200, {"dag_runs": []}),
            _Resp(404, text='{"detail":"Backfill not found"}'),
            _Resp(200, {**rolled_back, "id": 9}),
        ],
    )
    assert client.backfill("flights_data", "2013-02-01", "2013-05-01")["id"] == 9
    assert [(m, u) for m, u, _ in sent] == [
        ("POST", "backfills"),
        ("POST", "backfills"),
        ("GET", "backfills"),
        ("GET", "dags/flights_data/dagRuns"),
        ("PUT", "backfills/8/cancel"),
        ("POST", "backfills"),
    ]

def _plain(monkeypatch, answers: list[_Resp]) -> tuple[AirflowClient, list[tuple]]:
    sent: list[tuple] = []

    def request(method, url, headers=None, timeout=None, json=None, **kw):
        sent.append((method, url.rsplit("/api/v2/", 1)[-1], json))
        return answers.pop(0)

    monkeypatch.setattr(airflow_api.requests, "request", request)
    monkeypatch.setattr(airflow_api.time, "sleep", lambda s: None)
    client = AirflowClient("http://af", "admin", "pw")
    client._token = "t"
    return client, sent


def test_pausing_is_asked_again_while_the_database_is_busy(monkeypatch):
    client, sent = _plain(
        monkeypatch, [_Resp(500, text=DB_ERROR), _Resp(500, text=DB_ERROR), _Resp(200, {"is_paused": False})]
    )
    client.unpause("flights_data")
    assert sent == [("PATCH", "dags/flights_data", {"is_paused": False})] * 3


def test_a_read_gives_up_after_a_few_busy_answers(monkeypatch):
    client, sent = _plain(monkeypatch, [_Resp(500, text=DB_ERROR)] * airflow_api.BUSY_ATTEMPTS)
    with pytest.raises(AirflowError, match="Database error"):
        client.dag_run("flights_data", "r1")
    assert len(sent) == airflow_api.BUSY_ATTEMPTS


def test_an_answer_or_another_change_is_not_sent_twice_on_a_busy_database(monkeypatch):
    client, sent = _plain(monkeypatch, [_Resp(500, text=DB_ERROR)])
    with pytest.raises(AirflowError, match="Database error"):
        client.request("PATCH", "dags/d/dagRuns/r/taskInstances/sign_off/-1/hitlDetails", json={})
    assert len(sent) == 1


HITL = "dags/d/dagRuns/r/taskInstances/sign_off/-1/hitlDetails"


def _answering(monkeypatch, answers: list[_Resp]) -> tuple[AirflowClient, list[tuple]]:
    client, sent = _plain(monkeypatch, answers)
    monkeypatch.setattr(client, "wait_for_approval", lambda *a, **k: None)
    client.username = "approver"
    return client, sent


def test_an_answer_refused_on_a_busy_database_is_sent_again_when_nobody_answered(monkeypatch):
    client, sent = _answering(
        monkeypatch,
        [
            _Resp(500, text=DB_ERROR),
            _Resp(200, {"response_received": False}),
            _Resp(200, {"chosen_options": ["Approve"], "response_received": True}),
        ],
    )
    assert client.respond("d", "r", "sign_off", "Approve")["chosen_options"] == ["Approve"]
    assert [(m, p) for m, p, _ in sent] == [("PATCH", HITL), ("GET", HITL), ("PATCH", HITL)]


def test_an_answer_taken_before_the_busy_error_is_not_sent_twice(monkeypatch):
    taken = {"response_received": True, "responded_by_user": {"id": "approver"}, "chosen_options": ["Reject"]}
    client, sent = _answering(monkeypatch, [_Resp(500, text=DB_ERROR), _Resp(200, taken)])
    assert client.respond("d", "r", "sign_off", "Reject") == taken
    assert [m for m, _, _ in sent] == ["PATCH", "GET"]


def test_someone_elses_answer_during_a_busy_error_is_reported(monkeypatch):
    other = {
        "response_received": True,
        "responded_by_user": {"id": "approver2"},
        "chosen_options": ["Approve"],
    }
    client, sent = _answering(monkeypatch, [_Resp(500, text=DB_ERROR), _Resp(200, other)])
    with pytest.raises(AirflowError, match="Database error"):
        client.respond("d", "r", "sign_off", "Reject")
    assert [m for m, _, _ in sent] == ["PATCH", "GET"]


def test_an_approval_is_looked_for_at_the_clients_pace_until_the_task_is_about_to_ask(monkeypatch):
    """While the tasks before the sign-off work (a training), the API server is asked at the
    client's pace; once the task is queued or running, at the pace the caller asked for."""
    states = iter([None, "scheduled", "queued", "running", "awaiting_input"])
    slept: list[float] = []
    client = AirflowClient("http://af", "admin", "pw", poll=0.5)
    monkeypatch.setattr(client, "task_state", lambda *a: next(states))
    monkeypatch.setattr(client, "dag_run", lambda *a: {"state": "running"})
    monkeypatch.setattr(airflow_api.time, "sleep", slept.append)

    client.wait_for_approval("d", "r", "sign_off", poll=0.05)

    assert slept == [0.5, 0.5, 0.05, 0.05]


def _scripted(monkeypatch, polls: list[dict[str, dict]]) -> tuple[AirflowClient, list[int]]:
    """A client whose Airflow answers each poll from a script: per path, the body of that poll."""
    at = [0]

    def request(method, url, headers=None, timeout=None, **kw):
        path = url.split("/api/v2/", 1)[1]
        nothing = _runs() if path.endswith("/dagRuns") else {"total_entries": 0}
        return _Resp(200, polls[min(at[0], len(polls) - 1)].get(path, nothing))

    def sleep(seconds):
        at[0] += 1

    monkeypatch.setattr(airflow_api.requests, "request", request)
    monkeypatch.setattr(airflow_api.time, "sleep", sleep)
    client = AirflowClient("http://af", "admin", "pw", poll=0.5)
    client._token = "t"
    return client, at


def _runs(*ids: str) -> dict:
    return {"dag_runs": [{"dag_run_id": i} for i in ids], "total_entries": len(ids)}


def test_idle_waits_through_the_moment_an_asset_event_has_yet_to_start_its_run(monkeypatch):
    """Scoring ends and announces its predictions; for a moment monitoring has no run, only the
    event that will start one: not idle until that run has been made and has ended too."""
    event = {"queued_events": [{"dag_id": "m", "asset_id": 1}], "total_entries": 1}
    unpaused = {"dag_id": "m", "is_paused": False}
    client, at = _scripted(
        monkeypatch,
        [
            {"dags/s/dagRuns": _runs("scoring")},  # scoring runs
            {"dags/m/assets/queuedEvents": event, "dags/m": unpaused},  # it has ended: the event only
            {"dags/m/dagRuns": _runs("monitoring")},  # the event's run
            {},  # nothing left
        ],
    )
    client.wait_until_idle(["s", "m"])
    assert at[0] == 3  # it looked four times, and returned at the fourth


def test_idle_does_not_wait_for_the_events_of_a_paused_dag(monkeypatch):
    event = {"queued_events": [{"dag_id": "m", "asset_id": 1}], "total_entries": 1}
    client, at = _scripted(
        monkeypatch, [{"dags/m/assets/queuedEvents": event, "dags/m": {"dag_id": "m", "is_paused": True}}]
    )
    client.wait_until_idle(["s", "m"])
    assert at[0] == 0
