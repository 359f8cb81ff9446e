"""The registry's fail-fast check: a down tracking server is reported at once, in plain words."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from mlcycle.registry import TrackingServerDown, require_tracking_server


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_down_server_fails_at_once_saying_what_to_do():
    uri = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(TrackingServerDown) as failed:
        require_tracking_server(uri, timeout=2)
    message = str(failed.value)
    assert uri in message and "is not answering" in message
    assert "Nothing was registered" in message and "make start" in message


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
