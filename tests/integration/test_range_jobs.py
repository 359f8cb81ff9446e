"""The jobs over a range of days (``--start``/``--end``, or ``--ds`` repeated: the month runs of a
backfill) write what the same jobs write day by day: each day its validated and quarantined rows,
its verdicts, its features and feature views, its predictions and verdict, its monitoring rows.

The same three real days are landed into two data roots, with the same faults: a row set aside on
the second day; on the third day the weather missing and every batch rule of the flights but
volume broken at once (flights listed twice, rows of the day before, the drop stopping at 18:00,
one flight in twenty with an impossible air time): held by both gates. One root goes through each
job day by day as a daily run would (GX judges each day; the first day's features are left out: it
has no history, and the second day's features read the first day's validated rows), the other
through each job once over the range (every day judged in one pass, a held day again by GX for its
Data Docs); then every table and verdict of the days both reached is compared, and the held day's
verdict is checked for the rules it broke.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from mlcycle.quality.gates import GATE_FAILED_EXIT

pytestmark = pytest.mark.integration

DAYS = ["2013-03-04", "2013-03-05", "2013-03-06"]
GOOD = [DAYS[0], DAYS[1]]  # the days every gate passes
MODEL = "flights_air_time_range"


def land_with_faults(root: Path) -> None:
    from spark_jobs.flights.replay import land_days, load_reference

    load_reference(str(root))
    land_days(str(root), DAYS)
    flights = root / "landing" / "flights" / f"ds={DAYS[1]}" / "flights.csv"
    lines = flights.read_text().splitlines()
    header = lines[0].split(",")
    fields = lines[7].split(",")
    fields[header.index("distance")] = "-187"
    lines[7] = ",".join(fields)
    flights.write_text("\n".join(lines) + "\n")
    (root / "landing" / "weather" / f"ds={DAYS[2]}" / "weather.csv").unlink()
    broken = root / "landing" / "flights" / f"ds={DAYS[2]}" / "flights.csv"
    lines = broken.read_text().splitlines()
    rows = [line.split(",") for line in lines[1:] if int(line.split(",")[header.index("hour")]) < 18]
    for n, fields in enumerate(rows):
        if n % 20 == 7:
            fields[header.index("air_time")] = "-5"
        if n in (11, 12):
            fields[header.index("day")] = str(int(fields[header.index("day")]) - 1)
    kept = [",".join(fields) for fields in rows]
    broken.write_text("\n".join([lines[0], *kept, *kept[:3]]) + "\n")


def verdict(root: Path, gate: str, ds: str) -> dict:
    """A day's recorded verdict without what names the root or the Data Docs run."""
    record = json.loads((root / "gates" / gate / f"ds={ds}.json").read_text())
    text = json.dumps(record).replace(str(root), "<root>")
    record = json.loads(text)
    for key in ("docs", "docs_page", "message"):
        record.pop(key, None)
    for failure in record.get("failed", []):
        observed = failure.get("observed")
        if isinstance(observed, dict) and "unexpected_sample" in observed:
            observed["unexpected_sample"] = sorted(map(json.dumps, observed["unexpected_sample"]))
    return record


def same_table(spark, a: Path, b: Path, approx: tuple[str, ...] = ()) -> int:
    """Both tables hold the same rows (numbers in ``approx`` to 1e-9); their row count."""
    left, right = spark.read.parquet(str(a)), spark.read.parquet(str(b))
    assert sorted(left.columns) == sorted(right.columns)
    columns = sorted(left.columns)
    rows_a = sorted((tuple(r) for r in left.select(*columns).collect()), key=str)
    rows_b = sorted((tuple(r) for r in right.select(*columns).collect()), key=str)
    assert len(rows_a) == len(rows_b)
    if not approx:
        assert rows_a == rows_b
        return len(rows_a)
    for x, y in zip(rows_a, rows_b, strict=True):
        for name, u, v in zip(columns, x, y, strict=True):
            if name in approx and u is not None and v is not None:
                assert u == pytest.approx(v, rel=1e-9, abs=1e-12), name
            else:
                assert u == v, name
    return len(rows_a)


