"""Use cases and models as folders: what the platform reads to build each model's lifecycle.

    usecases/<use case>/usecase.toml                 raw datasets, feature table, suites
    usecases/<use case>/models/<model>/model.toml    label, features, pipeline, metrics, rules

A model's file is merged over ``mlcycle/model_defaults.toml`` (the one place for each default).
Everything is checked when it is read: a folder with a missing or wrong piece is refused with a
``SpecError`` naming the file, the field and the fix, and ``catalog()`` keeps the others (the
DAG factory builds theirs and reports the refused ones as an import error).

Plain data and the standard library only: the DAG files read this at parse time.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from mlcycle.config import REPO_ROOT


def usecases_root() -> Path:
    """Where the use case folders live: the repository's ``usecases/``, or MLCYCLE_USECASES."""
    return Path(os.environ.get("MLCYCLE_USECASES") or REPO_ROOT / "usecases")


DEFAULTS_FILE = Path(__file__).with_name("model_defaults.toml")
USECASE_FILE = "usecase.toml"
MODEL_FILE = "model.toml"

# The metrics the evaluator computes, by task, and whether more is better.
METRICS: dict[str, dict[str, bool]] = {
    "regression": {"mae": False, "rmse": False, "r2": True},
    "classification": {"auc": True, "log_loss": False, "calibration": False},
}
# Metrics that can decide between two versions (one number per version and day).
DECIDING: dict[str, tuple[str, ...]] = {
    "regression": ("mae", "rmse", "r2"),
    "classification": ("auc", "log_loss"),
}


class SpecError(ValueError):
    """A use case or model folder that cannot be used, with where and how to fix it."""

    def __init__(self, path: Path | str, field: str, problem: str, fix: str):
        self.path, self.field, self.problem, self.fix = str(path), field, problem, fix
        super().__init__(f"{self.path}: {field}: {problem}. Fix: {fix}")


@dataclass(frozen=True)
class Dataset:
    name: str
    suite: Path


@dataclass(frozen=True)
class UseCase:
    name: str
    folder: Path
    key: str
    history_days: int
    thresholds: Path
    datasets: dict[str, Dataset]
    features_suite: Path
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    outcomes: tuple[str, ...]
    code: str = ""
    rows_dataset: str = ""
    first_day: str = ""
    last_day: str = ""
    description: str = ""

    @property
    def feature_columns(self) -> tuple[str, ...]:
        return (*self.categorical, *self.numeric)

    @property
    def raw_gates(self) -> tuple[str, ...]:
        """The gates of the raw datasets, ``raw_<dataset>``, in the order of the folder."""
        return tuple(f"raw_{name}" for name in self.datasets)

    def code_module(self):
        """The use case's Spark code (``code`` of its usecase.toml), imported on first use; never at
        DAG parse time."""
        import importlib

        return importlib.import_module(self.code)


@dataclass(frozen=True)
class Model:
    name: str
    usecase: UseCase
    folder: Path
    registered_name: str
    task: str
    label: str
    label_columns: tuple[str, ...]
    label_expression: str | None
    features: tuple[str, ...]
    pipeline: Path
    predictions_suite: Path
    metrics: tuple[str, ...]
    deciding: str
    evaluation: dict
    approvers: tuple[str, ...]
    timeout_hours: float
    monitoring: dict
    retraining: dict
    retention_days: int
    raw: dict = field(repr=False, default_factory=dict)

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.task][self.deciding]

    @property
    def id(self) -> str:
        """``<use case>.<model>``: how DAG ids, paths and the CLI name it."""
        return f"{self.usecase.name}.{self.name}"


@dataclass
class Catalog:
    usecases: dict[str, UseCase] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)  # by model name
    errors: list[SpecError] = field(default_factory=list)


# The files read, by path: (what identifies the file's state, its contents). A file read again
# unchanged is not parsed again: the dag-processor reads the catalog once before it forks its parses
# (``mlcycle.orchestration.preload``), so a parse reads only what changed since.
_READ: dict[Path, tuple[tuple[int, int, int], dict]] = {}


