"""The supervisor starts a component again when it dies, and gives up on one that keeps dying."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from mlcycle import supervise


def test_a_component_that_exits_is_started_again_then_given_up_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(supervise.time, "sleep", lambda s: None)
    counter = tmp_path / "starts"
    cmd = [sys.executable, "-c", f"open({str(counter)!r}, 'a').write('x'); raise SystemExit(3)"]
    assert supervise.supervise("flaky", cmd) == 3
    assert counter.read_text() == "x" * (supervise.MAX_RESTARTS + 1)
    assert "giving up" in capsys.readouterr().out


def test_sigterm_stops_the_component_and_the_supervisor(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlcycle.supervise",
            "sleeper",
            "--",
            sys.executable,
            "-c",
            "import time; time.sleep(60)",
        ]
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
