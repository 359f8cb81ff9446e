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


STAGES = ("training", "scoring", "monitoring", "rollback", "archival")
MODELS = ("air_time", "late_arrival")


def test_every_dag_file_imports_and_each_model_gets_the_same_dags(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"flights_data", "flights_data_by_month"} | {
        f"{m}_{s}" for m in MODELS for s in STAGES
    }
    for stage in STAGES:
        shapes = {
            m: sorted(
                (t.task_id, type(t).__name__, sorted(t.downstream_task_ids))
                for t in dagbag.dags[f"{m}_{stage}"].tasks
            )
            for m in MODELS
        }
        assert shapes["air_time"] == shapes["late_arrival"], stage


def test_dag_files_are_thin():
    """Each DAG file calls the factory; the graphs live in mlcycle.orchestration.dag_factory."""
    for path in DAGS.glob("*.py"):
        code = [
            line
            for line in path.read_text().split('"""')[-1].splitlines()
            if line.strip() and not line.startswith("#") and not line.startswith("import airflow.")
        ]
        assert len(code) <= 3, (path.name, code)
        assert not any(line.startswith(("with DAG", "@task", "def ")) for line in code), path.name


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
    # a day reads what the days before it wrote (volume band, history): one run at a time
    assert dag.max_active_runs == 1


def test_month_data_dag_builds_the_days_that_passed_and_announces_them(dagbag):
    dag = dagbag.dags["flights_data_by_month"]
    assert dag.timetable.expression == "0 0 1 * *"  # @monthly
    assert _downstream(dag, "land") == {"validate_raw", "publish_features", "all_days_done"}
    assert _downstream(dag, "validate_raw") == {"build_features"}
    assert _downstream(dag, "build_features") == {"publish_features"}
    assert _downstream(dag, "publish_features") == {"all_days_done"}
    # a held day fails validate_raw; the other days are still built and announced, and the run
    # fails by its leaf, which names the held days
    for task_id in ("build_features", "publish_features", "all_days_done"):
        assert dag.get_task(task_id).trigger_rule == "all_done"
    assert [t.task_id for t in dag.leaves] == ["all_days_done"]
    args = dag.get_task("validate_raw").application_args
    assert args[args.index("--start") + 1] == "{{ ti.xcom_pull(task_ids='land')[0] }}"
    assert args[args.index("--end") + 1] == "{{ ti.xcom_pull(task_ids='land')[-1] }}"
    assert [o.name for o in dag.get_task("publish_features").outlets] == ["flights_features"]


def test_each_model_is_signed_off_by_its_own_approvers_on_its_own_evidence(dagbag):
    air, late = dagbag.dags["air_time_training"], dagbag.dags["late_arrival_training"]
    users = {d.dag_id: [u["id"] for u in d.get_task("sign_off").assigned_users] for d in (air, late)}
    assert users == {
        "air_time_training": ["approver", "approver2"],
        "late_arrival_training": ["delays_approver"],
    }
    assert not set(users["air_time_training"]) & set(users["late_arrival_training"])
    assert "flights_late_arrival" in late.get_task("sign_off").subject
    # each model's own rules are the defaults of its runs
    assert (air.params["min_improvement"], air.params["slice_tolerance"]) == (0.0, 5.0)
    assert (late.params["min_improvement"], late.params["slice_tolerance"]) == (-0.01, 0.05)
    assert "--model" in late.get_task("train").application_args
    assert late.get_task("train").application_args[
        late.get_task("train").application_args.index("--model") + 1
    ] == ("late_arrival")
    monitoring = dagbag.dags["late_arrival_monitoring"]
    assert monitoring.params["retrain_tolerance"] == 0.05
    assert monitoring.get_task("retrain").trigger_dag_id == "late_arrival_training"


def test_training_dag_order(dagbag):
    dag = dagbag.dags["air_time_training"]
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
    """Both models are scored off one features partition; each monitoring follows its own
    predictions."""
    for model in MODELS:
        scoring = dagbag.dags[f"{model}_scoring"]
        monitoring = dagbag.dags[f"{model}_monitoring"]
        assert {a.name for a in scoring.timetable.asset_condition.objects} == {
            "flights_features",
            f"{model}_champion",
        }
        assert monitoring.timetable.asset_condition.name == f"{model}_predictions"
        assert [o.name for o in scoring.get_task("publish_predictions").outlets] == [f"{model}_predictions"]
    scoring, monitoring = dagbag.dags["air_time_scoring"], dagbag.dags["air_time_monitoring"]
    assert _downstream(scoring, "plan") == {"score", "publish_predictions"}
    assert _downstream(scoring, "score") == {"publish_predictions"}
    assert "monitor" in _downstream(monitoring, "days_to_monitor")
    assert _downstream(monitoring, "monitor") == {"chart", "check_retraining"}
    assert [o.name for o in monitoring.get_task("chart").outlets] == ["air_time_monitoring"]


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

    dag = dagbag.dags["air_time_rollback"]
    assert _downstream(dag, "check") == {"sign_off", "record_decision"}
    assert _downstream(dag, "sign_off") == {"promote"}
    assert _downstream(dag, "promote") == {"record_decision"}
    sign_off = dag.get_task("sign_off")
    assert isinstance(sign_off, ApprovalOperator) and sign_off.defaults == ["Reject"]
    assert sign_off.assigned_users
    assert dag.get_task("promote").pool == "model_promotion"
    assert {a.name for a in dag.get_task("promote").outlets} == {"air_time_champion"}


def test_a_refused_model_folder_is_an_import_error_naming_the_folder_the_field_and_the_fix(
    tmp_path, monkeypatch
):
    """A model folder with an unknown feature column: Airflow shows it under DAG Import Errors, and
    the other model's DAGs load as before."""
    import shutil

    from airflow.dag_processing.dagbag import DagBag

    root = tmp_path / "usecases"
    shutil.copytree(REPO / "usecases" / "flights", root / "flights")
    shutil.copytree(REPO / "expectations", tmp_path / "expectations")
    model = root / "flights" / "models" / "late_arrival" / "model.toml"
    model.write_text(
        model.read_text().replace('"carrier", "origin"', '"carrier", "gate_number", "origin"', 1)
    )
    monkeypatch.setenv("MLCYCLE_USECASES", str(root))
    monkeypatch.setenv("MLCYCLE_HOME", str(tmp_path / "home"))

    bag = DagBag(str(DAGS))
    (path, error), *others = bag.import_errors.items()
    assert others == [] and path.endswith("refused_folders.py")
    assert f"{model}: features: unknown feature column(s) ['gate_number']" in error
    assert "Fix: use columns of the feature table" in error
    assert set(bag.dag_ids) == {"flights_data", "flights_data_by_month"} | {f"air_time_{s}" for s in STAGES}
