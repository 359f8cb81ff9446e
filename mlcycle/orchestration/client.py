"""A small client of Airflow's REST API (v2), as a person's tools use it: log in, trigger,
backfill, wait, answer a pending approval."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

TERMINAL_RUN_STATES = {"success", "failed"}
BUSY_ATTEMPTS = 4  # a call safe to repeat is made this many times at most while the database is busy


class AirflowError(RuntimeError):
    pass


def _database_busy(exc: AirflowError) -> bool:
    """The API refused because another writer held the metadata database (SQLite): 503 "locked",
    or 500 "Database error" once the wait for it ran out. The write may have been committed all the
    same, so the callers ask again in a way that tells their first attempt from a new one."""
    text = str(exc)
    return (": 503 " in text and "locked" in text) or (": 500 " in text and "Database error" in text)


@dataclass
class AirflowClient:
    base_url: str
    username: str
    password: str
    timeout: float = 30.0
    poll: float = 3.0  # seconds between two looks while waiting for runs
    _token: str | None = field(default=None, repr=False)

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            resp = requests.post(
                f"{self.base_url}/auth/token",
                json={"username": self.username, "password": self.password},
                timeout=self.timeout,
            )
            if resp.status_code not in (200, 201):
                raise AirflowError(f"login as {self.username!r} failed: {resp.status_code} {resp.text[:200]}")
            self._token = resp.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, *, idempotent: bool | None = None, **kwargs) -> Any:
        """One call of the API. A call that is safe to make twice (a read, or setting a field to a
        given value: ``idempotent=True``) is made again when the database was busy."""
        url = f"{self.base_url}/api/v2/{path.lstrip('/')}"
        again = method == "GET" if idempotent is None else idempotent
        for attempt in range(1, BUSY_ATTEMPTS + 1):
            resp = requests.request(method, url, headers=self._headers(), timeout=self.timeout, **kwargs)
            if resp.status_code == 401:
                self._token = None
                resp = requests.request(method, url, headers=self._headers(), timeout=self.timeout, **kwargs)
            if resp.status_code < 400:
                return resp.json() if resp.content else None
            error = AirflowError(f"{method} {path}: {resp.status_code} {resp.text[:500]}")
            if not (again and _database_busy(error)) or attempt == BUSY_ATTEMPTS:
                raise error
            time.sleep(attempt)
        raise AssertionError("unreachable")

    # DAGs
    def wait_for_dags(self, dag_ids: list[str], timeout: float = 300) -> None:
        """Wait until the dag-processor has parsed every DAG, and report import errors early."""
        deadline = time.monotonic() + timeout
        while True:
            known = {d["dag_id"] for d in self.request("GET", "dags", params={"limit": 100})["dags"]}
            if set(dag_ids) <= known:
                return
            errors = self.request("GET", "importErrors").get("import_errors", [])
            if errors:
                raise AirflowError(
                    "DAG import errors:\n" + "\n".join(e["stack_trace"][-800:] for e in errors)
                )
            if time.monotonic() > deadline:
                raise AirflowError(f"DAGs not parsed after {timeout:.0f} s: missing {set(dag_ids) - known}")
            time.sleep(0.5)

    def unpause(self, dag_id: str) -> None:
        self.set_paused(dag_id, False)

    def pause(self, dag_id: str) -> None:
        self.set_paused(dag_id, True)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"dags/{dag_id}", json={"is_paused": paused}, idempotent=True)

    def trigger(
        self,
        dag_id: str,
        conf: dict | None = None,
        run_id: str | None = None,
        logical_date: str | None = None,
    ) -> str:
        """Trigger a run; ``logical_date`` (ISO, e.g. ``2013-01-10T00:00:00Z``) makes it the run of
        that day, as a scheduled run would be."""
        stamp = logical_date.replace("Z", "+00:00") if logical_date else datetime.now(UTC).isoformat()
        run_id = run_id or f"manual__{stamp}"
        body: dict[str, Any] = {"logical_date": logical_date, "conf": conf or {}, "dag_run_id": run_id}
        # Asked again while the database is busy; a 409 on a later attempt means an earlier one was
        # committed after all, and that run (same id) is the one.
        for attempt in range(1, 7):
            try:
                return self.request("POST", f"dags/{dag_id}/dagRuns", json=body)["dag_run_id"]
            except AirflowError as exc:
                if attempt > 1 and ": 409 " in str(exc):
                    return run_id
                if not _database_busy(exc) or attempt == 6:
                    raise
                time.sleep(2 * attempt)
        raise AssertionError("unreachable")

    def backfill(
        self, dag_id: str, from_date: str, to_date: str, max_active_runs: int = 1, attempts: int = 10
    ) -> dict:
        """Airflow's own backfill over [from_date, to_date] (logical dates, inclusive), its runs one
        at a time by default (a backfill's ``max_active_runs`` is its own, not the DAG's: a day
        of the data DAGs reads what the days before it wrote).

        On SQLite the API can answer that the database was busy, and the backfill may have been
        committed anyway: it is asked again, and a 409 "already a running backfill" on a later
        attempt is that backfill, which is returned (the DAG has one running backfill at most)."""
        body = {
            "dag_id": dag_id,
            "from_date": f"{from_date}T00:00:00Z",
            "to_date": f"{to_date}T00:00:00Z",
            "max_active_runs": max_active_runs,
            "reprocess_behavior": "completed",
            "run_backwards": False,
        }
        for attempt in range(1, attempts + 1):
            try:
                return self.request("POST", "backfills", json=body)
            except AirflowError as exc:
                conflict = attempt > 1 and ": 409 " in str(exc)
                if conflict:
                    running = self._running_backfill(dag_id, body["from_date"], body["to_date"])
                    if running is not None and self._has_runs(dag_id, running):
                        return running
                    if running is not None:
                        # Airflow commits a backfill before it creates its runs: the error came
                        # between the two, and left a backfill with no run, which would hold the
                        # DAG's next backfill until the scheduler marks it done. It is cancelled
                        # and the backfill made again. Not found, it was the failed request's own,
                        # seen before it was rolled back: nothing to cancel, asked again.
                        try:
                            self.request("PUT", f"backfills/{running['id']}/cancel")
                        except AirflowError as gone:
                            if ": 404 " not in str(gone):
                                raise
                # A conflict with no such backfill to be found is the busy database's own doing
                # (its writer still held the running one): asked again like a busy answer.
                if not (_database_busy(exc) or conflict) or attempt == attempts:
                    raise
                time.sleep(2 * attempt)
        raise AssertionError("unreachable")

    def _has_runs(self, dag_id: str, job: dict) -> bool:
        """Whether the backfill ``job`` made any run: a run of its dates queued since it was made
        (a day it runs again keeps its run, queued anew)."""
        made = datetime.fromisoformat(job["created_at"].replace("Z", "+00:00"))
        runs = self.dag_runs(dag_id, logical_date_gte=job["from_date"], logical_date_lte=job["to_date"])
        return any(
            r.get("queued_at") and datetime.fromisoformat(r["queued_at"].replace("Z", "+00:00")) >= made
            for r in runs
        )

    def _running_backfill(self, dag_id: str, from_date: str, to_date: str) -> dict | None:
        """The DAG's unfinished backfill over exactly these dates, if there is one."""
        for job in self.request("GET", "backfills", params={"dag_id": dag_id, "limit": 100})["backfills"]:
            if (
                not job.get("completed_at")
                and _same_instant(job["from_date"], from_date)
                and _same_instant(job["to_date"], to_date)
            ):
                return job
        return None

    def dag_runs(self, dag_id: str, **params) -> list[dict]:
        params.setdefault("limit", 100)
        return self.request("GET", f"dags/{dag_id}/dagRuns", params=params)["dag_runs"]

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", f"dags/{dag_id}/dagRuns/{run_id}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 900) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.dag_run(dag_id, run_id)["state"]
            if state in TERMINAL_RUN_STATES:
                return state
            time.sleep(self.poll)
        raise AirflowError(f"{dag_id} run {run_id} not finished after {timeout:.0f} s")

    def run_ids(self, dag_id: str) -> set[str]:
        return {r["dag_run_id"] for r in self.dag_runs(dag_id, order_by="-run_after")}

    def wait_for_new_run(self, dag_id: str, known: set[str], timeout: float = 900) -> tuple[str, str]:
        """The first run of `dag_id` not in `known` (one an asset event starts, say), once finished:
        (run id, state)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = sorted(self.run_ids(dag_id) - known)
            if new:
                return new[0], self.wait_for_run(
                    dag_id, new[0], timeout=max(1.0, deadline - time.monotonic())
                )
            time.sleep(self.poll)
        raise AirflowError(f"no new run of {dag_id} after {timeout:.0f} s")

    def wait_until_idle(self, dag_ids: list[str], timeout: float = 600) -> None:
        """Until no run of these DAGs is queued or running, and no asset event is waiting for the
        scheduler to start one: between a run that announces an asset ending and the run the asset
        starts being created, the event is all there is to see (a paused DAG's events wait for it
        to be unpaused: they are not waited for)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = [
                (d, r["dag_run_id"]) for d in dag_ids for r in self.dag_runs(d, state=["queued", "running"])
            ]
            busy += [(d, "an asset event to start a run") for d in dag_ids if self._asset_events_waiting(d)]
            if not busy:
                return
            time.sleep(self.poll)
        raise AirflowError(f"still running after {timeout:.0f} s: {busy}")

    def _asset_events_waiting(self, dag_id: str) -> bool:
        """Whether an asset event waits for the scheduler to start a run of ``dag_id`` (unpaused)."""
        try:
            events = self.request("GET", f"dags/{dag_id}/assets/queuedEvents")
        except AirflowError as exc:
            if ": 404 " in str(exc):  # none
                return False
            raise
        return bool(events.get("total_entries")) and not self.request("GET", f"dags/{dag_id}")["is_paused"]

    def stop_unfinished(self) -> list[tuple[str, str]]:
        """Cancel every unfinished backfill and mark every queued or running run failed (a pending
        approval included), as a person would from the UI to start again from a clean state."""
        stopped = []
        for dag_id in [d["dag_id"] for d in self.request("GET", "dags", params={"limit": 100})["dags"]]:
            unfinished = self.dag_runs(dag_id, state=["queued", "running"])
            # A backfill is cancelled only while it has runs to stop: one whose runs have all ended
            # but that the scheduler has not yet marked complete is left as it is (a cancelled one
            # never runs a cleared task of its runs again).
            busy = {str(r.get("backfill_id")) for r in unfinished if r.get("backfill_id") is not None}
            for backfill in self.request("GET", "backfills", params={"dag_id": dag_id})["backfills"]:
                if not backfill.get("completed_at") and str(backfill["id"]) in busy:
                    self.request("PUT", f"backfills/{backfill['id']}/cancel")
            for run in unfinished:
                self.request("PATCH", f"dags/{dag_id}/dagRuns/{run['dag_run_id']}", json={"state": "failed"})
                stopped.append((dag_id, run["dag_run_id"]))
        return stopped

    def wait_for_backfill(
        self, backfill_id: int, dag_id: str, expected_runs: int, timeout: float = 1800
    ) -> list[dict]:
        """Wait until the backfill's runs are all finished; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = [r for r in self.dag_runs(dag_id) if r.get("run_type") == "backfill"]
            runs = [r for r in runs if str(r.get("backfill_id", backfill_id)) == str(backfill_id)]
            if len(runs) >= expected_runs and all(r["state"] in TERMINAL_RUN_STATES for r in runs):
                return runs
            time.sleep(self.poll)
        raise AirflowError(f"backfill {backfill_id} of {dag_id} not finished after {timeout:.0f} s")

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict]:
        tis = self.request("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return {ti["task_id"]: ti for ti in tis["task_instances"] if ti.get("map_index", -1) in (-1, 0)}

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        return self.task_instances(dag_id, run_id).get(task_id, {}).get("state")

    # Approvals (human in the loop)
    def clear(
        self, dag_id: str, run_id: str, task_ids: list[str], include_downstream: bool = True
    ) -> list[str]:
        """Clear tasks of a run so they run again (the UI's "Clear"); returns the cleared task ids."""
        cleared = self.request(  # clearing twice leaves the tasks as clearing once does
            "POST",
            f"dags/{dag_id}/clearTaskInstances",
            idempotent=True,
            json={
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": task_ids,
                "include_downstream": include_downstream,
                "only_failed": False,
            },
        )
        return [ti["task_id"] for ti in cleared.get("task_instances", [])]

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> str:
        """The log of one try of a task (of one mapped instance of it), as the UI shows it, as text."""
        body = self.request(
            "GET",
            f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": "true", "map_index": map_index},
        )
        content = body.get("content") if isinstance(body, dict) else body
        if not isinstance(content, list):
            return str(content)
        lines = []
        for line in content:
            if not isinstance(line, dict):
                lines.append(str(line))
                continue
            lines.append(str(line.get("event", "")))
            for error in line.get("error_detail") or []:  # a failed task's exception, as the UI shows it
                lines.append(f"{error.get('exc_type')}: {error.get('exc_value')}")
        return "\n".join(lines)

    def extra_links(self, dag_id: str, run_id: str, task_id: str) -> dict[str, str | None]:
        """The task's extra links by name, as the UI lists them (an empty link is None)."""
        body = self.request("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links")
        return body["extra_links"]

    def pending_approvals(self, dag_id: str | None = None) -> list[dict]:
        params: dict[str, Any] = {"response_received": False, "limit": 100}
        if dag_id:
            params["dag_id"] = dag_id
        details = self.request("GET", "dags/~/dagRuns/~/hitlDetails", params=params)["hitl_details"]
        return [d for d in details if d["task_instance"]["state"] == "awaiting_input"]

    def wait_for_approval(
        self, dag_id: str, run_id: str, task_id: str, timeout: float = 900, poll: float = 2.0
    ) -> None:
        """Wait until the approval task is parked for input (or finished before asking). ``poll``
        is how often it looks once the task is queued or running, about to ask; before that (the
        tasks upstream still at work: a training, an evaluation), it looks at the client's pace,
        not to keep the API server busy with questions while the engine works."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.task_state(dag_id, run_id, task_id)
            if state == "awaiting_input":
                return
            if (
                state in ("failed", "skipped", "upstream_failed", "success")
                or self.dag_run(dag_id, run_id)["state"] in TERMINAL_RUN_STATES
            ):
                raise AirflowError(
                    f"{dag_id} {run_id}: {task_id} ended as {state} before asking for approval"
                )
            time.sleep(poll if state in ABOUT_TO_ASK else max(poll, self.poll))
        raise AirflowError(f"{dag_id} {run_id}: {task_id} not awaiting input after {timeout:.0f} s")

    def respond(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        option: str,
        comment: str = "",
        poll: float = 2.0,
    ) -> dict:
        """Answer a pending approval as this client's user, as soon as the task is parked.

        When the API answers that the database was busy, the answer may or may not have been
        taken: the question is read again, and the answer is sent again only if nobody answered."""
        self.wait_for_approval(dag_id, run_id, task_id, poll=poll)
        path = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"
        for attempt in range(1, BUSY_ATTEMPTS + 1):
            try:
                return self.request(
                    "PATCH", path, json={"chosen_options": [option], "params_input": {"comment": comment}}
                )
            except AirflowError as exc:
                if not _database_busy(exc) or attempt == BUSY_ATTEMPTS:
                    raise
                detail = self.request("GET", path)
                if detail.get("response_received"):
                    by = (detail.get("responded_by_user") or {}).get("id")
                    if by == self.username and detail.get("chosen_options") == [option]:
                        return detail  # the first attempt was taken
                    raise
                time.sleep(attempt)
        raise AssertionError("unreachable")


# States of an approval task just before it parks for input: from here it asks within a second.
ABOUT_TO_ASK = ("queued", "running")


def _same_instant(a: str, b: str) -> bool:
    parse = lambda v: datetime.fromisoformat(v.replace("Z", "+00:00"))  # noqa: E731
    return parse(a) == parse(b)
