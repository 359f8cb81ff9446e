"""The data-quality view of the Airflow UI: what a gate decided about a day, as one HTML page.

Everything here is plain Python on the verdict JSON the gates write
(``<data_root>/gates/<gate>/ds=D.json``, see ``mlcycle.quality.gates``): no Airflow, no GX, no Spark, so
the page renders the same in a unit test as behind the api-server. The plugin
(``plugins/mlcycle_quality.py``) only wires these functions to routes; ``quality_url`` is shared
with the "Data quality" extra link of ``plugins/mlcycle_links.py``.

Every value that comes from a verdict file, a run id or a query string is escaped with
``html.escape``; a field missing or null in an older verdict is shown as such, never a 500.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from html import escape
from pathlib import Path
from urllib.parse import quote

from mlcycle.quality.gates import GATED_TASKS, result_path, task_gates

MOUNT = "/mlcycle"  # where the plugin's FastAPI app is mounted on the api-server
DOCS_DIR = "data_docs"  # the GX Data Docs site, under the data root
_DS_ARG = re.compile(r"--ds\W+(\d{4}-\d{2}-\d{2})")
_RANGE_ARG = re.compile(r"--start\W+(\d{4}-\d{2}-\d{2})\W+--end\W+(\d{4}-\d{2}-\d{2})")
_SHOWN_CHARS = 600  # an observed value longer than this is cut in the page (the file has it all)


def quality_url(base: str, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """Address of the data-quality page of one task instance; each part is percent-encoded, so a
    run id such as ``scheduled__2013-01-02T00:00:00+00:00`` survives the trip."""
    url = f"{base.rstrip('/')}{MOUNT}/quality/{_seg(dag_id)}/{_seg(run_id)}/{_seg(task_id)}"
    return f"{url}?map_index={map_index}" if map_index is not None and map_index >= 0 else url


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def parse_day(value: str) -> str:
    """``value`` as a YYYY-MM-DD day; ValueError otherwise (it becomes part of a file name)."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"not a day (YYYY-MM-DD): {value!r}")
    return date.fromisoformat(value).isoformat()


def days_from_rendered_args(values: Iterable[object]) -> list[str]:
    """The days named by ``--ds D`` (or ``--start D1 --end D2``: every day between) in the rendered
    arguments of a task's instances (a list, or a string when Airflow truncated it), sorted and
    unique."""
    from datetime import timedelta

    days = set()
    for value in values:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        days.update(_DS_ARG.findall(text))
        for start, end in _RANGE_ARG.findall(text):
            first, last = date.fromisoformat(start), date.fromisoformat(end)
            days.update((first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1))
    return sorted(days)


def days_from_events(extras: Iterable[Mapping | None]) -> list[str]:
    """The ``ds`` days named by the extras of the asset events that triggered a run."""
    days: set[str] = set()
    for extra in extras:
        value = (extra or {}).get("ds")
        for day in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
            try:
                days.add(parse_day(day))
            except ValueError:
                continue
    return sorted(days)


def day_of(moment: datetime | date | None) -> str | None:
    if isinstance(moment, datetime):
        return moment.date().isoformat()
    return None if moment is None else moment.isoformat()


def resolve_days(
    *,
    override: str | None = None,
    rendered_args: Sequence[object] = (),
    data_interval_start: datetime | None = None,
    logical_date: datetime | None = None,
    event_extras: Sequence[Mapping | None] = (),
) -> tuple[list[str], str]:
    """The days a task instance judged, and where they were read from, first found wins:
    ``?ds=``; the ``--ds`` argument the task was rendered with (exact, also for the mapped
    ``score`` task of an asset-triggered run); the run's logical date; the start of its data
    interval; the ``ds`` of the asset events that triggered the run.

    The logical date comes before the data interval because Airflow 3 renders ``{{ ds }}`` from
    the logical date: for a scheduled daily run both name the same day, but a run triggered by
    hand for 2013-01-02 gets the data interval 2013-01-01..02 while its tasks gate 2013-01-02.
    Asset-triggered runs have neither."""
    if override:
        return [parse_day(override)], "the ds query parameter"
    if days := days_from_rendered_args(rendered_args):
        return days, "the task's rendered --ds argument"
    if logical_date is not None:
        return [day_of(logical_date)], "the run's logical date"
    if data_interval_start is not None:
        return [day_of(data_interval_start)], "the run's data interval start"
    if days := days_from_events(event_extras):
        return days, "the asset events that triggered the run"
    return [], "nothing (no rendered --ds, no logical date, no data interval, no ds in asset events)"


