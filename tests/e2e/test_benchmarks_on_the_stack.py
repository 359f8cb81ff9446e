"""The benchmarks of ``bench/`` that run on a stack (``make bench``, docs/PERFORMANCE.md), each run
here at its smallest size on this stack (``--stack-from-env``: its DAGs folder holds the no-op
twins), so that none of them can rot: each runs end to end as ``make bench`` runs it and prints its
figures, and what a figure rests on is checked (the runs it times succeeded, the partitions they
wrote, the rows the servers answered)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import short_jvm

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import bench_stack  # noqa: E402

# A day no other test lands: the day pipeline's measured day, then the day online scoring is
# asked about (its requests are logged under that day: the serving tests read other days' logs).
DAY = "2013-01-20"
MONTH = "2013-02-01"  # the use case ends on 2013-02-02 on this stack (conftest.LAST_DAY)


def _bench(*args: str, timeout: float = 600) -> str:
    env = dict(os.environ, JAVA_TOOL_OPTIONS=short_jvm.OPTIONS)
    done = subprocess.run(
        [sys.executable, *args, "--stack-from-env"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    print(done.stdout)  # the benchmark's figures, in the test's report
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _written(stack, dataset: str, ds: str) -> bool:
    return any((Path(stack["MLCYCLE_DATA_ROOT"]) / dataset / f"ds={ds}").glob("*.parquet"))


def _training_paused(admin) -> bool:
    return admin.request("GET", "dags/air_time_training")["is_paused"]


@pytest.fixture
def quiet(admin):
    """The stack with nothing running before a smoke run is timed: what an earlier test started
    (a champion's rescoring, a chain an earlier benchmark began) is not the benchmark's cost."""
    bench_stack.quiet(admin)


@pytest.fixture(scope="module")
def day_pipeline(stack, admin, approver, data_days) -> tuple[str, float]:
    """What the day pipeline benchmark printed for ``DAY`` (run once: a logical date has one run)
    and how long it took, with the champion of the moment (one trained and approved if there is
    none, as ``champion``)."""
    from stack_state import champion as champion_now
    from stack_state import train_and_answer

    if champion_now(stack) is None:
        train_and_answer(admin, approver, "Approve", comment="a champion to start from")
    bench_stack.quiet(admin)  # the new champion's rescoring of the month is the set-up's work
    began = time.monotonic()
    printed = _bench(
        "bench/day_pipeline.py", "--repeat", "1", "--preload", "on", "--engine", "connect", "--first-day", DAY
    )
    return printed, time.monotonic() - began


def test_day_pipeline_takes_a_day_through_the_real_chain_and_its_twin(
    stack, admin, champion, day_pipeline, smoke_seconds
):
    printed, seconds = day_pipeline
    smoke_seconds(seconds)
    line = re.search(
        rf"^{DAY}: real\s+([\d.]+) s \(Spark tasks\s+([\d.]+) s\)\s+no-op twin\s+([\d.]+) s\s+ratio ([\d.]+)$",
        printed,
        re.M,
    )
    assert line, printed
    real, spark, twin, ratio = map(float, line.groups())
    assert 0 < spark < real and twin > 0 and abs(ratio - real / twin) < 0.02 * ratio  # of rounded figures
    # where a run's time goes: the scheduler's wait before its first task is part of it
    runs = {
        (m[1], m[2]): (float(m[3]), float(m[4]))
        for m in re.finditer(r"^  (data|scoring|monitoring) run, queued to (end|started)\s+([\d.]+)\s+([\d.]+)$", printed, re.M)
    }
    parts = ("data", "scoring", "monitoring")
    assert set(runs) == {(p, e) for p in parts for e in ("end", "started")}, printed
    assert all(runs[(p, "started")][k] <= runs[(p, "end")][k] for p in parts for k in (0, 1)), runs
    # the real day went through the chain: its partition, the champion's predictions, its monitoring
    assert all(
        _written(stack, table, DAY)
        for table in ("features", "models/air_time/predictions", "models/air_time/monitoring")
    )
    twin_runs = admin.dag_runs("twin_monitoring", limit=100)
    assert any(r["state"] == "success" for r in twin_runs)
    assert "real / twin:" in printed and not _training_paused(admin)  # left as it was found


def test_serving_answers_the_same_flights_on_both_servers(stack, champion, day_pipeline, quiet, smoke_run):
    with smoke_run():
        printed = _bench(
            "bench/serving.py", "--rounds", "1", "--requests", "4", "--clients", "1", "4", "--batches", "1",
            "--day", DAY,
        )  # fmt: skip
    head = re.search(rf"air_time v(\d+), (\d+) flights of {DAY} \(of (\d+):", printed)
    assert head, printed
    version, answered, landed = map(int, head.groups())
    assert version == champion
    started = re.search(r"^mlflow models serve answering ([\d.]+) s after its start$", printed, re.M)
    assert started and float(started[1]) > 0, printed
    csv = Path(stack["MLCYCLE_DATA_ROOT"]) / "landing" / "flights" / f"ds={DAY}" / "flights.csv"
    assert landed == sum(1 for _ in csv.open()) - 1 and 0 < answered <= landed
    rows = re.findall(
        r"^one flight, (\d+) clients, (p50|p99)\s+([\d.]+) ms\s+([\d.]+) ms\s+([\d.]+)x$", printed, re.M
    )
    assert {(c, q) for c, q, *_ in rows} == {(c, q) for c in ("1", "4") for q in ("p50", "p99")}
    for *_, ours, stock, ratio in rows:
        assert float(ours) > 0 and abs(float(ratio) - float(stock) / float(ours)) < 0.06 * float(ratio) + 0.05
    assert re.search(r"^batches of 1,000: rows/s\s+[\d,]+\s+[\d,]+\s+[\d.]+x$", printed, re.M), printed


def test_backfill_growth_backfills_a_day_of_the_data_dag(stack, admin, champion, quiet, smoke_run):
    with smoke_run():
        printed = _bench("bench/backfill_growth.py", "--sizes", "1", "--data-only", "--start", MONTH)
    line = re.search(r"^\s+1 days: data\s+([\d.]+) s", printed, re.M)
    assert line and float(line[1]) > 0, printed
    (run,) = admin.dag_runs(
        "flights_data", logical_date_gte=f"{MONTH}T00:00:00Z", logical_date_lte=f"{MONTH}T00:00:00Z"
    )
    assert run["state"] == "success" and run["run_type"] == "backfill"
    assert _written(stack, "features", MONTH)
    # the chain was held for the measurement, and is unpaused again
    assert not any(
        admin.request("GET", f"dags/{d}")["is_paused"] for d in ("air_time_scoring", "air_time_monitoring")
    )


def test_backfill_year_runs_a_month_in_airflow_and_in_one_job_alike(stack, admin, champion, quiet, smoke_run):
    with smoke_run():
        printed = _bench("bench/backfill_year.py", "--start", MONTH, "--months", "1")
    assert f"{MONTH} .. 2013-02-02: 2 days, 1 month runs" in printed, printed
    rounds = {
        m[1]: json.loads(m[2]) for m in re.finditer(r"^round 1 (airflow|one_job): (\{.*\})$", printed, re.M)
    }
    assert set(rounds) == {"airflow", "one_job"}, printed
    every_day = {"features": 2, "predictions": 2, "monitoring": 2}
    assert rounds["airflow"]["written"] == every_day and rounds["one_job"]["written"] == every_day
    assert rounds["airflow"]["runs"] == 1 and rounds["airflow"]["air_time_scoring"] >= 1
    ratio = re.search(r"^Airflow / one job: ([\d.]+)x", printed, re.M)
    airflow_s, one_job_s = rounds["airflow"]["seconds"], rounds["one_job"]["seconds"]
    assert ratio and abs(float(ratio[1]) - airflow_s / one_job_s) < 0.01, printed
    # the one job wrote into a data root of its own: the stack's days are the backfill's
    assert Path(rounds["one_job"]["root"]) != Path(stack["MLCYCLE_DATA_ROOT"])
    assert not _training_paused(admin)
