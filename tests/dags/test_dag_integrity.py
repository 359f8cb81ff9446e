"""DAG integrity: the files parse, cheaply, without touching connections, into the expected shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airflow.providers.standard.operators.hitl import ApprovalOperator

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
HEAVY = ("pyspark", "mlflow", "great_expectations", "pandas", "sklearn")

PROBE = r"""
import importlib.util, json, sys
from pathlib import Path

def refuse(*args, **kwargs):
    raise AssertionError("connection or variable touched while parsing")

from airflow.sdk import BaseHook, Variable
BaseHook.get_connection = classmethod(refuse)
Variable.get = staticmethod(refuse)
before = set(sys.modules)
loaded = {}
for path in sorted(Path(sys.argv[1]).glob("*.py")):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loaded[path.name] = sorted(
        name for name in set(sys.modules) - before if name.split(".")[0] in set(sys.argv[2].split(","))
    )
print(json.dumps(loaded))
"""


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    os.environ.setdefault("MLCYCLE_HOME", str(tmp_path_factory.mktemp("home")))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(DAGS))


def test_every_dag_file_imports(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {
        "flights_data",
        "flights_training",
        "flights_scoring",
        "flights_monitoring",
        "flights_archival",
        "flights_rollback",
    }


def test_parsing_touches_no_connection_and_no_heavy_library(tmp_path):
    env = dict(os.environ, MLCYCLE_HOME=str(tmp_path), AIRFLOW_HOME=str(tmp_path / "airflow"))
    env.pop("AIRFLOW_CONN_SPARK_DEFAULT", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(DAGS), ",".join(HEAVY)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(loaded) == {p.name for p in DAGS.glob("*.py")}
    assert {name: mods for name, mods in loaded.items() if mods} == {}


def _downstream(dag, task_id):
    return set(dag.get_task(task_id).downstream_task_ids)


def test_data_dag_order(dagbag):
    dag = dagbag.dags["flights_data"]
    assert _downstream(dag, "land") == {"validate_raw"}
    assert _downstream(dag, "validate_raw") == {"build_features"}
    assert _downstream(dag, "build_features") == {"publish_features"}
    assert dag.get_task("validate_raw")._conn_id == "spark_default"
    assert [o.name for o in dag.get_task("publish_features").outlets] == ["flights_features"]


def test_training_dag_order(dagbag):
    dag = dagbag.dags["flights_training"]
    assert _downstream(dag, "check_inputs") == {"train"}
    assert _downstream(dag, "train") == {"register"}
    assert "evaluate" in _downstream(dag, "register")
    assert _downstream(dag, "evaluate") == {"needs_sign_off"}
    assert _downstream(dag, "needs_sign_off") == {"sign_off"}
    assert _downstream(dag, "sign_off") == {"promote"}
    assert _downstream(dag, "promote") == {"record_decision"}
    sign_off = dag.get_task("sign_off")
    assert isinstance(sign_off, ApprovalOperator)
    assert sign_off.defaults == ["Reject"]
    assert sign_off.assigned_users and sign_off.response_timeout is not None
    comment = sign_off.params.get_param("comment")
    assert comment.value is None and "null" in comment.schema["type"]  # Approve needs no reason typed
    comment.resolve(None)  # an empty comment is valid
    assert type(dag.get_task("train")).__name__ == "SparkJob"
    assert dag.get_task("promote").pool == "model_promotion"


def test_scoring_and_monitoring_are_chained_by_assets(dagbag):
    scoring = dagbag.dags["flights_scoring"]
    monitoring = dagbag.dags["flights_monitoring"]
    assert {a.name for a in scoring.timetable.asset_condition.objects} == {
        "flights_features",
        "flights_champion",
    }
    assert monitoring.timetable.asset_condition.name == "flights_predictions"
    assert "score" in _downstream(scoring, "score_args")
    assert _downstream(scoring, "score") == {"publish_predictions"}
    assert "monitor" in _downstream(monitoring, "days_to_monitor")


def test_data_dag_is_daily_over_2013(dagbag):
    dag = dagbag.dags["flights_data"]
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    # every day at midnight UTC (``@daily`` is stored as its cron expression)
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("0 0 * * *", "UTC")
    # the first and the last day of 2013, in UTC
    assert dag.start_date == datetime(2013, 1, 1, tzinfo=UTC) and dag.start_date.utcoffset() == timedelta(0)
    assert dag.end_date == datetime(2013, 12, 31, tzinfo=UTC) and dag.end_date.utcoffset() == timedelta(0)


def test_rollback_goes_through_the_same_sign_off_and_promotion(dagbag):
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    dag = dagbag.dags["flights_rollback"]
    assert _downstream(dag, "check") == {"sign_off", "record_decision"}
    assert _downstream(dag, "sign_off") == {"promote"}
    assert _downstream(dag, "promote") == {"record_decision"}
    sign_off = dag.get_task("sign_off")
    assert isinstance(sign_off, ApprovalOperator) and sign_off.defaults == ["Reject"]
    assert sign_off.assigned_users
    assert dag.get_task("promote").pool == "model_promotion"
    assert {a.name for a in dag.get_task("promote").outlets} == {"flights_champion"}


def test_a_refused_model_folder_is_an_import_error_naming_the_folder_the_field_and_the_fix(tmp_path):
    """A model folder with an unknown feature column: Airflow shows it under DAG Import Errors."""
    import shutil

    from airflow.dag_processing.dagbag import DagBag

    from mlcycle import specs

    root = tmp_path / "usecases"
    shutil.copytree(REPO / "usecases" / "flights", root / "flights")
    shutil.copytree(REPO / "expectations", tmp_path / "expectations")
    model = root / "flights" / "models" / "late_arrival" / "model.toml"
    model.write_text(model.read_text().replace('"carrier", "origin"', '"carrier", "gate_number", "origin"', 1))

    saved = specs.USECASES_ROOT
    specs.USECASES_ROOT = root
    try:
        bag = DagBag(str(DAGS / "refused_folders.py"))
    finally:
        specs.USECASES_ROOT = saved
    (error,) = bag.import_errors.values()
    assert f"{model}: features: unknown feature column(s) ['gate_number']" in error
    assert "Fix: use columns of the feature table" in error
    assert bag.dag_ids == []
