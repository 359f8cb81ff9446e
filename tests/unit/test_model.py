"""The flights pipeline on a frame small enough to reason about."""

from __future__ import annotations

import random

import pytest

from spark_jobs.flights import model
from spark_jobs.flights.project import CATEGORICAL, LABEL, NUMERIC

pytestmark = pytest.mark.spark


def _rows(n: int, dests: dict[str, float], seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        dest = rng.choice(sorted(dests))
        row = {c: rng.choice(["AA", "B6", "UA"]) if c == "carrier" else "JFK" for c in CATEGORICAL}
        row.update({c: float(rng.randint(0, 20)) for c in NUMERIC})
        distance = dests[dest]
        row.update(
            dest=dest,
            engine="Turbo-fan",
            distance=distance,
            route_air_time_mean=distance / 8 + 15,
            carrier_route_air_time_mean=distance / 8 + 15,
        )
        row[LABEL] = distance / 8 + 15 + rng.uniform(-3, 3)
        row["flight_id"] = f"f{i}"
        rows.append(row)
    return rows


def test_a_destination_never_seen_is_judged_by_its_distance_and_history(spark):
    """A short hop to a new airport must not be predicted like a long flight: the model does not
    read ``dest`` itself, only what describes the route (distance, the route's history)."""
    train = spark.createDataFrame(_rows(400, {"BOS": 187.0, "LAX": 2475.0, "SFO": 2586.0}))
    fitted = model.make_pipeline().fit(train)
    hop = {**_rows(1, {"BOS": 187.0})[0], "flight_id": "new"}
    seen = spark.createDataFrame([hop])
    unseen = spark.createDataFrame([{**hop, "dest": "ACK", "flight_id": "ack"}])
    predicted_seen = fitted.transform(seen).first()["prediction"]
    predicted_unseen = fitted.transform(unseen).first()["prediction"]
    assert predicted_unseen == pytest.approx(predicted_seen)
    assert abs(predicted_unseen - (187.0 / 8 + 15)) < 10  # a 38-minute hop, not a 5-hour flight
    assert "dest" not in model.feature_columns() and "distance" in model.feature_columns()
