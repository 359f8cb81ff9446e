"""The steps of the monitoring DAG around the Spark job: which days a run is about, the champion's
record so far, and whether it has degraded enough to start its own replacement.

Plain functions of explicit arguments; pandas and MLflow are imported inside them (DAG files import
this module while being parsed).
"""

from __future__ import annotations

import os
from pathlib import Path

from mlcycle.config import Settings
from mlcycle.retraining import RetrainRule, decide

LAST_TRIGGERED = "retraining.last_triggered_for"
LAST_RUN = "retraining.last_run_id"
LAST_REASON = "retraining.last_reason"
VERSION_TAG = "monitoring.model_version"
NAME_TAG = "monitoring.model_name"
CHART_FILE = "reports/monitoring_mae.png"
CHART_ARTIFACT = "monitoring_mae.png"


def default_rule() -> RetrainRule:
    """The rule's defaults, from the environment (``MLCYCLE_RETRAIN_*``)."""
    base = RetrainRule()
    return RetrainRule(
        tolerance=float(os.environ.get("MLCYCLE_RETRAIN_TOLERANCE", base.tolerance)),
        consecutive_days=int(os.environ.get("MLCYCLE_RETRAIN_CONSECUTIVE_DAYS", base.consecutive_days)),
        window_days=int(os.environ.get("MLCYCLE_RETRAIN_ROLLING_DAYS", base.window_days)),
        cooling_off_days=int(os.environ.get("MLCYCLE_RETRAIN_COOLING_OFF_DAYS", base.cooling_off_days)),
        train_days=int(os.environ.get("MLCYCLE_RETRAIN_WINDOW_DAYS", base.train_days)),
        holdout_days=int(os.environ.get("MLCYCLE_RETRAIN_HOLDOUT_DAYS", base.holdout_days)),
    )


def rule_from_params(params: dict, base: RetrainRule) -> RetrainRule:
    def pick(name: str, default):
        value = params.get(name)
        return default if value is None else type(default)(value)

    return RetrainRule(
        tolerance=pick("retrain_tolerance", base.tolerance),
        consecutive_days=pick("retrain_consecutive_days", base.consecutive_days),
        window_days=pick("rolling_days", base.window_days),
        cooling_off_days=pick("cooling_off_days", base.cooling_off_days),
        train_days=pick("retrain_window_days", base.train_days),
        holdout_days=pick("retrain_holdout_days", base.holdout_days),
    )


def version_history(data_root: str, model_version: int, up_to: str | None = None) -> list[dict]:
    """Every monitored day of one model version (``monitoring/ds=*``), oldest first."""
    import pandas as pd

    root = Path(data_root) / "monitoring"
    days = sorted(p.name[3:] for p in root.glob("ds=*") if any(p.glob("*.parquet")))
    if up_to is not None:
        days = [d for d in days if d <= up_to]
    rows = []
    for ds in days:
        frame = pd.read_parquet(root / f"ds={ds}")
        for record in frame[frame["model_version"].astype(str) == str(model_version)].to_dict("records"):
            rows.append({"ds": ds, "mae": record.get("mae"), "n_actuals": int(record.get("n_actuals") or 0)})
    return [{**r, "mae": None if r["mae"] is None or r["mae"] != r["mae"] else float(r["mae"])} for r in rows]


