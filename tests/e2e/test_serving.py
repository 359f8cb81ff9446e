"""The stack's scoring service (started by the launcher beside Airflow and MLflow): every flight of
a day, asked as a scheduler would ask it (carrier, number, tail, airports, scheduled departure),
gets the prediction the batch scoring of the same version wrote, and every request is logged."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
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
    rescore = admin.trigger("air_time_scoring", conf={"days": [DAY], "rescore": True})
    assert admin.wait_for_run("air_time_scoring", rescore, timeout=600) == "success"
    batch = pd.read_parquet(data_root / "models" / "air_time" / "predictions" / f"ds={DAY}")
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
    assert len(logged) >= len(landed) and {r["version"] for r in logged} == {champion}