def load_verdicts(data_root: str, gates: Sequence[str], days: Sequence[str]) -> dict[tuple[str, str], dict]:
    """The recorded verdict of each gate on each day, by ``(gate, ds)``; a gate that has not
    judged the day is absent; an unreadable file becomes ``{"unreadable": reason}``."""
    verdicts = {}
    for ds in days:
        for gate in gates:
            path = Path(result_path(data_root, gate, ds))
            if not path.is_file():
                continue
            try:
                verdict = json.loads(path.read_text(encoding="utf-8"))
                verdicts[(gate, ds)] = (
                    verdict if isinstance(verdict, dict) else {"unreadable": "not an object"}
                )
            except (OSError, ValueError) as exc:
                verdicts[(gate, ds)] = {"unreadable": f"{type(exc).__name__}: {exc}"}
    return verdicts


def docs_href(path: object, docs_root: str, docs_base: str) -> str | None:
    """The URL under ``docs_base`` serving ``path``, a file of the Data Docs site at
    ``docs_root``; None when there is no such file path or it lies outside the site."""
    if not isinstance(path, str) or not path:
        return None
    raw = path.removeprefix("file://")
    try:
        relative = Path(raw).resolve().relative_to(Path(docs_root).resolve())
    except (ValueError, OSError):
        return None
    return f"{docs_base.rstrip('/')}/" + "/".join(_seg(part) for part in relative.parts)


def status_of(verdict: Mapping | None) -> str:
    if verdict is None:
        return "NO VERDICT"
    if "unreadable" in verdict:
        return "UNREADABLE"
    return "PASSED" if verdict.get("success") is True else "BLOCKED"


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + " …"


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def rows_summary(verdict: Mapping) -> str | None:
    """``raw = validated + quarantined`` and whether the counts reconcile; None if not recorded."""
    rows, validated, quarantined = (_int(verdict.get(k)) for k in ("rows", "validated", "quarantined"))
    if rows is None and validated is None and quarantined is None:
        return None
    parts = [f"{_e(rows if rows is not None else '?')} rows read"]
    if validated is not None or quarantined is not None:
        parts.append(
            f" = {_e(validated if validated is not None else '?')} validated"
            f" + {_e(quarantined if quarantined is not None else '?')} quarantined"
        )
    reconciled = verdict.get("reconciled")
    if not isinstance(reconciled, bool) and None not in (rows, validated, quarantined):
        reconciled = rows == validated + quarantined
    if reconciled is True:
        parts.append(' <span class="ok">(reconciled)</span>')
    elif reconciled is False:
        parts.append(' <span class="bad">(NOT reconciled: the counts do not add up)</span>')
    return "".join(parts)


def _failed_table(failed: object) -> str:
    entries = [f for f in failed if isinstance(f, Mapping)] if isinstance(failed, list) else []
    if not entries:
        return ""
    body = "".join(
        "<tr>"
        f"<td><code>{_e(f.get('expectation'))}</code></td>"
        f"<td>{_e(_shown(f.get('column')) if f.get('column') is not None else '')}</td>"
        f"<td><code>{_e(_shown(f.get('observed')))}</code></td>"
        f"<td><code>{_e(_shown(f['expected'])) if 'expected' in f else ''}</code></td>"
        "</tr>"
        for f in entries
    )
    return (
        f"<h4>Failing rules ({len(entries)})</h4>"
        '<table class="rules"><tr><th>expectation</th><th>column</th><th>observed</th><th>expected</th></tr>'
        f"{body}</table>"
    )


