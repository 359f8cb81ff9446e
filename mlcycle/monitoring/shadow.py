"""A waiting challenger's live record: the scoring service answered each request with the
champion and scored it with the challenger in the shadow (never returned); the monitoring job
joined the request log with the outcomes, day by day (``<model root>/monitoring_online/ds=D``,
``shadow`` rows with the champion's metrics on the same requests beside them). Here those days are
read, pooled, and written as the sign-off evidence shows them and as tags of the version.

Pooling over days weights each day by its requests with a known outcome: exact for a mean error
(MAE, log loss, bias) and for RMSE (pooled through the squares); for AUC and calibration it is the
weighted mean of the days' values, not the AUC of the pooled requests.

Plain functions; pandas is imported inside them (DAG files import the modules that import this).
"""

from __future__ import annotations

import math
from pathlib import Path

from mlcycle.specs import METRICS

ONLINE = "monitoring_online"
TAG = "live.shadow"  # tags of the challenger version: live.shadow.<what>


def _number(value) -> float | None:
    return None if value is None or value != value else float(value)


def shadow_days(records: str | Path, version: int | str) -> list[dict]:
    """Every day the service scored ``version`` in the shadow, oldest first: the day's ``shadow``
    row of ``monitoring_online`` (ds, n_requests, n_actuals, the challenger's metrics, and the
    champion's on the same requests as ``champion_<metric>``)."""
    import pandas as pd

    root = Path(records) / ONLINE
    days = sorted(p.name[3:] for p in root.glob("ds=*") if any(p.glob("*.parquet"))) if root.is_dir() else []
    out = []
    for ds in days:
        frame = pd.read_parquet(root / f"ds={ds}")
        mine = frame[(frame["role"] == "shadow") & (frame["model_version"].astype(str) == str(version))]
        for record in mine.to_dict("records"):
            record = {k: (_number(v) if isinstance(v, float) else v) for k, v in record.items()}
            out.append({**record, "ds": ds, "model_version": str(record["model_version"])})
    return out


def _pool(days: list[dict], column: str, metric: str) -> float | None:
    known = [(d["n_actuals"], d[column]) for d in days if d.get(column) is not None and d["n_actuals"]]
    weight = sum(n for n, _ in known)
    if not weight:
        return None
    if metric == "rmse":
        return math.sqrt(sum(n * v * v for n, v in known) / weight)
    return sum(n * v for n, v in known) / weight


def pooled(days: list[dict], metrics: tuple[str, ...]) -> dict:
    """The days together: how many days, requests and outcomes; each metric of the challenger and
    of the champion on the same requests (see the module's note on pooling)."""
    summary = {
        "days": len(days),
        "first": days[0]["ds"] if days else None,
        "last": days[-1]["ds"] if days else None,
        "n_requests": int(sum(d.get("n_requests") or 0 for d in days)),
        "n_actuals": int(sum(d.get("n_actuals") or 0 for d in days)),
    }
    for metric in metrics:
        summary[metric] = _pool(days, metric, metric)
        summary[f"champion_{metric}"] = _pool(days, f"champion_{metric}", metric)
    return summary


def verdict(summary: dict, metric: str, task: str) -> str:
    """Which side the live requests favour on ``metric``, in words."""
    mine, theirs = summary.get(metric), summary.get(f"champion_{metric}")
    if mine is None or theirs is None:
        return "no outcome known yet"
    higher = METRICS[task][metric]
    if mine == theirs:
        return "even"
    better = (mine > theirs) == higher
    return "the challenger is better" if better else "the champion is better"


