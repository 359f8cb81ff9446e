"""The supervisor starts a component again when it dies, and gives up on one that keeps dying."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlcycle.devstack import supervise


def test_a_component_that_exits_is_started_again_then_given_up_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(supervise.time, "sleep", lambda s: None)
    # the handlers go to a stand-in: the test process keeps its own SIGTERM and SIGINT handlers
    installed = {}
    monkeypatch.setattr(
        supervise.signal, "signal", lambda signum, handler: installed.setdefault(signum, handler)
    )
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    counter = tmp_path / "starts"
    cmd = [sys.executable, "-c", f"open({str(counter)!r}, 'a').write('x'); raise SystemExit(3)"]
    assert supervise.supervise("flaky", cmd) == 3
    assert counter.read_text() == "x" * (supervise.MAX_RESTARTS + 1)
    assert "giving up" in capsys.readouterr().out
    assert set(installed) == {signal.SIGTERM, signal.SIGINT} and all(map(callable, installed.values()))
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def _wait_for(path, proc: subprocess.Popen, timeout: float = 20.0) -> str:
    """The text of ``path`` once a whole line is in it (the supervisor must still be running)."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().endswith("\n")):
        assert proc.poll() is None, f"the supervisor exited with {proc.returncode} before its child started"
        assert time.monotonic() < deadline, f"no child started within {timeout} s"
        time.sleep(0.05)
    return path.read_text()


def _running_child(pid: int, marker: str) -> bool:
    """Whether ``pid`` is still the child started with ``marker`` in its command line."""
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_text()
    except FileNotFoundError:
        return False


def test_sigterm_stops_the_component_and_the_supervisor(tmp_path):
    started = tmp_path / "started"
    # the child says it runs (its pid) once started, which is after the supervisor set its handlers
    child = f"import os, time; open({str(started)!r}, 'a').write(f'{{os.getpid()}}\\n'); time.sleep(60)"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlcycle.devstack.supervise", "sleeper", "--", sys.executable, "-c", child]
    )
    left_running = []
    try:
        pid = int(_wait_for(started, proc))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for line in started.read_text().split() if started.exists() else []:
            if _running_child(int(line), str(started)):
                left_running.append(int(line))
                os.kill(int(line), signal.SIGKILL)
    assert not left_running, f"the component outlived the supervisor: {left_running}"
    assert started.read_text() == f"{pid}\n"  # stopped, not started again