def _quarantine(verdict: Mapping) -> str:
    rules = verdict.get("quarantine_rules")
    rules = rules if isinstance(rules, Mapping) else {}
    location = verdict.get("quarantine")
    if not rules and not location:
        return ""
    counted = sorted(rules.items(), key=lambda item: (-(_int(item[1]) or 0), str(item[0])))
    body = "".join(
        f"<tr><td><code>{_e(rule)}</code></td><td>{_e(count)}</td></tr>" for rule, count in counted
    )
    table = (
        f'<table class="rules"><tr><th>quarantine rule</th><th>rows</th></tr>{body}</table>' if body else ""
    )
    where = f"<p>Quarantined rows: <code>{_e(location)}</code></p>" if location else ""
    return f"<h4>Quarantine</h4>{table}{where}"


def render_verdict(
    gate: str, ds: str, verdict: Mapping | None, *, docs_root: str, docs_base: str, data_root: str
) -> str:
    """One gate on one day, as an HTML section."""
    status = status_of(verdict)
    css = {"PASSED": "passed", "BLOCKED": "blocked"}.get(status, "missing")
    head = f'<h3><span class="badge {css}">{_e(status)}</span> gate <code>{_e(gate)}</code> on {_e(ds)}</h3>'
    if verdict is None:
        where = result_path(data_root, gate, ds)
        return (
            f'<section class="gate">{head}<p>No verdict for this day yet: the gate has not run on it '
            f"(or its task has not reached the gate). Expected at <code>{_e(where)}</code>.</p></section>"
        )
    if "unreadable" in verdict:
        return (
            f'<section class="gate">{head}<p>The verdict file cannot be read: '
            f"<code>{_e(verdict['unreadable'])}</code></p></section>"
        )
    failed = verdict.get("failed")
    n_failed = len(failed) if isinstance(failed, list) else 0
    evaluated = _int(verdict.get("evaluated"))
    facts = [
        ("suite", f"<code>{_e(verdict.get('suite'))}</code>" if verdict.get("suite") else "—"),
        ("validated data", _e(verdict.get("name")) or "—"),
        (
            "expectations",
            f"{n_failed} failed of {_e(evaluated)} evaluated"
            if evaluated is not None
            else f"{n_failed} failed",
        ),
    ]
    if (rows := rows_summary(verdict)) is not None:
        facts.append(("rows", rows))
    if verdict.get("source"):
        facts.append(("source", f"<code>{_e(verdict['source'])}</code>"))
    page = docs_href(verdict.get("docs_page"), docs_root, docs_base)
    index = docs_href(verdict.get("docs"), docs_root, docs_base)
    links = []
    if page:
        links.append(f'<a href="{_e(page)}">this validation in the Data Docs</a>')
    if index:
        links.append(f'<a href="{_e(index)}">Data Docs index</a>')
    facts.append(("Data Docs", " · ".join(links) if links else "not built for this run"))
    table = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in facts)
    message = verdict.get("message")
    message_html = f"<h4>Message</h4><pre>{_e(message)}</pre>" if message else ""
    return (
        f'<section class="gate">{head}<table class="facts">{table}</table>'
        f"{_failed_table(failed)}{_quarantine(verdict)}{message_html}</section>"
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1f2933; }
h1 { font-size: 1.3rem; } h3 { margin-bottom: .4rem; } h4 { margin: .8rem 0 .3rem; }
section.gate { border: 1px solid #d9e2ec; border-radius: 6px; padding: .3rem 1rem 1rem; margin: 1rem 0; }
.badge { padding: .1rem .5rem; border-radius: 4px; color: white; font-size: .9rem; }
.passed { background: #2f855a; } .blocked { background: #c53030; } .missing { background: #718096; }
.ok { color: #2f855a; } .bad { color: #c53030; font-weight: bold; }
table { border-collapse: collapse; } th, td { text-align: left; padding: .2rem .6rem; vertical-align: top; }
table.rules td, table.rules th { border: 1px solid #d9e2ec; } table.facts th { color: #52606d; }
pre { background: #f5f7fa; padding: .6rem; white-space: pre-wrap; }
.muted { color: #52606d; }
"""


def render_page(
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    days: Sequence[str],
    days_from: str,
    verdicts: Mapping[tuple[str, str], Mapping],
    data_root: str,
    docs_base: str,
    task_url: str | None = None,
    docs_root: str | None = None,
    gates: Sequence[str] | None = None,
) -> str:
    """The page of one task instance: each gate of ``task_id`` on each of ``days``. ``data_root``
    is where the verdicts are (a model's records for its ``score`` task); ``docs_root`` the Data
    Docs site (default: under ``data_root``)."""
    if gates is None:
        gates = task_gates(task_id) if task_id in GATED_TASKS else ()
    docs_root = docs_root or str(Path(data_root) / DOCS_DIR)
    title = f"Data quality: {task_id} of {dag_id}"
    back = f' · <a href="{_e(task_url)}">task instance in Airflow</a>' if task_url else ""
    intro = (
        f"<h1>{_e(title)}</h1>"
        f'<p class="muted">run <code>{_e(run_id)}</code>{back}<br>'
        f"day(s) {_e(', '.join(days) or 'unknown')}, from {_e(days_from)}</p>"
    )
    if not gates:
        body = f"<p>The task <code>{_e(task_id)}</code> runs no data-quality gate.</p>"
    elif not days:
        body = "<p>No day is known for this run: add <code>?ds=YYYY-MM-DD</code> to the address.</p>"
    else:
        sections = [
            render_verdict(
                gate,
                ds,
                verdicts.get((gate, ds)),
                docs_root=docs_root,
                docs_base=docs_base,
                data_root=data_root,
            )
            for ds in days
            for gate in gates
        ]
        decided = [verdicts.get((gate, ds)) for ds in days for gate in gates]
        statuses = [status_of(v) for v in decided]
        if all(s == "NO VERDICT" for s in statuses):
            summary = "No verdict yet: none of the gates of this task has judged the day."
        elif "BLOCKED" in statuses:
            summary = f"{statuses.count('BLOCKED')} of {len(statuses)} gate verdicts BLOCKED the data."
        elif all(s == "PASSED" for s in statuses):
            summary = "Every gate PASSED."
        else:
            summary = "Some verdicts are missing or unreadable."
        body = f"<p><strong>{_e(summary)}</strong></p>" + "".join(sections)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>{intro}{body}</body></html>"
    )


def render_message(title: str, text: str) -> str:
    """A small page for a refusal or a missing run."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{_e(title)}</h1><p>{_e(text)}</p></body></html>"
    )


def model_of(dag_id: str, models: Iterable) -> object | None:
    """The model (``mlcycle.specs.Model``) whose DAG ``dag_id`` is (``<model>_<stage>``), or None."""
    owners = [m for m in models if dag_id.startswith(f"{m.name}_")]
    return max(owners, key=lambda m: len(m.name)) if owners else None


def render_models_page(models: Sequence, chart_base: str) -> str:
    """Every model of the catalog, each with a link to its monitoring chart."""
    items = "".join(
        f'<li><a href="{_e(chart_base)}/{_e(m.name)}">{_e(m.name)}</a>: {_e(m.registered_name)}, '
        f"{_e(m.task)} of <code>{_e(m.label)}</code>, monitored by {_e(m.retraining['metric'])}</li>"
        for m in models
    )
    body = f"<ul>{items}</ul>" if models else "<p>No model in the catalog.</p>"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Model monitoring</title><style>{_STYLE}</style></head>"
        f"<body><h1>Model monitoring</h1><p>The live record of every model against what happened.</p>"
        f"{body}</body></html>"
    )


def _num(value: object) -> str:
    return "" if value is None else f"{float(value):.4f}"


def render_live_record(metric: str, online: Sequence[Mapping], shadows: Sequence[tuple]) -> str:
    """Two tables under the chart: the scoring service's answers against the batch predictions,
    day by day and per version, on ``metric``; and each version scored in the shadow, day by day
    and pooled, beside the champion on the same requests (``shadows``: (version, days, pooled),
    as ``mlcycle.monitoring.shadow`` reads them)."""
    parts = [f'<h2 id="online">Online answers against batch predictions ({_e(metric)})</h2>']
    if online:
        rows = "".join(
            f"<tr><td>{_e(r['ds'])}</td><td>v{_e(r['model_version'])}</td><td>{_shown(r['batch_rows'])}</td>"
            f"<td>{_num(r['batch'])}</td><td>{_shown(r['online_requests'])}</td>"
            f"<td>{_shown(r['online_rows'])}</td><td>{_num(r['online'])}</td></tr>"
            for r in online
        )
        parts.append(
            "<table><tr><th>day</th><th>version</th><th>batch: flights with outcome</th>"
            f"<th>batch {_e(metric)}</th><th>service: requests</th><th>service: with outcome</th>"
            f"<th>service {_e(metric)}</th></tr>{rows}</table>"
        )
    else:
        parts.append("<p>No request to the scoring service monitored yet.</p>")
    parts.append(f'<h2 id="shadow">Challengers in the shadow ({_e(metric)}, on the same requests)</h2>')
    if not shadows:
        parts.append("<p>No version has been scored in the shadow yet.</p>")
    for version, days, pooled in shadows:
        rows = "".join(
            f"<tr><td>{_e(d['ds'])}</td><td>{_shown(d.get('n_requests'))}</td><td>{_shown(d.get('n_actuals'))}</td>"
            f"<td>{_num(d.get(metric))}</td><td>{_num(d.get('champion_' + metric))}</td></tr>"
            for d in days
        )
        rows += (
            f"<tr><th>{_shown(pooled['days'])} day(s)</th><th>{_shown(pooled['n_requests'])}</th>"
            f"<th>{_shown(pooled['n_actuals'])}</th><th>{_num(pooled.get(metric))}</th>"
            f"<th>{_num(pooled.get('champion_' + metric))}</th></tr>"
        )
        parts.append(
            f"<h3>v{_e(version)}</h3><table><tr><th>day</th><th>requests</th><th>with outcome</th>"
            f"<th>v{_e(version)} (shadow)</th><th>champion</th></tr>{rows}</table>"
        )
    return "".join(parts)


def render_chart_page(
    chart_src: str,
    drawn_at: str | None,
    mlflow_url: str,
    experiment: str,
    model: str = "",
    metric: str = "MAE",
    live: str = "",
) -> str:
    """The monitoring chart of one model (``mlcycle.monitoring.live.write_chart``) and where its figures
    live."""
    if drawn_at is None:
        body = "<p>No chart yet: it is drawn by the monitoring DAG once a day's outcomes are in.</p>"
    else:
        body = (
            f"<p>Drawn by the last monitoring run, {_e(drawn_at)}. Daily and rolling {_e(metric)} of each "
            "version against its alert threshold; a vertical line marks the first day a new "
            "version scored.</p>"
            f'<p><img src="{_e(chart_src)}" alt="Daily and rolling {_e(metric)} against the alert threshold" '
            'style="max-width:100%"></p>'
        )
    title = f"Live record of {model}" if model else "Live error of the served model"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Model monitoring{': ' + _e(model) if model else ''}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{_e(title)}</h1>{body}"
        f'<p>Day by day figures per version: MLflow experiment <a href="{_e(mlflow_url)}">'
        f"{_e(experiment)}</a> (one run per version, one step per day).</p>{live}</body></html>"
    )