def retraining_decision(
    cfg: Settings, rule: RetrainRule, *, training_active: bool, up_to: str | None = None
) -> dict:
    """Whether the champion's record calls for retraining now (see ``mlcycle.retraining``)."""
    from mlcycle import registry

    client = registry._client(cfg.tracking_uri)
    version = registry.champion(cfg.tracking_uri, cfg.model_name)
    if version is None:
        return {"trigger": False, "reason": "no champion yet"}
    mv = client.get_model_version(cfg.model_name, str(version))
    val_mae = client.get_run(mv.run_id).data.metrics.get("val_mae") if mv.run_id else None
    if val_mae is None:
        return {"trigger": False, "reason": f"champion v{version} has no validation MAE to compare with"}
    model = client.get_registered_model(cfg.model_name)
    decision = decide(
        version_history(cfg.data_root, version, up_to),
        float(val_mae),
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


def all_history(data_root: str) -> list[dict]:
    """Every monitored day and version (``monitoring/ds=*``): ds, model_version, mae, n_actuals."""
    import pandas as pd

    root = Path(data_root) / "monitoring"
    rows = []
    for part in sorted(root.glob("ds=*")):
        if not any(part.glob("*.parquet")):
            continue
        for record in pd.read_parquet(part).to_dict("records"):
            mae = record.get("mae")
            rows.append(
                {
                    "ds": part.name[3:],
                    "model_version": str(record["model_version"]),
                    "mae": None if mae is None or mae != mae else float(mae),
                    "n_actuals": int(record.get("n_actuals") or 0),
                }
            )
    return rows


def plot_mae(history: list[dict], champions: list[dict], rule: RetrainRule, val_mae: dict[str, float]):
    """Daily and rolling MAE of the versions that scored each day, against the alert threshold of
    each version (its validation MAE + tolerance); each change of the serving version is marked on
    the first day the new one scored (a matplotlib figure).

    The marks are placed by the days of the data, not by the time of the sign-off: a backfill of
    last year approved today draws the change where the new version started scoring.
    ``champions``: the champion history (``registry.champion_history``), for who approved each;
    ``val_mae``: validation MAE by version.
    """
    from datetime import date

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlcycle.retraining import rolling_mae

    approvers = {str(c["version"]): c.get("decided_by") for c in champions if c.get("decided_by")}
    fig, ax = plt.subplots(figsize=(12, 4.8))
    first_day = {}
    for version in sorted({h["model_version"] for h in history}, key=int):
        rows = [h for h in history if h["model_version"] == version]
        rolled = rolling_mae(rows, rule.window_days)
        if not rolled:
            continue
        days = [date.fromisoformat(r["ds"]) for r in rolled]
        first_day[version] = days[0]
        (daily,) = ax.plot(days, [r["mae"] for r in rolled], ".", alpha=0.35, label=f"v{version} daily MAE")
        color = daily.get_color()
        ax.plot(
            days,
            [r["rolling_mae"] for r in rolled],
            "-",
            color=color,
            label=f"v{version} {rule.window_days}-day MAE",
        )
        if version in val_mae:
            threshold = val_mae[version] + rule.tolerance
            ax.hlines(threshold, days[0], days[-1], linestyles="dashed", colors=color)
            ax.annotate(
                f"alert v{version}: {threshold:.1f}",
                (days[0], threshold),
                fontsize=8,
                va="bottom",
                color=color,
            )
    top = ax.get_xaxis_transform()  # x in data, y in axes: the labels stay inside the frame
    for version, day in sorted(first_day.items(), key=lambda item: item[1])[1:]:
        ax.axvline(day, color="black", linewidth=0.8)
        by = f", approved by {approvers[version]}" if version in approvers else ""
        ax.text(day, 0.98, f" v{version} serving{by}", transform=top, fontsize=8, rotation=90, va="top")
    ax.set_ylabel("MAE of air time (min)")
    ax.set_title("Live error against what happened")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def val_maes(cfg: Settings) -> dict[str, float]:
    """Validation MAE of every registered version (its training run's ``val_mae``)."""
    from mlcycle import registry

    client = registry._client(cfg.tracking_uri)
    out = {}
    for mv in registry._versions(client, cfg.model_name):
        value = client.get_run(mv.run_id).data.metrics.get("val_mae") if mv.run_id else None
        if value is not None:
            out[str(mv.version)] = float(value)
    return out


def write_chart(cfg: Settings, rule: RetrainRule, days: list[str] = ()) -> str:
    """Draw the chart of every monitored day to ``<data_root>/reports/monitoring_mae.png``
    (replaced whole, never half-written) and attach it to the MLflow monitoring run of each version
    that scored one of ``days``. Returns the file's path."""
    import tempfile

    import matplotlib.pyplot as plt

    from mlcycle import registry

    history = all_history(cfg.data_root)
    versions = {h["model_version"] for h in history if h["ds"] in set(days)}
    fig = plot_mae(
        history,
        registry.champion_history(cfg.tracking_uri, cfg.model_name),
        rule,
        val_maes(cfg),
    )
    target = Path(cfg.data_root) / CHART_FILE
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
