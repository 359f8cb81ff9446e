"""The model path end to end on real Spark and a real MLflow server: refuse a window whose gates
did not pass -> train (the run records the partitions and their gate verdicts) -> register
challenger -> promote -> retrain against the champion -> reject -> score -> monitor -> archive the
retired champion.

Each job runs through its own entry point, ``main(argv)``, in this process on the test session
(the classic session has the JVM MLflow's Spark flavour needs to log and load a model); a fresh
spark-submit per job would cost a JVM start each. ``test_data_path.py`` runs entry points under
spark-submit, and the e2e tier submits these same jobs from the DAGs."""

from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from mlcycle import archival, registry
from mlcycle.evaluation import Rules
from mlcycle.evaluation import evidence as evidence_of
from mlcycle.quality.gates import GATE_FAILED_EXIT, GateResult, result_path, write_result
from spark_jobs.flights import project
from spark_jobs.flights.project import FEATURE_TABLE_COLUMNS

pytestmark = pytest.mark.integration

MODEL = "flights_air_time_test"
DAYS = [(date(2013, 1, 1) + timedelta(days=i)).isoformat() for i in range(4)]
ROWS_PER_DAY = 300
QUARANTINED_PER_DAY = 3  # raw flight rows a row rule set aside, as the raw gate records them
DAG_ID = "air_time_training"

DESTS = {"LAX": 2475.0, "ATL": 762.0, "ORD": 719.0, "MIA": 1089.0, "BOS": 187.0, "DEN": 1620.0}
CARRIERS = ["AA", "DL", "UA", "B6"]
ORIGINS = ["JFK", "LGA", "EWR"]


def feature_rows() -> list[tuple]:
    rng = random.Random(13)
    rows = []
    for ds in DAYS:
        day = date.fromisoformat(ds)
        for i in range(ROWS_PER_DAY):
            dest = rng.choice(list(DESTS))
            distance = DESTS[dest]
            cancelled = i % 50 == 0
            air_time = None if cancelled else distance / 7.0 + 20.0 + rng.gauss(0, 5)
            weather_missing = i % 40 == 0
            rows.append(
                (
                    f"{ds}-{i:04d}",
                    day,
                    air_time,
                    None if cancelled else float((i * 7) % 60 - 10),  # arr_delay
                    rng.choice(CARRIERS),
                    rng.choice(ORIGINS),
                    dest,
                    None if i % 30 == 0 else rng.choice(["Turbo-fan", "Turbo-jet"]),
                    distance,
                    float(5 + i % 18),
                    float(day.month),
                    float(day.isoweekday() % 7 + 1),
                    float(abs((day - date(2013, 1, 1)).days)),
                    None if weather_missing else rng.uniform(20, 45),
                    None if weather_missing else rng.uniform(0, 20),
                    None if weather_missing else rng.choice([0.0, 0.0, 0.1]),
                    None if weather_missing else 10.0,
                    None if ds == DAYS[0] else distance / 7.0 + 20.0,
                    0.0 if ds == DAYS[0] else float(rng.randint(5, 60)),
                    None if ds == DAYS[0] else distance / 7.0 + 20.0 + rng.gauss(0, 2),
                    None if i % 30 == 0 else float(rng.randint(1, 25)),
                    None if i % 30 == 0 else float(rng.choice([20, 55, 149, 182])),
                )
            )
    return rows


FEATURE_SCHEMA = (
    "flight_id string, ds date, air_time double, arr_delay double, carrier string, origin string, dest string, "
    "engine string, distance double, sched_dep_hour double, month double, day_of_week double, "
    "days_to_holiday double, temp double, wind_speed double, precip double, visib double, "
    "route_air_time_mean double, route_flights double, carrier_route_air_time_mean double, "
    "plane_age double, seats double"
)


# Where each column of the feature table sits in a row of ``feature_rows()``.
AT = {name: i for i, name in enumerate(FEATURE_TABLE_COLUMNS)}