def markdown(model, version: int | str, days: list[dict]) -> str:
    """The evidence's section on the live requests, to sit beside the holdout comparison."""
    lines = ["", "", f"**Live, in the shadow** (v{version} scored every request beside the champion)", ""]
    if not days:
        lines.append(
            "No live requests with known outcomes yet: the scoring service scores this version in the"
            " shadow while it waits, and each monitoring run adds the day (Model monitoring page, and"
            f" the version's `{TAG}.*` tags in MLflow)."
        )
        return "\n".join(lines)
    summary = pooled(days, tuple(model.metrics))
    metrics = tuple(model.metrics)
    lines.append(
        "| day | requests | with outcome | "
        + " | ".join(f"{m} challenger | {m} champion" for m in metrics)
        + " |"
    )
    lines.append("|---" * (3 + 2 * len(metrics)) + "|")

    def cell(value) -> str:
        return "" if value is None else f"{value:.4f}"

    for d in days:
        lines.append(
            f"| {d['ds']} | {int(d.get('n_requests') or 0)} | {int(d.get('n_actuals') or 0)} | "
            + " | ".join(f"{cell(d.get(m))} | {cell(d.get('champion_' + m))}" for m in metrics)
            + " |"
        )
    lines.append(
        f"| **{summary['days']} day(s)** | **{summary['n_requests']}** | **{summary['n_actuals']}** | "
        + " | ".join(f"**{cell(summary[m])}** | **{cell(summary['champion_' + m])}**" for m in metrics)
        + " |"
    )
    lines += [
        "",
        f"On {model.deciding}: {verdict(summary, model.deciding, model.task)} on the same live requests.",
    ]
    return "\n".join(lines)


def tags(summary: dict, metrics: tuple[str, ...]) -> dict[str, str]:
    """The pooled record as tags of the challenger version (``live.shadow.<what>``)."""
    out = {
        f"{TAG}.days": str(summary["days"]),
        f"{TAG}.span": f"{summary['first']}..{summary['last']}",
        f"{TAG}.requests": str(summary["n_requests"]),
        f"{TAG}.with_outcome": str(summary["n_actuals"]),
    }
    for metric in metrics:
        for key in (metric, f"champion_{metric}"):
            if summary.get(key) is not None:
                out[f"{TAG}.{key}"] = f"{summary[key]:.6g}"
    return out


def record_on_version(client, model, version: int | str, records: str | Path) -> dict[str, str]:
    """Keep the challenger's pooled live record on its registered version (the MLflow UI shows
    it on the version's page, which the sign-off links)."""
    found = tags(pooled(shadow_days(records, version), tuple(model.metrics)), tuple(model.metrics))
    for key, value in found.items():
        client.set_model_version_tag(model.registered_name, str(version), key, value)
    return found


def online_against_batch(records: str | Path, metric: str, last_days: int = 14) -> list[dict]:
    """The last ``last_days`` monitored days, per version that answered: the batch predictions'
    ``metric`` (``monitoring``) beside the scoring service's answers' (``monitoring_online``,
    ``champion`` rows), with their counts. Newest first."""
    import pandas as pd

    def read(dataset: str) -> dict[tuple[str, str], dict]:
        root = Path(records) / dataset
        if not root.is_dir():
            return {}
        out = {}
        days = sorted(p.name[3:] for p in root.glob("ds=*") if any(p.glob("*.parquet")))[-last_days:]
        for ds in days:
            for record in pd.read_parquet(root / f"ds={ds}").to_dict("records"):
                if record.get("role", "champion") == "champion":
                    out[(ds, str(record["model_version"]))] = record
        return out

    batch, online = read("monitoring"), read(ONLINE)
    days = set(sorted({ds for ds, _ in (*batch, *online)})[-last_days:])
    rows = []
    for ds, version in sorted({k for k in (*batch, *online) if k[0] in days}, reverse=True):
        b, o = batch.get((ds, version), {}), online.get((ds, version), {})
        rows.append(
            {
                "ds": ds,
                "model_version": version,
                "batch_rows": int(b.get("n_actuals") or 0) if b else None,
                "batch": _number(b.get(metric)) if b else None,
                "online_requests": int(o.get("n_requests") or 0) if o else None,
                "online_rows": int(o.get("n_actuals") or 0) if o else None,
                "online": _number(o.get(metric)) if o else None,
            }
        )
    return rows


def shadow_versions(records: str | Path) -> list[str]:
    """The versions the service has scored in the shadow, newest first."""
    import pandas as pd

    root = Path(records) / ONLINE
    found = set()
    if root.is_dir():
        for part in root.glob("ds=*"):
            if any(part.glob("*.parquet")):
                frame = pd.read_parquet(part, columns=["model_version", "role"])
                found |= set(frame[frame["role"] == "shadow"]["model_version"].astype(str))
    return sorted(found, key=lambda v: int(v) if v.isdigit() else 0, reverse=True)
