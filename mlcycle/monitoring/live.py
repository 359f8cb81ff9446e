"""The steps of the monitoring DAG around the Spark job: which days a run is about, the champion's
record so far, and whether it has degraded enough to start its own replacement.

Plain functions of explicit arguments; pandas and MLflow are imported inside them (DAG files import
this module while being parsed).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from mlcycle.config import Settings
from mlcycle.monitoring.retraining import RetrainRule, decide

LAST_TRIGGERED = "retraining.last_triggered_for"
LAST_RUN = "retraining.last_run_id"
LAST_REASON = "retraining.last_reason"
VERSION_TAG = "monitoring.model_version"
NAME_TAG = "monitoring.model_name"
CHART_FILE = "reports/monitoring.png"
CHART_ARTIFACT = "monitoring.png"


def rule_from_params(params: dict, base: RetrainRule) -> RetrainRule:
    """The model's rule (``RetrainRule.of(model)``) with what a run's params set."""

    def pick(name: str, default):
        value = params.get(name)
        return default if value is None else type(default)(value)

    return replace(
        base,
        tolerance=pick("retrain_tolerance", base.tolerance),
        consecutive_days=pick("retrain_consecutive_days", base.consecutive_days),
        window_days=pick("rolling_days", base.window_days),
        cooling_off_days=pick("cooling_off_days", base.cooling_off_days),
        train_days=pick("retrain_window_days", base.train_days),
        holdout_days=pick("retrain_holdout_days", base.holdout_days),
    )


def _read_days(root: Path, up_to: str | None = None) -> list[str]:
    days = sorted(p.name[3:] for p in root.glob("ds=*") if any(p.glob("*.parquet")))
    return [d for d in days if up_to is None or d <= up_to]


def _number(value) -> float | None:
    return None if value is None or value != value else float(value)


def version_history(records: str, model_version: int, metric: str, up_to: str | None = None) -> list[dict]:
    """Every monitored day of one model version (``<model root>/monitoring/ds=*``), oldest first:
    ds, value (of ``metric``), n_actuals."""
    import pandas as pd

    root = Path(records) / "monitoring"
    rows = []
    for ds in _read_days(root, up_to):
        frame = pd.read_parquet(root / f"ds={ds}")
        for record in frame[frame["model_version"].astype(str) == str(model_version)].to_dict("records"):
            rows.append(
                {
                    "ds": ds,
                    "value": _number(record.get(metric)),
                    "n_actuals": int(record.get("n_actuals") or 0),
                }
            )
    return rows


def retraining_decision(
    cfg: Settings, rule: RetrainRule, *, training_active: bool, up_to: str | None = None
) -> dict:
    """Whether the champion's record calls for retraining now (see ``mlcycle.monitoring.retraining``)."""
    from mlcycle import registry

    client = registry._client(cfg.tracking_uri)
    version = registry.champion(cfg.tracking_uri, cfg.model_name)
    if version is None:
        return {"trigger": False, "reason": "no champion yet"}
    mv = client.get_model_version(cfg.model_name, str(version))
    key = f"val_{rule.metric}"
    validation = client.get_run(mv.run_id).data.metrics.get(key) if mv.run_id else None
    if validation is None:
        return {"trigger": False, "reason": f"champion v{version} has no {key} to compare with"}
    model = client.get_registered_model(cfg.model_name)
    decision = decide(
        version_history(cfg.model_root, version, rule.metric, up_to),
        float(validation),
        rule,
        last_triggered=model.tags.get(LAST_TRIGGERED),
        training_active=training_active,
    )
    return {**decision, "champion_version": version}


def record_trigger(cfg: Settings, decision: dict, training_run_id: str) -> None:
    """Keep on the registered model when and why retraining was last started (the cooling-off
    period counts from it)."""
    from mlcycle import registry

    client = registry._client(cfg.tracking_uri)
    for key, value in (
        (LAST_TRIGGERED, decision["latest"]["ds"]),
        (LAST_RUN, training_run_id),
        (LAST_REASON, decision["reason"]),
    ):
        client.set_registered_model_tag(cfg.model_name, key, value)


def all_history(records: str, metric: str) -> list[dict]:
    """Every monitored day and version (``<model root>/monitoring/ds=*``): ds, model_version,
    value (of ``metric``), n_actuals."""
    import pandas as pd

    root = Path(records) / "monitoring"
    rows = []
    for ds in _read_days(root):
        for record in pd.read_parquet(root / f"ds={ds}").to_dict("records"):
            rows.append(
                {
                    "ds": ds,
                    "model_version": str(record["model_version"]),
                    "value": _number(record.get(metric)),
                    "n_actuals": int(record.get("n_actuals") or 0),
                }
            )
    return rows


