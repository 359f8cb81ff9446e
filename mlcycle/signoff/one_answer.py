"""One answer per sign-off, even when two people answer at the same moment.

Airflow takes an answer to a human-in-the-loop task (``PATCH .../hitlDetails``) in one
transaction: read the row, refuse (409) if it already has a response, write the response. It
serializes two such transactions with ``SELECT ... FOR UPDATE``, which Postgres honours and SQLite
ignores, so on the embedded stack (SQLite) two answers sent together could both be accepted, the
later overwriting the earlier while both people were told "done". This ASGI middleware, installed
in the api-server by ``plugins/mlcycle_sign_off.py``, takes answers one at a time (a file lock, so
every worker process of the api-server on the host shares it): the second answer then finds the
first and is refused with Airflow's own 409. Everything else passes straight through.
"""

from __future__ import annotations

import asyncio
import fcntl
import os


def is_answer(scope) -> bool:
    return (
        scope.get("type") == "http"
        and scope.get("method") == "PATCH"
        and scope.get("path", "").rstrip("/").endswith("/hitlDetails")
    )


def default_lock_file() -> str:
    return os.path.join(os.environ.get("AIRFLOW_HOME") or "/tmp", "sign-off-answers.lock")


class OneAnswerAtATime:
    def __init__(self, app, lock_file: str | None = None):
        self.app = app
        self.lock_file = lock_file or default_lock_file()

    async def __call__(self, scope, receive, send):
        if not is_answer(scope):
            await self.app(scope, receive, send)
            return
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            # The route commits before its response is sent (its session dependency has
            # function scope), so the next answer starts after this one is in the database.
            await self.app(scope, receive, send)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