def _read_toml(path: Path) -> dict:
    try:
        state = path.stat()
        stamp = (state.st_mtime_ns, state.st_size, state.st_ino)
        held = _READ.get(path)
        if held is not None and held[0] == stamp:
            return copy.deepcopy(held[1])
        with path.open("rb") as f:
            spec = tomllib.load(f)
        _READ[path] = (stamp, spec)
        return copy.deepcopy(spec)
    except FileNotFoundError as exc:
        raise SpecError(path, "(file)", "missing", f"write {path.name} (see docs/ADDING_A_MODEL.md)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(path, "(file)", f"not valid TOML ({exc})", "correct the syntax") from exc


def _required(spec: dict, key: str, path: Path, kind: type | tuple, fix: str, where: str = ""):
    name = f"{where}.{key}" if where else key
    if key not in spec:
        raise SpecError(path, name, "missing", fix)
    value = spec[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise SpecError(path, name, f"{value!r} is not a {expected}", fix)
    return value


def _names(spec: dict, key: str, path: Path, fix: str, where: str = "") -> tuple[str, ...]:
    name = f"{where}.{key}" if where else key
    value = _required(spec, key, path, list, fix, where)
    if not all(isinstance(v, str) and v for v in value):
        raise SpecError(path, name, "holds something other than names", fix)
    if len(set(value)) != len(value):
        raise SpecError(path, name, "names a column twice", "list each once")
    return tuple(value)


def _file(folder: Path, spec_path: Path, key: str, value: str) -> Path:
    target = (folder / value).resolve()
    if not target.is_file():
        raise SpecError(
            spec_path, key, f"{value} does not exist (looked for {target})", f"point {key} at a file"
        )
    return target


_SUITES_CHECKED: dict[Path, tuple[int, int, int]] = {}  # suites found good, in the state found


def _suite(path: Path, key: str, suite: Path) -> Path:
    """A GX suite as JSON: it must parse and list expectations, each with a type (checked again
    only when the file changed since it was found good)."""
    try:
        state = suite.stat()
        stamp = (state.st_mtime_ns, state.st_size, state.st_ino)
    except OSError:
        stamp = None
    if stamp is not None and _SUITES_CHECKED.get(suite) == stamp:
        return suite
    try:
        data = json.loads(suite.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecError(
            path, key, f"{suite.name} does not parse as JSON ({exc})", "correct the suite"
        ) from exc
    expectations = data.get("expectations") if isinstance(data, dict) else None
    if not isinstance(expectations, list) or not all(
        isinstance(e, dict) and isinstance(e.get("type") or e.get("expectation_type"), str)
        for e in expectations
    ):
        raise SpecError(
            path,
            key,
            f"{suite.name} is not a suite (no list of expectations with a type)",
            "write it as GX saves one",
        )
    if stamp is not None:
        _SUITES_CHECKED[suite] = stamp
    return suite


def load_usecase(folder: Path) -> UseCase:
    folder = Path(folder)
    path = folder / USECASE_FILE
    spec = _read_toml(path)
    name = _required(spec, "name", path, str, f'name the use case, e.g. name = "{folder.name}"')
    if name != folder.name:
        raise SpecError(
            path, "name", f"{name!r} is not the folder's name {folder.name!r}", "use the folder's name"
        )
    datasets_spec = _required(spec, "datasets", path, dict, "add a [datasets.<name>] table per raw dataset")
    if not datasets_spec:
        raise SpecError(path, "datasets", "empty", "add a [datasets.<name>] table per raw dataset")
    datasets = {}
    for ds_name, ds in datasets_spec.items():
        key = f"datasets.{ds_name}.suite"
        suite = (
            _required(ds, "suite", path, str, f"set {key} to its GX suite (JSON)")
            if isinstance(ds, dict)
            else None
        )
        if suite is None:
            raise SpecError(path, f"datasets.{ds_name}", "not a table", f"write it as [datasets.{ds_name}]")
        datasets[ds_name] = Dataset(ds_name, _suite(path, key, _file(folder, path, key, suite)))
    features = _required(spec, "features", path, dict, "add a [features] table")
    fix = "list the feature table's columns"
    categorical = _names(features, "categorical", path, fix, "features")
    numeric = _names(features, "numeric", path, fix, "features")
    outcomes = _names(
        features, "outcomes", path, "list the columns known only once the event happened", "features"
    )
    both = set(categorical) & set(numeric) | (set(categorical) | set(numeric)) & set(outcomes)
    if both:
        raise SpecError(path, "features", f"{sorted(both)} listed twice", "list each column in one group")
    suite = _required(features, "suite", path, str, "point at the feature table's GX suite", "features")
    history = _required(
        spec, "history_days", path, int, "set history_days, the days behind rolling statistics"
    )
    code = _required(
        spec,
        "code",
        path,
        str,
        'name the package of the use case\'s Spark code, e.g. "spark_jobs.<use case>"',
    )
    if importlib.util.find_spec(code.split(".")[0]) is None:
        raise SpecError(path, "code", f"no importable package {code!r}", "name an installed package")
    rows_dataset = _required(
        spec, "rows_dataset", path, str, "name the raw dataset one feature row is made from"
    )
    span = []
    for key in ("first_day", "last_day"):
        value = spec.get(key)
        try:
            span.append(date.fromisoformat(value).isoformat())
        except (TypeError, ValueError):
            raise SpecError(path, key, f"{value!r} is not a day", f'write {key} = "YYYY-MM-DD"') from None
    if span[1] < span[0]:
        raise SpecError(path, "last_day", f"{span[1]} is before first_day {span[0]}", "swap them")
    if rows_dataset not in datasets:
        raise SpecError(
            path, "rows_dataset", f"{rows_dataset!r} is not a dataset", f"use one of {', '.join(datasets)}"
        )
    if history < 1:
        raise SpecError(path, "history_days", f"{history} is not positive", "use 1 or more")
    return UseCase(
        name=name,
        folder=folder,
        key=_required(
            spec, "key", path, str, 'name the column that identifies a row, e.g. key = "flight_id"'
        ),
        history_days=history,
        thresholds=_file(
            folder,
            path,
            "thresholds",
            _required(spec, "thresholds", path, str, "point at the gates' thresholds.toml"),
        ),
        datasets=datasets,
        features_suite=_suite(path, "features.suite", _file(folder, path, "features.suite", suite)),
        categorical=categorical,
        numeric=numeric,
        outcomes=outcomes,
        code=code,
        rows_dataset=rows_dataset,
        first_day=span[0],
        last_day=span[1],
        description=str(spec.get("description", "")),
    )


def _merged(defaults: dict, spec: dict) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in defaults.items()}
    for key, value in spec.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _number(section: dict, key: str, path: Path, where: str, fix: str) -> float:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(
            path, f"{where}.{key}", "missing" if value is None else f"{value!r} is not a number", fix
        )
    return float(value)


def load_model(usecase: UseCase, folder: Path, defaults: dict | None = None) -> Model:
    folder = Path(folder)
    path = folder / MODEL_FILE
    spec = _merged(_read_toml(DEFAULTS_FILE) if defaults is None else defaults, _read_toml(path))
    name = _required(spec, "name", path, str, f'name the model, e.g. name = "{folder.name}"')
    if name != folder.name:
        raise SpecError(
            path, "name", f"{name!r} is not the folder's name {folder.name!r}", "use the folder's name"
        )
    task = _required(spec, "task", path, str, f"set task to one of {', '.join(METRICS)}")
    if task not in METRICS:
        raise SpecError(path, "task", f"unknown task {task!r}", f"use one of {', '.join(METRICS)}")
    label = _required(
        spec,
        "label",
        path,
        str,
        f"name the label: one of {', '.join(usecase.outcomes)}, or one made in [label_from]",
    )
    label_from = spec.get("label_from")
    if label_from is None:
        if label not in usecase.outcomes:
            raise SpecError(
                path,
                "label",
                f"{label!r} is not an outcome of the {usecase.name} feature table",
                f"use one of {', '.join(usecase.outcomes)}, or make it in [label_from] from them",
            )
        label_columns, expression = (label,), None
    else:
        label_columns = _names(
            label_from, "columns", path, "list the outcomes the label is made from", "label_from"
        )
        unknown = [c for c in label_columns if c not in usecase.outcomes]
        if unknown:
            raise SpecError(
                path,
                "label_from.columns",
                f"{unknown} are not outcomes",
                f"use {', '.join(usecase.outcomes)}",
            )
        expression = _required(
            label_from, "expression", path, str, "write the label as a Spark SQL expression", "label_from"
        )
        if label in usecase.feature_columns or label in usecase.outcomes:
            raise SpecError(
                path, "label", f"{label!r} is already a column of the table", "give the made label a new name"
            )
    features = _names(spec, "features", path, "list the feature columns the model reads")
    unknown = [c for c in features if c not in usecase.feature_columns]
    if unknown:
        known = ", ".join(usecase.feature_columns)
        raise SpecError(
            path,
            "features",
            f"unknown feature column(s) {unknown}",
            f"use columns of the feature table: {known}",
        )
    pipeline = _file(
        folder,
        path,
        "pipeline",
        _required(spec, "pipeline", path, str, "point at the file with make_pipeline() and param_grid()"),
    )
    suite = _required(
        spec, "predictions_suite", path, str, "point at the GX suite that gates each day's predictions"
    )
    predictions_suite = _suite(path, "predictions_suite", _file(folder, path, "predictions_suite", suite))

    metrics_spec = _required(spec, "metrics", path, dict, "add [metrics] with logged and deciding")
    known = METRICS[task]
    metrics = _names(metrics_spec, "logged", path, f"list metrics of a {task}: {', '.join(known)}", "metrics")
    unknown = [m for m in metrics if m not in known]
    if unknown:
        raise SpecError(
            path,
            "metrics.logged",
            f"the evaluator does not know {unknown} for a {task}",
            f"use {', '.join(known)}",
        )
    deciding = _required(
        metrics_spec,
        "deciding",
        path,
        str,
        f"name the metric that decides: one of {', '.join(DECIDING[task])}",
        "metrics",
    )
    if deciding not in DECIDING[task] or deciding not in metrics:
        raise SpecError(
            path,
            "metrics.deciding",
            f"{deciding!r} cannot decide here",
            f"use one of {', '.join(m for m in DECIDING[task] if m in metrics)} (and log it)",
        )

    evaluation = _required(spec, "evaluation", path, dict, "add [evaluation] with its rules")
    fix = "set it in [evaluation]"
    for key in ("min_improvement", "slice_tolerance", "min_slice_rows"):
        _number(evaluation, key, path, "evaluation", fix)
    slice_column = _required(
        evaluation,
        "slice",
        path,
        str,
        "name the column the challenger is compared by, e.g. carrier",
        "evaluation",
    )
    if slice_column not in usecase.categorical:
        raise SpecError(
            path,
            "evaluation.slice",
            f"{slice_column!r} is not a categorical column",
            f"use one of {', '.join(usecase.categorical)}",
        )

    sign_off = _required(spec, "sign_off", path, dict, "add [sign_off] with approvers")
    approvers = _names(sign_off, "approvers", path, "list the users who may approve this model", "sign_off")
    if not approvers:
        raise SpecError(path, "sign_off.approvers", "empty", "list at least one user")
    timeout = _number(sign_off, "timeout_hours", path, "sign_off", "set the hours approvers have")

    monitoring = _required(spec, "monitoring", path, dict, "add [monitoring]")
    for key in ("slices", "drift_categorical"):
        cols = _names(monitoring, key, path, "list categorical columns", "monitoring")
        if bad := [c for c in cols if c not in usecase.categorical]:
            raise SpecError(
                path,
                f"monitoring.{key}",
                f"{bad} are not categorical columns",
                f"use {', '.join(usecase.categorical)}",
            )
    if bad := [
        c
        for c in _names(monitoring, "drift_numeric", path, "list numeric columns", "monitoring")
        if c not in usecase.numeric
    ]:
        raise SpecError(
            path,
            "monitoring.drift_numeric",
            f"{bad} are not numeric columns",
            f"use {', '.join(usecase.numeric)}",
        )

    retraining = _required(spec, "retraining", path, dict, "add [retraining]")
    if retraining.get("metric") not in metrics:
        raise SpecError(
            path,
            "retraining.metric",
            f"{retraining.get('metric')!r} is not a logged metric",
            f"use one of {', '.join(metrics)}",
        )
    for key in (
        "tolerance",
        "consecutive_days",
        "window_days",
        "cooling_off_days",
        "train_days",
        "holdout_days",
    ):
        _number(retraining, key, path, "retraining", "set it in [retraining] (or leave the default)")
    retention = _number(
        _required(spec, "retention", path, dict, "add [retention]"),
        "retention_days",
        path,
        "retention",
        "set the days",
    )

    registered = _required(
        spec, "registered_name", path, str, f'name it in the registry, e.g. "{usecase.name}_{name}"'
    )
    return Model(
        name=name,
        usecase=usecase,
        folder=folder,
        registered_name=registered,
        task=task,
        label=label,
        label_columns=label_columns,
        label_expression=expression,
        features=features,
        pipeline=pipeline,
        predictions_suite=predictions_suite,
        metrics=metrics,
        deciding=deciding,
        evaluation=dict(evaluation),
        approvers=approvers,
        timeout_hours=timeout,
        monitoring=dict(monitoring),
        retraining=dict(retraining),
        retention_days=int(retention),
        raw=spec,
    )


def pipeline_module(model: Model):
    """The model's pipeline file as a module (``make_pipeline(model)``, ``param_grid(stages, size)``),
    loaded from its folder; run on the driver of a training, never at DAG parse time."""
    import importlib.util

    name = f"mlcycle_pipeline_{model.usecase.name}_{model.name}"
    spec = importlib.util.spec_from_file_location(name, model.pipeline)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for needed in ("make_pipeline", "param_grid"):
        if not callable(getattr(module, needed, None)):
            raise SpecError(
                model.pipeline, needed, "not defined", f"define {needed}() in {model.pipeline.name}"
            )
    return module


def catalog(root: Path | str | None = None) -> Catalog:
    """Every use case under ``root`` and every model inside them; a folder that is refused is in
    ``errors`` and the rest are kept. Two models with one name (or one registered name) are both
    refused: neither may take the other's DAGs, paths or versions."""
    root = usecases_root() if root is None else root
    out = Catalog()
    defaults = _read_toml(DEFAULTS_FILE)
    found: list[Model] = []
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        try:
            usecase = load_usecase(folder)
        except SpecError as exc:
            out.errors.append(exc)
            continue
        out.usecases[usecase.name] = usecase
        models = folder / "models"
        for model_folder in (
            sorted(p for p in models.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
            if models.is_dir()
            else []
        ):
            try:
                found.append(load_model(usecase, model_folder, defaults))
            except SpecError as exc:
                out.errors.append(exc)
    for key, what in ((lambda m: m.name, "name"), (lambda m: m.registered_name, "registered_name")):
        seen: dict[str, list[Model]] = {}
        for model in found:
            seen.setdefault(key(model), []).append(model)
        for value, same in seen.items():
            if len(same) > 1:
                for model in same:
                    others = ", ".join(str(m.folder) for m in same if m is not model)
                    out.errors.append(
                        SpecError(
                            model.folder / MODEL_FILE,
                            what,
                            f"{value!r} is also the {what} of {others}",
                            f"give each model its own {what}",
                        )
                    )
                found = [m for m in found if m not in same]
    out.models = {m.name: m for m in found}
    return out


def find_model(name: str, root: Path | str | None = None) -> Model:
    """The model ``name`` of the catalog; a refused or unknown one raises ``SpecError`` saying why."""
    root = usecases_root() if root is None else root
    found = catalog(root)
    if name in found.models:
        return found.models[name]
    for error in found.errors:
        if Path(error.path).parent.name == name:
            raise error
    known = ", ".join(sorted(found.models)) or "none"
    raise SpecError(root, "model", f"no model named {name!r}", f"use one of: {known}")


def find_usecase(name: str | None = None, root: Path | str | None = None) -> UseCase:
    """The use case ``name`` of the catalog; without a name, the only one there is."""
    root = usecases_root() if root is None else root
    found = catalog(root)
    if name is None:
        if len(found.usecases) == 1:
            return next(iter(found.usecases.values()))
        raise SpecError(
            root,
            "usecase",
            f"{len(found.usecases)} use cases",
            f"name one of: {', '.join(sorted(found.usecases))}",
        )
    if name in found.usecases:
        return found.usecases[name]
    for error in found.errors:
        if Path(error.path).parent.name == name:
            raise error
    raise SpecError(
        root, "usecase", f"no use case named {name!r}", f"use one of: {', '.join(sorted(found.usecases))}"
    )


class RefusedFolders(Exception):
    """Raised by the DAG file of refused folders, so that Airflow lists them as an import error."""


def refuse_bad_folders(root: Path | str | None = None) -> None:
    """Raise ``RefusedFolders`` naming every refused folder, its field and its fix (nothing when
    every folder loads). The DAG file that calls this holds no DAG: the other models' DAGs load
    from their own files whatever it says."""
    errors = catalog(root).errors
    if errors:
        lines = "\n".join(f"- {e}" for e in errors)
        raise RefusedFolders(
            f"{len(errors)} use case or model folder(s) refused; their DAGs are not built:\n{lines}"
        )
