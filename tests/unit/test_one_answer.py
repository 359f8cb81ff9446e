"""Two answers to one sign-off at the same moment: the middleware lets one in, the other finds it."""

from __future__ import annotations

import asyncio
import json

from mlcycle.signoff.one_answer import OneAnswerAtATime, is_answer

PATH = "/api/v2/dags/flights_training/dagRuns/r/taskInstances/sign_off/-1/hitlDetails"


def _approval_route():
    """Airflow's route on SQLite, reduced to its race: read, think, write unless answered."""
    row: dict = {"answer": None, "writes": 0}

    async def app(scope, receive, send):
        body = json.loads((await receive())["body"])
        already = row["answer"] is not None
        await asyncio.sleep(0.05)  # the time between the read and the commit
        if already:
            status, out = 409, b"already answered"
        else:
            row["answer"], row["writes"] = body["by"], row["writes"] + 1
            status, out = 200, b"ok"
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": out})

    return app, row


async def _answer(app, by: str, method: str = "PATCH", path: str = PATH) -> int:
    sent = []

    async def receive():
        return {"type": "http.request", "body": json.dumps({"by": by}).encode(), "more_body": False}

    async def send(message):
        sent.append(message)

    await app({"type": "http", "method": method, "path": path}, receive, send)
    return sent[0]["status"]


def _together(app, n: int = 2):
    async def main():
        return await asyncio.gather(*(_answer(app, f"approver{i}") for i in range(n)))

    return asyncio.run(main())


def test_without_it_two_answers_together_are_both_accepted():
    app, row = _approval_route()
    assert sorted(_together(app)) == [200, 200] and row["writes"] == 2  # the race it closes


def test_with_it_one_answer_is_taken_and_the_others_are_refused(tmp_path):
    app, row = _approval_route()
    statuses = _together(OneAnswerAtATime(app, lock_file=str(tmp_path / "lock")), n=3)
    assert sorted(statuses) == [200, 409, 409]
    assert row["writes"] == 1 and row["answer"] is not None


def test_only_answers_are_serialized():
    assert is_answer({"type": "http", "method": "PATCH", "path": PATH})
    assert is_answer({"type": "http", "method": "PATCH", "path": PATH + "/"})
    assert not is_answer({"type": "http", "method": "GET", "path": PATH})
    assert not is_answer({"type": "http", "method": "PATCH", "path": "/api/v2/connections/spark_default"})
    assert not is_answer({"type": "websocket", "path": PATH})
