"""``spark_jobs.common.side_by_side``: a job's independent passes at once, their results in order,
every one ended before a failure is raised; one after the other with ``MLCYCLE_SIDE_BY_SIDE=0``."""

from __future__ import annotations

import threading
import time

import pytest

from spark_jobs.common import side_by_side


def _meeting(parties: int):
    """Calls that each wait for all the others to have started: they end only if run at once."""
    barrier = threading.Barrier(parties, timeout=5)

    def call(value):
        return lambda: (barrier.wait(), value)[1]

    return call


def test_the_calls_run_at_once_and_their_results_come_in_order(monkeypatch):
    monkeypatch.delenv("MLCYCLE_SIDE_BY_SIDE", raising=False)
    call = _meeting(3)
    assert side_by_side(call("a"), call("b"), call("c")) == ["a", "b", "c"]


def test_switched_off_they_run_one_after_the_other_in_order(monkeypatch):
    monkeypatch.setenv("MLCYCLE_SIDE_BY_SIDE", "0")
    order, threads = [], set()

    def call(value):
        def run():
            order.append(value)
            threads.add(threading.get_ident())
            return value

        return run

    assert side_by_side(call(1), call(2), call(3)) == [1, 2, 3]
    assert order == [1, 2, 3] and threads == {threading.get_ident()}


def test_a_failure_is_raised_once_every_call_has_ended(monkeypatch):
    monkeypatch.delenv("MLCYCLE_SIDE_BY_SIDE", raising=False)
    ended = []

    def slow_write():
        time.sleep(0.3)
        ended.append("write")

    def failing_gate():
        raise ValueError("bad day")

    with pytest.raises(ValueError, match="bad day"):
        side_by_side(failing_gate, slow_write)
    assert ended == ["write"]  # the other pass was not left running


def test_the_first_failure_in_order_is_the_one_raised(monkeypatch):
    monkeypatch.delenv("MLCYCLE_SIDE_BY_SIDE", raising=False)

    def late():
        time.sleep(0.2)
        raise KeyError("first in order")

    def early():
        raise ValueError("second in order")

    with pytest.raises(KeyError):
        side_by_side(late, early)