def write_verdicts(root: str, days: list[str], *, failed=(), missing=()) -> None:
    """The gate verdicts the data path leaves for each day (``gates/<gate>/ds=D.json``): passed,
    but for the (gate, day) pairs in ``failed``, and none for those in ``missing``."""
    for ds in days:
        for gate in ("raw_flights", "raw_weather", "features"):
            if (gate, ds) in missing:
                continue
            success = (gate, ds) not in failed
            path = result_path(root, gate, ds)
            if gate == "raw_flights":  # with its rows split into validated and quarantined
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                verdict = {
                    "ds": ds,
                    "gate": gate,
                    "success": success,
                    "rows": ROWS_PER_DAY + QUARANTINED_PER_DAY,
                    "validated": ROWS_PER_DAY,
                    "quarantined": QUARANTINED_PER_DAY,
                    "reconciled": True,
                    "failed": [],
                    "quarantine": f"{root}/quarantine/flights/ds={ds}",
                }
                Path(path).write_text(json.dumps(verdict))
            else:  # as ``write_result`` keeps them
                result = GateResult(success=success, suite=gate, name=gate, evaluated=5)
                write_result(result, path, ds=ds, rows=ROWS_PER_DAY if gate == "features" else 24)


@pytest.fixture(scope="module")
def data_root(spark, tmp_path_factory):
    from spark_jobs.common import overwrite_partitions

    root = str(tmp_path_factory.mktemp("data"))
    df = spark.createDataFrame(feature_rows(), FEATURE_SCHEMA)
    assert tuple(df.columns) == FEATURE_TABLE_COLUMNS
    overwrite_partitions(df, root, "features")
    write_verdicts(root, DAYS)
    return root


def run_job(capsys, job: str, *args: str, expect: int = 0) -> str:
    """Run a job's ``main(argv)`` here; its stdout, with its stderr when it was expected to fail.
    (The tracking server is the one ``MLFLOW_TRACKING_URI`` names, as under spark-submit.)"""
    import importlib

    main = importlib.import_module(f"spark_jobs.{job.removesuffix('.py')}").main
    earlier = capsys.readouterr()
    started = time.monotonic()
    try:
        code = main(list(args))
    finally:
        elapsed = time.monotonic() - started
        captured = capsys.readouterr()
        # put back into the test's captured output, which a failure report shows
        print(f"{earlier.out}{job} {' '.join(args)}: {elapsed:.1f}s\n{captured.out}", end="")
        print(earlier.err + captured.err, end="", file=sys.stderr)
    assert code == expect, (
        f"{job} exited {code}, not {expect}:\n{captured.out[-3000:]}\n{captured.err[-6000:]}"
    )
    return captured.out if expect == 0 else captured.out + captured.err


def train(capsys, data_root: str, airflow_run_id: str, expect: int = 0, grid: str = "full") -> str:
    output = run_job(
        capsys,
        "training.py",
        "--grid",
        grid,
        "--start",
        DAYS[0],
        "--end",
        DAYS[-1],
        "--holdout-days",
        "1",
        "--data-root",
        data_root,
        "--model",
        "air_time",
        "--airflow-run-id",
        airflow_run_id,
        expect=expect,
    )
    return output if expect else output.strip().splitlines()[-1].removeprefix("mlflow_run_id=")


def assert_served_as_scored(
    uri: str, registered: str, version: int, data_root, ds: str, records, cache
) -> None:
    """Every flight of a scored day: the serving engine's answer for the version equals the batch
    prediction (to 1e-6)."""
    import pandas as pd

    from mlcycle.serving.versions import load_version

    engine = load_version(uri, registered, version, Path(cache) / "served")
    features = pd.read_parquet(Path(data_root) / "features" / f"ds={ds}")
    batch = pd.read_parquet(Path(records) / "predictions" / f"ds={ds}")
    served = pd.DataFrame({"flight_id": features["flight_id"], "served": engine.predict(features)})
    both = batch.merge(served, on="flight_id", validate="one_to_one")
    assert len(both) == len(batch) == len(features) > 0
    assert (both["served"] - both["prediction"]).abs().max() < 1e-6


