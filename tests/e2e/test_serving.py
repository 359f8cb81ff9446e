"""The stack's scoring service (started by the launcher beside Airflow and MLflow): every flight of
a day, asked as a scheduler would ask it (carrier, number, tail, airports, scheduled departure),
gets the prediction the batch scoring of the same version wrote, and every request is logged."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

DAY = "2013-01-02"  # a day of the backfill every e2e test starts from


def _get(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def _post(url: str, token: str, body) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _request(row) -> dict:
    hhmm = int(row.sched_dep_time)
    return {
        "carrier": row.carrier,
        "flight": int(row.flight),
        "tailnum": None if not isinstance(row.tailnum, str) else row.tailnum,
        "origin": row.origin,
        "dest": row.dest,
        "sched_dep": f"{DAY}T{hhmm // 100:02d}:{hhmm % 100:02d}",
    }


def test_every_flight_of_a_day_is_answered_as_the_batch_scored_it(stack, admin, champion):
    import pandas as pd

    data_root = Path(stack["MLCYCLE_DATA_ROOT"])
    scored = data_root / "models" / "air_time" / "predictions" / f"ds={DAY}"
    if not scored.is_dir() or set(pd.read_parquet(scored)["model_version"].astype(str)) != {str(champion)}:
        # the day scored by the champion of the moment (an earlier test may have scored it)
        rescore = admin.trigger("air_time_scoring", conf={"days": [DAY], "rescore": True})
        assert admin.wait_for_run("air_time_scoring", rescore, timeout=600) == "success"
    batch = pd.read_parquet(scored)
    assert set(batch["model_version"].astype(str)) == {str(champion)}

    service, token = (
        stack["MLCYCLE_SERVING_URL"],
        Path(stack["MLCYCLE_SERVING_TOKEN_FILE"]).read_text().strip(),
    )
    deadline = time.monotonic() + 60
    while _get(f"{service}/health").get("models", {}).get("air_time", {}).get("version") != champion:
        assert time.monotonic() < deadline, _get(f"{service}/health")
        time.sleep(0.5)

    landed = pd.read_csv(data_root / "landing" / "flights" / f"ds={DAY}" / "flights.csv", na_values=["NA"])
    rows = list(landed.itertuples())
    served = {}
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        answer = _post(
            f"{service}/v1/models/air_time/predict", token, {"flights": [_request(r) for r in chunk]}
        )
        assert (answer["model"], answer["version"]) == ("air_time", champion)
        for row, prediction in zip(chunk, answer["predictions"], strict=True):
            key = f"{row.carrier}{int(row.flight)}-{row.origin}-{DAY.replace('-', '')}-{int(row.sched_dep_time):04d}"
            served[key] = prediction
    both = batch.assign(served=batch["flight_id"].map(served))
    assert len(served) == len(batch) == len(landed) > 500
    assert both["served"].notna().all()
    difference = (both["served"] - both["prediction"]).abs().max()
    print(f"{len(both)} flights of {DAY}: largest difference from the batch {difference:.2e}")
    assert difference < 1e-6

    logged = [
        json.loads(line)
        for path in (data_root / "models" / "air_time" / "requests" / f"ds={DAY}").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert sum(r["flights"] for r in logged) >= len(landed) and {r["version"] for r in logged} == {champion}
    logged_ids = {flight_id for r in logged for flight_id in r["fields"]["flight_id"]}
    assert logged_ids == set(batch["flight_id"])  # joinable with outcomes


def test_a_steady_stream_goes_through_a_rollback_approved_in_airflow_without_an_error(
    stack, admin, approver, former_champion, paused
):
    """Requests every few milliseconds while a person approves a rollback in Airflow: no request
    fails, every answer before the switch is the old champion's and every one after it the new
    one's, a batch is answered by one version, and the switch comes within seconds of the move."""
    import pandas as pd
    from stack_state import ROLLBACK, answer_at_once
    from stack_state import champion as champion_now

    paused("air_time_scoring", "air_time_monitoring")
    data_root = Path(stack["MLCYCLE_DATA_ROOT"])
    landed = pd.read_csv(data_root / "landing" / "flights" / f"ds={DAY}" / "flights.csv", na_values=["NA"])
    batch = [_request(r) for r in list(landed.itertuples())[:5]]
    service, token = (
        stack["MLCYCLE_SERVING_URL"],
        Path(stack["MLCYCLE_SERVING_TOKEN_FILE"]).read_text().strip(),
    )
    before, target = champion_now(stack), former_champion
    deadline = time.monotonic() + 60
    while _get(f"{service}/health")["models"]["air_time"]["version"] != before:
        assert time.monotonic() < deadline
        time.sleep(0.5)

    answers: list[tuple[float, int, str]] = []
    errors: list[str] = []
    stop = threading.Event()

    def stream() -> None:
        while not stop.is_set():
            try:
                answer = _post(f"{service}/v1/models/air_time/predict", token, {"flights": batch})
                answers.append((time.time(), answer["version"], answer["request_id"]))
            except Exception as exc:  # noqa: BLE001 (every failure is counted)
                errors.append(repr(exc))
            time.sleep(0.005)

    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    try:
        run_id = admin.trigger(ROLLBACK, conf={"version": target, "reason": "the stream test"})
        answer_at_once(approver, ROLLBACK, run_id, "Approve", comment="back to the former champion")
        assert admin.wait_for_run(ROLLBACK, run_id, timeout=600) == "success"
        deadline = time.monotonic() + 60
        while not answers or answers[-1][1] != target:
            assert time.monotonic() < deadline, answers[-3:]
            time.sleep(0.1)
        time.sleep(2)  # and it stays there
    finally:
        stop.set()
        sender.join(timeout=30)

    assert not errors, errors[:5]
    versions = [v for _, v, _ in answers]
    first_new = versions.index(target)
    assert set(versions[:first_new]) == {before} and set(versions[first_new:]) == {target}
    assert len(versions) > 100
    # the alias moves inside the promote task: from its start to the first answer of the new one
    promote = admin.task_instances(ROLLBACK, run_id)["promote"]
    moved = datetime.fromisoformat(promote["start_date"].replace("Z", "+00:00")).timestamp()
    switch = answers[first_new][0] - moved
    print(f"{len(answers)} requests, 0 errors; the first answer of v{target} {switch:.1f} s after the move")
    assert switch < 10
    logged = [
        json.loads(line)
        for path in (data_root / "models" / "air_time" / "requests" / f"ds={DAY}").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    by_request: dict[str, set[int]] = {}
    for record in logged:
        by_request.setdefault(record["request_id"], set()).add(record["version"])
    streamed = {rid for _, _, rid in answers}
    assert streamed <= set(by_request)
    assert all(len(by_request[rid]) == 1 for rid in streamed)  # no batch answered by two versions


def _resident(service: str) -> int:
    with urllib.request.urlopen(f"{service}/metrics", timeout=10) as response:
        text = response.read().decode()
    return int(
        next(
            line.split()[1] for line in text.splitlines() if line.startswith("process_resident_memory_bytes ")
        )
    )


def test_a_minute_of_32_clients_gets_no_error_and_the_service_memory_stays_flat(stack, champion):
    """A bounded load: 32 clients on 127.0.0.1 for a minute (each at most 4 requests a second, and
    at most 10,000 requests in all), one flight each, against the stack's service: no error, and
    its resident memory after the first 15 s moves by less than 5 % (and 8 MiB)."""
    import pandas as pd

    service = stack["MLCYCLE_SERVING_URL"]
    assert service.startswith("http://127.0.0.1:")
    token = Path(stack["MLCYCLE_SERVING_TOKEN_FILE"]).read_text().strip()
    data_root = Path(stack["MLCYCLE_DATA_ROOT"])
    landed = pd.read_csv(data_root / "landing" / "flights" / f"ds={DAY}" / "flights.csv", na_values=["NA"])
    requests = [_request(r) for r in landed.itertuples()]
    deadline = time.monotonic() + 60
    while _get(f"{service}/health").get("models", {}).get("air_time", {}).get("version") is None:
        assert time.monotonic() < deadline
        time.sleep(0.5)

    clients, seconds, limit, pace = 32, 60.0, 10_000, 0.25
    sent, errors, latencies = [0], [], []
    lock = threading.Lock()
    start = time.monotonic()
    end = start + seconds

    def client(n: int) -> None:
        i = n
        while time.monotonic() < end:
            with lock:
                if sent[0] >= limit:
                    return
                sent[0] += 1
            began = time.monotonic()
            try:
                answer = _post(f"{service}/v1/models/air_time/predict", token, requests[i % len(requests)])
                assert answer["model"] == "air_time" and isinstance(answer["prediction"], float)
                latencies.append(time.monotonic() - began)
            except Exception as exc:  # noqa: BLE001 (every failure is counted)
                errors.append(repr(exc))
            i += clients
            time.sleep(max(0.0, pace - (time.monotonic() - began)))

    memory: list[tuple[float, int]] = []
    workers = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for worker in workers:
        worker.start()
    while time.monotonic() < end:
        memory.append((time.monotonic() - start, _resident(service)))
        time.sleep(5)
    for worker in workers:
        worker.join(timeout=30)
    memory.append((time.monotonic() - start, _resident(service)))

    assert not errors, errors[:5]
    assert len(latencies) == sent[0] > 32 * 60 * 3  # near 4 a second per client for the minute
    settled = [rss for at, rss in memory if at >= 15]
    growth = max(settled) - min(settled)
    latencies.sort()
    print(
        f"{len(latencies)} requests from {clients} clients in {seconds:.0f} s, 0 errors; "
        f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms; "
        f"resident memory {min(settled) / 2**20:.1f} to {max(settled) / 2**20:.1f} MiB after 15 s"
    )
    assert growth < min(0.05 * min(settled), 8 * 2**20), memory


def test_the_registry_going_down_leaves_the_loaded_versions_serving(stack, champion):
    """MLflow killed outright: the service keeps answering with the versions it holds, and
    ``/health`` says the registry does not answer; once MLflow is back, it is followed again."""
    from mlcycle.devstack import stack as launcher

    service = stack["MLCYCLE_SERVING_URL"]
    token = Path(stack["MLCYCLE_SERVING_TOKEN_FILE"]).read_text().strip()
    data_root = Path(stack["MLCYCLE_DATA_ROOT"])
    landed = pd_read_landed(data_root)
    flight = _request(next(landed.itertuples()))
    deadline = time.monotonic() + 60
    while _get(f"{service}/health")["models"]["air_time"]["version"] != champion:
        assert time.monotonic() < deadline
        time.sleep(0.5)

    launcher.kill("mlflow")
    try:
        deadline = time.monotonic() + 60
        while _get(f"{service}/health")["registry"] == "reachable":
            assert time.monotonic() < deadline, "the service did not notice the registry was gone"
            time.sleep(0.5)
        health = _get(f"{service}/health")
        assert "did not answer" in health["registry"], health
        assert health["models"]["air_time"]["version"] == champion
        for _ in range(20):  # answers go on, from the version held
            answer = _post(f"{service}/v1/models/air_time/predict", token, flight)
            assert (answer["version"], type(answer["prediction"])) == (champion, float)
    finally:
        launcher.start()
    deadline = time.monotonic() + 60
    while _get(f"{service}/health")["registry"] != "reachable":
        assert time.monotonic() < deadline, _get(f"{service}/health")
        time.sleep(0.5)


def pd_read_landed(data_root: Path):
    import pandas as pd

    return pd.read_csv(data_root / "landing" / "flights" / f"ds={DAY}" / "flights.csv", na_values=["NA"])