@pytest.fixture(scope="module")
def roots(tmp_path_factory, spark):
    """(day by day, range): both roots gated and built, with what the range jobs returned."""
    from spark_jobs import features, quality

    daily, ranged = tmp_path_factory.mktemp("daily"), tmp_path_factory.mktemp("ranged")
    for root in (daily, ranged):
        land_with_faults(root)
    codes = {ds: quality.main(["--ds", ds, "--data-root", str(daily)]) for ds in GOOD}
    assert codes == {DAYS[0]: 0, DAYS[1]: 0}
    assert features.main(["--ds", DAYS[1], "--data-root", str(daily)]) == 0
    span = ["--start", DAYS[0], "--end", DAYS[-1]]
    assert quality.main([*span, "--data-root", str(ranged)]) == GATE_FAILED_EXIT  # a day held
    assert features.main([*span, "--data-root", str(ranged)]) == 0  # the days that passed
    return daily, ranged


def test_a_range_gates_and_builds_each_day_as_its_own_run_does(roots, spark):
    daily, ranged = roots
    for gate in ("raw_flights", "raw_weather"):
        for ds in GOOD:
            assert verdict(ranged, gate, ds) == verdict(daily, gate, ds), (gate, ds)
    assert verdict(ranged, "raw_flights", DAYS[1])["quarantined"] == 1
    held = {
        (g, ds)
        for g in ("raw_flights", "raw_weather")
        for ds in DAYS
        if not verdict(ranged, g, ds)["success"]
    }
    assert held == {("raw_weather", DAYS[2]), ("raw_flights", DAYS[2])}
    assert [f["expectation"] for f in verdict(ranged, "raw_weather", DAYS[2])["failed"]] == ["file_exists"]
    broken = verdict(ranged, "raw_flights", DAYS[2])
    assert {f["expectation"] for f in broken["failed"]} == {
        "expect_compound_columns_to_be_unique",
        "expect_column_values_to_be_between",  # rows of the day before
        "expect_column_max_to_be_between",  # freshness
        "expect_column_mean_to_be_between",  # share set aside
    }
    share = next(f for f in broken["failed"] if f["expectation"] == "expect_column_mean_to_be_between")
    assert share["observed"] == pytest.approx(broken["quarantined"] / broken["rows"])
    assert broken["quarantine_rules"] == {
        "expect_column_values_to_be_between(air_time)": broken["quarantined"]
    }
    set_aside = spark.read.parquet(str(ranged / "quarantine" / "flights" / f"ds={DAYS[2]}"))
    assert set_aside.where("air_time = -5").count() == set_aside.count() == broken["quarantined"] > 0
    # a held day's Data Docs are built by the range too (the days that pass have their verdict)
    page = json.loads((ranged / "gates" / "raw_flights" / f"ds={DAYS[2]}.json").read_text())["docs_page"]
    assert page and Path(page).is_file()
    assert verdict(ranged, "features", DAYS[1]) == verdict(daily, "features", DAYS[1])
    first = verdict(ranged, "features", DAYS[0])
    assert first["success"] and first["rows"] == verdict(daily, "raw_flights", DAYS[0])["validated"]
    assert not (ranged / "gates" / "features" / f"ds={DAYS[2]}.json").exists()
    for table in ("validated/flights", "validated/weather"):
        assert same_table(spark, daily / table, ranged / table) > 0, table
    for table in ("quarantine/flights", "features", "feature_views"):
        day = f"ds={DAYS[1]}"
        assert same_table(spark, daily / table / day, ranged / table / day) > 0, table
    assert sorted(p.name for p in (daily / "quarantine" / "flights").glob("ds=*")) == [f"ds={DAYS[1]}"]
    written = sorted(p.name for p in (ranged / "features").glob("ds=*"))
    assert written == [f"ds={ds}" for ds in GOOD]
    assert not (ranged / "validated" / "flights" / f"ds={DAYS[2]}").exists()