def test_model_path(spark, data_root, mlflow_server, tmp_path, monkeypatch, capsys, usecases_copy):
    from mlflow import MlflowClient

    from mlcycle.specs import find_model

    uri = mlflow_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # what each job's own MLflow client reads
    # the air_time model of the repository, registered under a name of this test's own
    monkeypatch.setenv("MLCYCLE_USECASES", str(usecases_copy(tmp_path / "catalog", {"air_time": MODEL})))
    model = find_model("air_time")
    rules = Rules.of(model)
    records = f"{data_root}/models/air_time"
    client = MlflowClient(tracking_uri=uri)

    # 0. A window whose data did not pass is refused by the job itself, before any run exists.
    refused_root = str(tmp_path / "refused")
    write_verdicts(refused_root, DAYS, failed={("features", DAYS[1])}, missing={("raw_flights", DAYS[2])})
    for ds in DAYS:
        (tmp_path / "refused" / "features" / f"ds={ds}").mkdir(parents=True)
    output = train(capsys, refused_root, "manual__refused", expect=GATE_FAILED_EXIT)
    assert f"train refused: cannot train on {DAYS[0]}..{DAYS[-1]}:" in output
    assert (
        f"features gate failed for {DAYS[1]} (see {result_path(refused_root, 'features', DAYS[1])})" in output
    )
    assert f"raw_flights gate missing for {DAYS[2]}" in output
    assert client.get_experiment_by_name(MODEL) is None

    # 1. First training: no champion yet. It leaves nothing in the engine's cache, which a
    # long-lived Connect server shares between every job it runs.
    spark.catalog.clearCache()
    run_1 = train(capsys, data_root, "manual__2013-01-05")
    assert spark._jsparkSession.sharedState().cacheManager().isEmpty()
    assert registry.find_training_run(uri, MODEL, "manual__2013-01-05") == run_1
    data = client.get_run(run_1).data
    assert data.metrics["train_rows"] > 0 and data.metrics["val_rows"] > 0
    assert 0 < data.metrics["val_mae"] < 30
    assert "champion_val_mae" not in data.metrics
    assert data.tags["airflow.run_id"] == "manual__2013-01-05"
    assert data.params["window_start"] == DAYS[0] and data.params["val_days"] == f"{DAYS[-1]}..{DAYS[-1]}"
    assert {"candidate_0_mae", "candidate_1_mae"} <= set(data.metrics)

    # The run records which partitions it read and that each passed its gates.
    assert data.tags["data.gates_passed"] == "true"
    assert data.params["data.partitions"] == f"{DAYS[0]}..{DAYS[-1]}" and data.params["data.days"] == "4"
    assert data.metrics["data.rows_validated"] == len(DAYS) * ROWS_PER_DAY
    assert data.metrics["data.rows_quarantined"] == len(DAYS) * QUARANTINED_PER_DAY
    assert "data_quality.json" in {a.path for a in client.list_artifacts(run_1)}
    quality = json.loads(
        Path(client.download_artifacts(run_1, "data_quality.json", str(tmp_path))).read_text()
    )
    assert list(quality["days"]) == DAYS
    for ds in DAYS:
        assert set(quality["days"][ds]) == {"raw_flights", "raw_weather", "features"}
        assert all(entry["success"] is True for entry in quality["days"][ds].values()), quality["days"][ds]
        assert quality["days"][ds]["raw_flights"]["validated"] == ROWS_PER_DAY
    assert quality["totals"]["all_passed"] is True and quality["totals"]["days"] == len(DAYS)

    # ... the code that trained it, and its error per carrier (no champion to compare with yet).
    assert len(data.tags["code.version"]) == 40 and data.tags["code.dirty"] in ("true", "false")
    evaluation = json.loads(
        Path(client.download_artifacts(run_1, "evaluation.json", str(tmp_path / "e1"))).read_text()
    )
    assert evaluation["champion_version"] is None and evaluation["val_days"] == [DAYS[-1]]
    assert (evaluation["metric"], evaluation["slice"]) == ("mae", "carrier")
    assert sum(row["rows"] for row in evaluation["per_slice"]) == data.metrics["val_rows"]
    assert all(row["champion"] is None for row in evaluation["per_slice"])
    assert "evaluation/per_slice.png" in {a.path for a in client.list_artifacts(run_1, "evaluation")}
    assert {f"val_mae.carrier.{row['value']}" for row in evaluation["per_slice"]} <= set(data.metrics)

    # Same Airflow run again: the finished run is found, nothing is trained.
    assert train(capsys, data_root, "manual__2013-01-05") == run_1
    assert len(client.search_runs([client.get_experiment_by_name(MODEL).experiment_id])) == 1

    with pytest.raises(LookupError, match="No finished training run"):
        registry.find_training_run(uri, MODEL, "never-ran")

    # 2. Register and promote the first version.
    v1 = registry.register_challenger(uri, MODEL, run_1, "manual__2013-01-05", DAG_ID)
    mv = client.get_model_version(MODEL, str(v1))
    assert client.get_model_version_by_alias(MODEL, "challenger").version == str(v1)
    assert mv.tags["status"] == "challenger" and mv.tags["airflow.run_id"] == "manual__2013-01-05"
    assert mv.tags["airflow.dag_id"] == DAG_ID
    first = evidence_of(uri, MODEL, v1, rules=rules)
    assert first["champion_version"] is None and first["auto_reject"] is False

    registry.promote(
        uri,
        MODEL,
        v1,
        decided_by="alice",
        comment="first model",
        airflow_run_id="manual__2013-01-05",
        decided_at="2013-01-05T06:00:00+00:00",
    )
    registry.promote(  # a retried task changes nothing
        uri,
        MODEL,
        v1,
        decided_by="alice",
        comment="first model",
        airflow_run_id="manual__2013-01-05",
        decided_at="2013-01-05T06:05:00+00:00",
    )
    assert registry.champion(uri, MODEL) == v1
    mv = client.get_model_version(MODEL, str(v1))
    assert mv.tags["status"] == "champion" and mv.tags["decision"] == "approved"
    assert mv.tags["decision.by"] == "alice" and mv.tags["promoted_at"] == "2013-01-05T06:00:00+00:00"
    assert "challenger" not in mv.aliases

    # 3. Second training is compared with the champion on the same validation days (one candidate:
    # the tuning was shown by the first).
    run_2 = train(capsys, data_root, "scheduled__2013-01-06", grid="smallest")
    data = client.get_run(run_2).data
    assert data.tags["champion.version"] == str(v1)
    assert data.metrics["champion_val_mae"] > 0 and data.metrics["champion_val_rmse"] > 0

    v2 = registry.register_challenger(uri, MODEL, run_2, "scheduled__2013-01-06", DAG_ID)
    assert registry.register_challenger(uri, MODEL, run_2, "scheduled__2013-01-06", DAG_ID) == v2
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == 2
    ev = evidence_of(uri, MODEL, v2, rules=replace(rules, min_improvement=0.0), metrics=("mae", "rmse"))
    assert ev["champion_version"] == v1
    # Same window, same rows, same holdout day: v1 scored on run 2's validation rows gives the error
    # run 1 measured for it, which only holds if both runs validated on the same days.
    run_1_mae = client.get_run(run_1).data.metrics["val_mae"]
    run_2_mae = client.get_run(run_2).data.metrics["val_mae"]
    assert data.metrics["champion_val_mae"] == pytest.approx(run_1_mae)
    assert ev["challenger_val_mae"] == run_2_mae
    assert ev["champion_val_mae"] == data.metrics["champion_val_mae"]
    assert ev["delta"] == pytest.approx(run_2_mae - run_1_mae)
    assert ev["auto_reject"] == (ev["delta"] > 0)
    assert f"challenger v{v2}" in ev["markdown"] and f"champion v{v1}" in ev["markdown"]
    assert evidence_of(uri, MODEL, v2, rules=replace(rules, min_improvement=1e9))["auto_reject"] is True
    # per carrier, both models on the same rows; a carrier far worse is rejected by rule
    assert ev["per_slice"] and all(row["champion"] is not None for row in ev["per_slice"])
    worst = max(row["delta"] for row in ev["per_slice"])
    lenient = evidence_of(
        uri,
        MODEL,
        v2,
        rules=replace(rules, min_improvement=-1e9, slice_tolerance=worst + 1, min_slice_rows=1),
    )
    assert lenient["auto_reject"] is False and lenient["reasons"] == []
    strict = evidence_of(
        uri,
        MODEL,
        v2,
        rules=replace(rules, min_improvement=-1e9, slice_tolerance=worst - 1e-6, min_slice_rows=1),
    )
    assert strict["auto_reject"] is True and strict["reasons"][0].startswith("slice_tolerance: carrier")
    assert "Per carrier" in strict["markdown"] and "Automatic rejection" in strict["markdown"]

    # 4. Rejection: the champion stays, the challenger alias goes.
    registry.record_rejection(
        uri,
        MODEL,
        v2,
        decided_by="bob",
        comment="not convincing",
        airflow_run_id="scheduled__2013-01-06",
        decided_at="2013-01-06T07:00:00+00:00",
    )
    assert registry.champion(uri, MODEL) == v1
    mv2 = client.get_model_version(MODEL, str(v2))
    assert mv2.tags["status"] == "rejected" and mv2.tags["decision"] == "rejected"
    assert mv2.tags["decision.by"] == "bob" and mv2.aliases == []

    # 5. Score a day with the champion and monitor it.
    run_job(
        capsys,
        "scoring.py",
        "--ds",
        DAYS[-1],
        "--data-root",
        data_root,
        "--model",
        "air_time",
        "--model-uri",
        f"models:/{MODEL}/{v1}",
        "--model-version",
        str(v1),
        "--airflow-run-id",
        "scheduled__2013-01-04",
    )
    predictions = spark.read.parquet(f"{records}/predictions/ds={DAYS[-1]}")
    assert not Path(f"{data_root}/predictions").exists()  # the model's own records only
    assert set(predictions.columns) == {
        "flight_id",
        "carrier",
        "origin",
        "dest",
        "prediction",
        "model_name",
        "model_version",
        "airflow_run_id",
    }
    assert predictions.count() == ROWS_PER_DAY
    assert {r.model_version for r in predictions.select("model_version").distinct().collect()} == {str(v1)}
    assert predictions.where("prediction IS NULL").count() == 0
    # the serving engine, from the registry without a JVM, answers every flight as the batch did
    assert_served_as_scored(uri, MODEL, v1, data_root, DAYS[-1], records, tmp_path)
    gate = json.loads(Path(f"{records}/gates/predictions/ds={DAYS[-1]}.json").read_text())
    assert (gate["success"], gate["rows"], gate["flights"], gate["failed"]) == (
        True,
        ROWS_PER_DAY,
        ROWS_PER_DAY,
        [],
    )

    def monitored() -> tuple[list, dict]:
        """The day's monitoring rows and the full metric history of each monitoring run."""
        rows = sorted(
            (r.asDict() for r in spark.read.parquet(f"{records}/monitoring/ds={DAYS[-1]}").collect()),
            key=lambda r: r["model_version"],
        )
        runs = client.search_runs([client.get_experiment_by_name(f"{MODEL}-monitoring").experiment_id])
        histories = {
            (run.info.run_id, key): [
                (m.step, m.timestamp, m.value) for m in client.get_metric_history(run.info.run_id, key)
            ]
            for run in runs
            for key in run.data.metrics
        }
        return rows, histories

    # the scoring service's log of the day: each flight asked once, answered by v1 as the batch
    # did, a waiting challenger (v2) 10 minutes longer in the shadow; and one flight asked twice
    served = {p.flight_id: p.prediction for p in predictions.collect()}
    logged = [(flight, prediction) for flight, prediction in served.items()]
    logged.append(logged[0])
    log_dir = Path(records) / "requests" / f"ds={DAYS[-1]}"
    log_dir.mkdir(parents=True)
    # (the service's lines: a request each, one flight or a batch, column by column)
    requests = [logged[:1], logged[1:100], logged[100:]]
    (log_dir / "service-1.jsonl").write_text(
        "".join(
            json.dumps(
                {"request_id": f"r{i}", "flights": len(asked), "fields": {"flight_id": [f for f, _ in asked]},
                 "version": v1, "predictions": [p for _, p in asked],
                 "shadow_version": v2, "shadow_predictions": [p + 10.0 for _, p in asked]}
            ) + "\n"
            for i, asked in enumerate(requests)
        )
    )  # fmt: skip
    run_job(capsys, "monitoring.py", "--ds", DAYS[-1], "--data-root", data_root, "--model", "air_time")
    first_rows, first_histories = monitored()
    # a re-run (backfill) of the same day gives the same partition and adds nothing to the history
    run_job(capsys, "monitoring.py", "--ds", DAYS[-1], "--data-root", data_root, "--model", "air_time")
    rows, histories = monitored()
    assert rows == first_rows
    assert histories == first_histories and all(len(h) == 1 for h in histories.values()), histories
    assert len(rows) == 1
    row = spark.read.parquet(f"{records}/monitoring/ds={DAYS[-1]}").first()
    assert row.model_version == str(v1) and row.model_name == MODEL
    assert row.n_predictions == ROWS_PER_DAY and row.n_actuals == ROWS_PER_DAY - ROWS_PER_DAY // 50
    # the errors of the day, recomputed here from the predictions and the actual air times
    key, ds, label = (AT[c] for c in ("flight_id", "ds", "air_time"))
    actual = {
        r[key]: r[label] for r in feature_rows() if r[ds].isoformat() == DAYS[-1] and r[label] is not None
    }
    errors = [p.prediction - actual[p.flight_id] for p in predictions.collect() if p.flight_id in actual]
    assert len(errors) == row.n_actuals
    assert row.mae == pytest.approx(sum(abs(e) for e in errors) / len(errors))
    assert row.rmse == pytest.approx((sum(e * e for e in errors) / len(errors)) ** 0.5)
    assert row.bias == pytest.approx(sum(errors) / len(errors)) and row.coverage == 1.0
    monitoring_runs = client.search_runs(
        [client.get_experiment_by_name(f"{MODEL}-monitoring").experiment_id],
        filter_string=f"tags.`monitoring.model_version` = '{v1}'",
    )
    assert len(monitoring_runs) == 1
    assert monitoring_runs[0].info.run_name == f"monitoring-{MODEL}-v{v1}"
    mae_history = client.get_metric_history(monitoring_runs[0].info.run_id, "mae")
    assert [m.step for m in mae_history] == [date.fromisoformat(DAYS[-1]).timetuple().tm_yday]
    assert mae_history[-1].value == pytest.approx(row.mae)
    # online: the service's answers against the same outcomes, the shadow beside the champion
    online = {r.role: r for r in spark.read.parquet(f"{records}/monitoring_online/ds={DAYS[-1]}").collect()}
    assert set(online) == {"champion", "shadow"}
    champion_row, shadow_row = online["champion"], online["shadow"]
    assert (champion_row.model_version, shadow_row.model_version) == (str(v1), str(v2))
    assert champion_row.n_requests == shadow_row.n_requests == ROWS_PER_DAY + 1
    asked = [f for f, _ in logged if f in actual]
    assert champion_row.n_actuals == len(asked)
    online_errors = [served[f] - actual[f] for f in asked]
    assert champion_row.mae == pytest.approx(sum(abs(e) for e in online_errors) / len(asked))
    assert shadow_row.mae == pytest.approx(sum(abs(e + 10.0) for e in online_errors) / len(asked))
    assert shadow_row.champion_mae == pytest.approx(champion_row.mae)  # on the same requests
    # and in v1's monitoring run beside the batch figure, at the day's step
    online_mae = client.get_metric_history(monitoring_runs[0].info.run_id, "online_mae")
    assert [(m.step, m.value) for m in online_mae] == [
        (mae_history[-1].step, pytest.approx(champion_row.mae))
    ]
    assert champion_row.champion_mae is None

    # Per carrier: the carriers' flights add up to the day, each fully covered.
    slices = spark.read.parquet(f"{records}/monitoring_slices/ds={DAYS[-1]}")
    assert {r.slice for r in slices.select("slice").distinct().collect()} == {"carrier", "origin", "dest"}
    carriers = slices.where("slice = 'carrier'").collect()
    assert sum(c.n_flights for c in carriers) == ROWS_PER_DAY
    assert sum(c.n_actuals for c in carriers) == row.n_actuals
    assert all(c.coverage == 1.0 and c.model_version == str(v1) for c in carriers)
    weighted = sum(c.mae * c.n_actuals for c in carriers) / sum(c.n_actuals for c in carriers)
    assert weighted == pytest.approx(row.mae)
    # Drift of the day against v1's training rows: one PSI per watched feature, also in MLflow.
    drift_rows = spark.read.parquet(f"{records}/drift/ds={DAYS[-1]}").collect()
    assert {d.feature for d in drift_rows} == {*project.DRIFT_NUMERIC, *project.DRIFT_CATEGORICAL}
    assert all(d.model_version == str(v1) for d in drift_rows)
    # the carrier's PSI, recomputed here from v1's training profile and the day's carriers
    profile = json.loads(
        Path(client.download_artifacts(run_1, "drift_profile.json", str(tmp_path / "p1"))).read_text()
    )
    expected_shares = profile["categorical"]["carrier"]["shares"]
    day_carriers = [r[AT["carrier"]] for r in feature_rows() if r[AT["ds"]].isoformat() == DAYS[-1]]
    day_shares = {c: day_carriers.count(c) / len(day_carriers) for c in set(day_carriers)}
    assert set(day_shares) == set(expected_shares)  # every bin filled on both sides: no floor needed
    carrier_psi = sum((day_shares[c] - e) * math.log(day_shares[c] / e) for c, e in expected_shares.items())
    assert {d.feature: d.psi for d in drift_rows}["carrier"] == pytest.approx(carrier_psi)
    logged = client.get_run(monitoring_runs[0].info.run_id).data.metrics
    assert logged["psi.carrier"] == pytest.approx(carrier_psi)
    assert logged["psi_max"] == pytest.approx(max(d.psi for d in drift_rows))
    assert any(k.startswith("mae.carrier.") for k in logged)
    # The chart of the live error: a PNG under reports/ and an artifact of v1's monitoring run.
    from mlcycle.config import settings
    from mlcycle.monitoring.live import CHART_ARTIFACT, write_chart
    from mlcycle.monitoring.retraining import RetrainRule

    cfg = replace(settings(), data_root=str(data_root), tracking_uri=uri).for_model(model)
    chart = Path(write_chart(cfg, RetrainRule.of(model), [DAYS[-1]]))
    assert chart == Path(records) / "reports" / "monitoring.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(chart.parent.glob("tmp*"))
    artifacts = [a.path for a in client.list_artifacts(monitoring_runs[0].info.run_id)]
    assert CHART_ARTIFACT in artifacts
    # The shadow's live record: on v2's registered version, and in the evidence a sign-off of v2
    # shows, beside the holdout comparison (the same requests, the champion's figure beside it).
    live = client.get_model_version(MODEL, str(v2)).tags
    assert live["live.shadow.days"] == "1" and live["live.shadow.requests"] == str(ROWS_PER_DAY + 1)
    assert live["live.shadow.with_outcome"] == str(len(asked))
    assert float(live["live.shadow.mae"]) == pytest.approx(shadow_row.mae, rel=1e-5)
    assert float(live["live.shadow.champion_mae"]) == pytest.approx(champion_row.mae, rel=1e-5)
    from mlcycle.signoff.promotion import evaluate_challenger

    signed = evaluate_challenger(cfg, v2, "manual__live", min_improvement=-1e9, slice_tolerance=1e9)
    assert signed["auto_reject"] is False
    assert signed["live_shadow"]["n_actuals"] == len(asked)
    assert signed["live_shadow"]["mae"] == pytest.approx(shadow_row.mae)
    assert signed["live_shadow"]["champion_mae"] == pytest.approx(champion_row.mae)
    section = signed["markdown"].split("**Live, in the shadow**")[1]
    assert (
        f"| {DAYS[-1]} | {ROWS_PER_DAY + 1} | {len(asked)} | {shadow_row.mae:.4f} | {champion_row.mae:.4f} |"
        in section
    )
    better = "the champion" if shadow_row.mae > champion_row.mae else "the challenger"
    assert f"On mae: {better} is better on the same live requests." in section
    assert signed["markdown"].index("validation") < signed["markdown"].index("**Live, in the shadow**")

    # 6. A third version replaces v1, which is archived after the retention period.
    # (Registering run_2 again under another Airflow run stands in for a third training.)
    v3 = registry.register_challenger(uri, MODEL, run_2, "scheduled__2013-01-07", DAG_ID)
    assert v3 == v2 + 1
    registry.promote(
        uri,
        MODEL,
        v3,
        decided_by="carol",
        comment="fresher data",
        airflow_run_id="scheduled__2013-01-07",
        decided_at="2013-01-07T06:00:00+00:00",
    )
    assert registry.champion(uri, MODEL) == v3
    mv1 = client.get_model_version(MODEL, str(v1))
    assert mv1.tags["status"] == "retired" and mv1.tags["retired_at"] == "2013-01-07T06:00:00+00:00"
    history = registry.champion_history(uri, MODEL)
    assert [(h["version"], h["decided_by"]) for h in history] == [(v1, "alice"), (v3, "carol")]
    assert history[0]["retired_at"] == "2013-01-07T06:00:00+00:00" and history[1]["retired_at"] is None

    client.set_registered_model_alias(MODEL, "rollback-candidate", str(v1))  # an alias archival removes
    archive = tmp_path / "archive"
    assert archival.archive_retired(uri, MODEL, str(archive), 30, "2013-01-20T00:00:00+00:00") == []
    # A pending rollback to v1 holds it: archival leaves it alone while that run is active.
    registry.hold(uri, MODEL, v1, "air_time_rollback", "manual__2013-02-09T12:00:00+00:00")
    asked = []

    def active(dag_id, run_id):
        asked.append((dag_id, run_id))
        return True

    assert archival.archive_retired(uri, MODEL, str(archive), 30, "2013-02-10T00:00:00+00:00", active) == []
    assert asked == [("air_time_rollback", "manual__2013-02-09T12:00:00+00:00")]
    assert client.get_model_version(MODEL, str(v1)).tags["status"] == "retired"
    assert not (archive / MODEL / f"v{v1}").exists()
    # The run ended: the hold is dropped and v1 archived; a re-run archives nothing more.
    ended = lambda dag_id, run_id: False  # noqa: E731
    assert archival.archive_retired(uri, MODEL, str(archive), 30, "2013-02-10T00:00:00+00:00", ended) == [v1]
    assert archival.archive_retired(uri, MODEL, str(archive), 30, "2013-02-11T00:00:00+00:00", ended) == []
    assert not registry.holders(client.get_model_version(MODEL, str(v1)).tags)
    mv1 = client.get_model_version(MODEL, str(v1))
    assert mv1.tags["status"] == "archived" and mv1.tags["archived_at"] == "2013-02-10T00:00:00+00:00"
    assert mv1.aliases == []
    card = json.loads((archive / MODEL / f"v{v1}" / "model_card.json").read_text())
    assert card["version"] == v1 and card["params"]["window_start"] == DAYS[0]
    assert card["tags"]["decision.by"] == "alice" and "val_mae" in card["metrics"]
    assert card["data_window"]["start"] == DAYS[0] and card["approval"]["decision.by"] == "alice"
    assert [s["to"] for s in card["served"]] == ["2013-01-07T06:00:00+00:00"]
    assert (archive / MODEL / f"v{v1}" / "model" / "MLmodel").exists()
    assert registry.champion(uri, MODEL) == v3