def plot_history(
    history: list[dict],
    champions: list[dict],
    rule: RetrainRule,
    validation: dict[str, float],
    unit: str = "",
):
    """Daily and rolling value of the rule's metric for the versions that scored each day, against
    the alert threshold of each version (its validation value, worse by the tolerance); each
    change of the serving version is marked on the first day the new one scored (a matplotlib
    figure). The time axis spans the days shown (a day either side), however few.

    The marks are placed by the days of the data, not by the time of the sign-off: a backfill of
    last year approved today draws the change where the new version started scoring.
    ``champions``: the champion history (``registry.champion_history``), for who approved each;
    ``validation``: the metric on the validation days, by version.
    """
    from datetime import date, timedelta

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    from mlcycle.evaluation import label
    from mlcycle.monitoring.retraining import rolling

    name = label(rule.metric)
    approvers = {str(c["version"]): c.get("decided_by") for c in champions if c.get("decided_by")}
    fig, ax = plt.subplots(figsize=(12, 4.8))
    first_day, shown = {}, []
    for version in sorted({h["model_version"] for h in history}, key=int):
        rows = [h for h in history if h["model_version"] == version]
        rolled = rolling(rows, rule.window_days)
        if not rolled:
            continue
        days = [date.fromisoformat(r["ds"]) for r in rolled]
        shown += days
        first_day[version] = days[0]
        (daily,) = ax.plot(
            days, [r["value"] for r in rolled], ".", alpha=0.35, label=f"v{version} daily {name}"
        )
        color = daily.get_color()
        ax.plot(
            days,
            [r["rolling"] for r in rolled],
            "-",
            color=color,
            label=f"v{version} {rule.window_days}-day {name}",
        )
        if version in validation:
            threshold = rule.threshold(validation[version])
            ax.hlines(threshold, days[0], days[-1], linestyles="dashed", colors=color)
            ax.annotate(
                f"alert v{version}: {threshold:.3g}",
                (days[0], threshold),
                fontsize=8,
                va="bottom",
                color=color,
            )
    if shown:
        ax.set_xlim(min(shown) - timedelta(days=1), max(shown) + timedelta(days=1))
        locator = mdates.AutoDateLocator(minticks=3, maxticks=10)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    top = ax.get_xaxis_transform()  # x in data, y in axes: the labels stay inside the frame
    for version, day in sorted(first_day.items(), key=lambda item: item[1])[1:]:
        ax.axvline(day, color="black", linewidth=0.8)
        by = f", approved by {approvers[version]}" if version in approvers else ""
        ax.text(day, 0.98, f" v{version} serving{by}", transform=top, fontsize=8, rotation=90, va="top")
    ax.set_ylabel(f"{name}{f' ({unit})' if unit else ''}")
    ax.set_title(
        "Live error against what happened"
        if not rule.higher_is_better
        else f"Live {name} against what happened"
    )
    if shown:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def validation_values(cfg: Settings, metric: str) -> dict[str, float]:
    """The metric on the validation days of every registered version (its training run's
    ``val_<metric>``)."""
    from mlcycle import registry

    client = registry._client(cfg.tracking_uri)
    out = {}
    for mv in registry._versions(client, cfg.model_name):
        value = client.get_run(mv.run_id).data.metrics.get(f"val_{metric}") if mv.run_id else None
        if value is not None:
            out[str(mv.version)] = float(value)
    return out


def chart_path(cfg: Settings) -> Path:
    """Where the model's monitoring chart is kept: ``<model root>/reports/monitoring.png``."""
    return Path(cfg.model_root) / CHART_FILE


def write_chart(cfg: Settings, rule: RetrainRule, days: list[str] = ()) -> str:
    """Draw the chart of every monitored day of the model to ``chart_path`` (replaced whole, never
    half-written) and attach it to the MLflow monitoring run of each version that scored one of
    ``days``. Returns the file's path."""
    import tempfile

    import matplotlib.pyplot as plt

    from mlcycle import registry

    history = all_history(cfg.model_root, rule.metric)
    versions = {h["model_version"] for h in history if h["ds"] in set(days)}
    fig = plot_history(
        history,
        registry.champion_history(cfg.tracking_uri, cfg.model_name),
        rule,
        validation_values(cfg, rule.metric),
        unit=str(cfg.model.monitoring.get("unit", "")),
    )
    target = chart_path(cfg)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        staged = Path(tmp) / CHART_ARTIFACT
        fig.savefig(staged, dpi=100)
        plt.close(fig)
        client = registry._client(cfg.tracking_uri)
        for version in sorted(versions, key=int):
            client.log_artifact(monitoring_run_id(client, cfg.model_name, str(version)), str(staged))
        os.replace(staged, target)
    return str(target)


def monitoring_run_id(client, model_name: str, model_version: str) -> str:
    """Find or create the monitoring run of one model version (experiment ``<NAME>-monitoring``)."""
    experiment_name = f"{model_name}-monitoring"
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(experiment_name)
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{NAME_TAG}` = '{model_name}' and tags.`{VERSION_TAG}` = '{model_version}'",
        order_by=["attributes.start_time ASC"],
        max_results=1,
    )
    if runs:
        return runs[0].info.run_id
    run = client.create_run(
        experiment_id,
        run_name=f"monitoring-{model_name}-v{model_version}",
        tags={NAME_TAG: model_name, VERSION_TAG: model_version},
    )
    return run.info.run_id