def test_a_range_scores_and_monitors_each_day_as_its_own_run_does(
    roots, spark, mlflow_server, tmp_path, monkeypatch, usecases_copy
):
    import mlflow
    import pyspark

    from mlcycle.specs import find_model, pipeline_module
    from spark_jobs import drift, monitoring, scoring
    from spark_jobs.common import with_label

    daily, ranged = roots
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLCYCLE_USECASES", str(usecases_copy(tmp_path / "catalog", {"air_time": MODEL})))
    model = find_model("air_time")
    # a version fitted on the first day (built by the range), with the drift profile monitoring compares with
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment(MODEL)
    first = spark.read.parquet(str(ranged / "features")).where(f"ds = DATE'{DAYS[0]}'")
    labelled = with_label(first, model).where(f"{model.label} IS NOT NULL")
    with mlflow.start_run() as run:
        fitted = pipeline_module(model).make_pipeline(model).fit(labelled)
        # the requirements the training job names (MLflow would otherwise infer them in a subprocess)
        requirements = [f"mlflow=={mlflow.__version__}", f"pyspark=={pyspark.__version__}"]
        mlflow.spark.log_model(fitted, "model", pip_requirements=requirements)
        numeric, categorical = model.monitoring["drift_numeric"], model.monitoring["drift_categorical"]
        mlflow.log_dict(drift.profile(labelled, list(numeric), list(categorical)), drift.PROFILE_ARTIFACT)
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", MODEL).version
    scored = [
        "--model",
        "air_time",
        "--model-uri",
        f"models:/{MODEL}/{version}",
        "--model-version",
        str(version),
    ]

    # the second day alone, as its own runs score and monitor it; the range takes both days
    ds = GOOD[1]
    assert scoring.main(["--ds", ds, "--data-root", str(daily), *scored, "--airflow-run-id", "d"]) == 0
    assert monitoring.main(["--ds", ds, "--data-root", str(daily), "--model", "air_time"]) == 0
    days = [arg for ds in GOOD for arg in ("--ds", ds)]
    assert scoring.main([*days, "--data-root", str(ranged), *scored, "--airflow-run-id", "d"]) == 0
    assert monitoring.main([*days, "--data-root", str(ranged), "--model", "air_time"]) == 0

    records_a, records_b = daily / "models" / "air_time", ranged / "models" / "air_time"
    assert verdict(records_b, "predictions", ds) == verdict(records_a, "predictions", ds)
    assert verdict(records_b, "predictions", GOOD[0])["success"]
    day = f"ds={ds}"
    assert same_table(spark, records_a / "predictions" / day, records_b / "predictions" / day) > 500
    figures = ("mae", "rmse", "r2", "bias", "coverage", "psi")
    assert same_table(spark, records_a / "monitoring" / day, records_b / "monitoring" / day, figures) == 1
    slices = same_table(
        spark, records_a / "monitoring_slices" / day, records_b / "monitoring_slices" / day, figures
    )
    assert slices > 10
    assert same_table(spark, records_a / "drift" / day, records_b / "drift" / day, figures) == (
        len(model.monitoring["drift_numeric"]) + len(model.monitoring["drift_categorical"])
    )
    assert sorted(p.name for p in (records_b / "monitoring").glob("ds=*")) == [f"ds={d}" for d in GOOD]
    # the MLflow metrics of both: the same values at the same steps, twice (daily, then range)
    from mlcycle.monitoring.live import monitoring_run_id

    client = mlflow.MlflowClient()
    history = client.get_metric_history(monitoring_run_id(client, MODEL, str(version)), "mae")
    by_step: dict[int, list[float]] = {}
    for m in history:
        by_step.setdefault(m.step, []).append(m.value)
    assert len(by_step) == len(GOOD)  # (MLflow keeps one point where both logged the same value)
    assert len(by_step[date.fromisoformat(ds).timetuple().tm_yday]) == 1
    assert all(max(v) == pytest.approx(min(v), rel=1e-9) for v in by_step.values())
