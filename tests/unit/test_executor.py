"""The stack's executor holds a resumed task back until the report of its parked process is read, so
the scheduler never meets a stale "success" beside a task it has already handed out again.

(Airflow's own workers are replaced by a list of what was handed out: these tests are about the
executor's bookkeeping; tests/e2e/test_sign_off.py answers real sign-offs at once.)"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.executors.local_executor import LocalExecutor as AirflowLocalExecutor
from airflow.models.taskinstancekey import TaskInstanceKey
from airflow.utils.state import TaskInstanceState

from mlcycle.orchestration import executor as module
from mlcycle.orchestration.executor import LocalExecutor

SIGN_OFF = TaskInstanceKey("flights_training", "sign_off", "manual__1", try_number=1, map_index=-1)
OTHER = TaskInstanceKey("flights_data", "land", "scheduled__2", try_number=1, map_index=-1)


def _workload(key, name):
    return SimpleNamespace(key=key, ti=SimpleNamespace(key=key, id=name, priority_weight=1), name=name)


@pytest.fixture
def executor(monkeypatch):
    handed = []
    monkeypatch.setattr(
        AirflowLocalExecutor,
        "_process_workloads",
        lambda self, items: [handed.append(self.queued_tasks.pop(w.key).name) for w in items],
    )
    ex = LocalExecutor(parallelism=4)
    ex.handed = handed
    return ex


def _queue(ex, key, name):
    ex.queued_tasks[key] = _workload(key, name)


def test_a_resumed_task_waits_for_the_report_of_its_parked_process(executor):
    _queue(executor, SIGN_OFF, "asks for the sign-off")
    executor.trigger_tasks(open_slots=4)
    assert executor.handed == ["asks for the sign-off"]

    # The answer came at once: the scheduler queues the resumed task (same try) before it has read
    # the report of the parked process.
    _queue(executor, SIGN_OFF, "resumed with the answer")
    _queue(executor, OTHER, "another task")
    executor.trigger_tasks(open_slots=4)
    assert executor.handed == ["asks for the sign-off", "another task"]  # only the resumed one waits
    assert executor.has_task(SimpleNamespace(key=SIGN_OFF, id="resumed with the answer"))

    # The stale report is read: the scheduler still finds the task in this executor (requeued, not
    # killed), and the resumed task goes out at the next heartbeat.
    executor.change_state(SIGN_OFF, TaskInstanceState.SUCCESS)
    assert executor.event_buffer[SIGN_OFF][0] == TaskInstanceState.SUCCESS
    assert executor.has_task(SimpleNamespace(key=SIGN_OFF, id="resumed with the answer"))
    executor.trigger_tasks(open_slots=4)
    assert executor.handed[-1] == "resumed with the answer"


def test_a_running_report_does_not_release_the_hold(executor):
    _queue(executor, SIGN_OFF, "first")
    executor.trigger_tasks(open_slots=4)
    executor.change_state(SIGN_OFF, TaskInstanceState.RUNNING)  # the worker picked it up
    _queue(executor, SIGN_OFF, "resumed")
    executor.trigger_tasks(open_slots=4)
    assert executor.handed == ["first"]


def test_a_report_that_never_comes_holds_the_task_for_a_bounded_time(executor, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    _queue(executor, SIGN_OFF, "first")
    executor.trigger_tasks(open_slots=4)
    _queue(executor, SIGN_OFF, "resumed")
    executor.trigger_tasks(open_slots=4)
    clock[0] += module.HOLD_SECONDS - 1
    executor.trigger_tasks(open_slots=4)
    assert executor.handed == ["first"]
    clock[0] += 2  # the worker died without a word: the task is not held forever
    executor.trigger_tasks(open_slots=4)
    assert executor.handed == ["first", "resumed"]


def test_held_tasks_do_not_take_the_open_slots_of_others(executor):
    _queue(executor, SIGN_OFF, "first")
    executor.trigger_tasks(open_slots=1)
    _queue(executor, SIGN_OFF, "resumed")
    _queue(executor, OTHER, "another task")
    executor.trigger_tasks(open_slots=1)
    assert executor.handed == ["first", "another task"]
