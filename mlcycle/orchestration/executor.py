"""Airflow's LocalExecutor, made safe for a task resumed before its parked process is reported.

A sign-off (Airflow's ``ApprovalOperator``) parks its task: the worker process ends, and the
executor reports that end as "success" of the task's current try. An answer resumes the task with
the *same* try number. Airflow 3.3.2's LocalExecutor keeps no record of the workloads it has handed
out, so when an answer comes before the scheduler has read the parked process's report (a person
can answer within a second; the scheduler may take seconds under load), the scheduler queues and
hands out the resumed task, and then reads the stale "success": it finds the task queued or running
with that try and no longer known to the executor, takes it for a task killed outside Airflow, and
fails it. The person was told their answer was taken (200) and the run fails. (The same race hits
any deferred task resumed quickly: apache/airflow#67287, #72716.)

This executor remembers each workload it hands out until its end is reported, and holds back a
workload of the same key until then. The stale report then meets the resumed task still queued in
this executor (``has_task``), which the scheduler treats as requeued, not killed, and the resumed
task is handed out at the next heartbeat. A report that never comes (a worker killed outright) holds
the key back for ``HOLD_SECONDS`` at most.
"""

from __future__ import annotations

import time

from airflow.executors.local_executor import LocalExecutor as _AirflowLocalExecutor
from airflow.utils.state import TaskInstanceState

# A process's end is reported within a heartbeat or two of it; one never reported after this long
# belongs to a worker that died without reporting, and its key is handed out again.
HOLD_SECONDS = 120.0
_ENDED = {TaskInstanceState.SUCCESS, TaskInstanceState.FAILED}


class LocalExecutor(_AirflowLocalExecutor):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.handed_out: dict = {}  # key -> when its workload was handed to a worker
        self._held_since: dict = {}  # key -> when a workload of that key was first held back

    def _process_workloads(self, workload_list):
        super()._process_workloads(workload_list)
        now = time.monotonic()
        for workload in workload_list:
            self.handed_out[workload.key] = now
            self._held_since.pop(workload.key, None)

    def change_state(self, key, state, info=None, remove_running=True) -> None:
        if state in _ENDED:
            self.handed_out.pop(key, None)
        super().change_state(key, state, info, remove_running)

    def _get_workloads_to_schedule(self, open_slots: int):
        held = [key for key in self.handed_out if self._holds(key)]
        chosen = super()._get_workloads_to_schedule(open_slots + len(held))
        return [(key, workload) for key, workload in chosen if key not in held][:open_slots]

    def _holds(self, key) -> bool:
        """A workload of ``key`` waits while the previous one's end is unreported (bounded)."""
        if key not in self.queued_tasks:
            self._held_since.pop(key, None)
            return False
        now = time.monotonic()
        if key not in self._held_since:
            self._held_since[key] = now
            self.log.info("Holding %s back until its previous process's end is reported", key)
        if now - self._held_since[key] < HOLD_SECONDS:
            return True
        self.log.warning(
            "The previous process of %s never reported its end within %.0f s; handing it out anyway",
            key,
            HOLD_SECONDS,
        )
        return False
