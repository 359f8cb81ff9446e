"""The registry's fail-fast check: a down tracking server is reported at once, in plain words."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from mlcycle.registry import TrackingServerDown, require_tracking_server


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_fails_within_seconds_with_a_message_naming_server_and_remedy():
    uri = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(TrackingServerDown) as failed:
        require_tracking_server(uri, timeout=2)
    assert time.monotonic() - started < 2.0  # a refusal is reported as it comes: no retries, no wait
    message = str(failed.value)
    assert uri in message and "is not answering" in message and "Connection refused" in message
    # the wording a person reads in the task log (what the caller did not do is not checked here)
    assert "Nothing was registered" in message and "make start" in message


def test_a_server_that_accepts_but_never_answers_fails_after_the_timeout():
    with socket.socket() as silent:  # listens, so connecting works, but nobody ever replies
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(TrackingServerDown, match="is not answering"):
            require_tracking_server(uri, timeout=1)
        assert time.monotonic() - started < 4.0


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status, passes", [(200, True), (503, False)])
def test_the_health_answer_decides(status, passes):
    handler = type("Handler", (_Health,), {"status": status})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        if passes:
            require_tracking_server(uri)
        else:
            with pytest.raises(TrackingServerDown, match="HTTP 503"):
                require_tracking_server(uri)
    finally:
        server.shutdown()


def test_a_local_store_has_no_server_to_check():
    require_tracking_server("sqlite:///nowhere/mlflow.db")
    require_tracking_server("file:///nowhere")
