"""Keep one component of the embedded stack running, as systemd or Kubernetes would on a server.

    python -m mlcycle.devstack.supervise NAME -- COMMAND...

The Airflow scheduler on SQLite can stop on a lost race for a row (``StaleDataError``); a
component that exits on its own is started again. One that keeps failing (more than
``MAX_RESTARTS`` within ``WINDOW_SECONDS``) is given up on, so a broken setup fails instead of
looping. SIGTERM stops the component and the supervisor with it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

MAX_RESTARTS = 5
WINDOW_SECONDS = 300


def supervise(name: str, cmd: list[str]) -> int:
    stopping = False
    child: subprocess.Popen | None = None

    def stop(signum, frame):
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    restarts: list[float] = []
    while True:
        child = subprocess.Popen(cmd)
        code = child.wait()
        if stopping:
            return 0
        now = time.monotonic()
        restarts = [t for t in restarts if now - t < WINDOW_SECONDS] + [now]
        if len(restarts) > MAX_RESTARTS:
            print(
                f"[supervise] {name} exited {len(restarts)} times in {WINDOW_SECONDS} s; giving up",
                flush=True,
            )
            return code or 1
        print(f"[supervise] {name} exited with code {code}; starting it again", flush=True)
        time.sleep(2)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    return supervise(argv[0], argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
