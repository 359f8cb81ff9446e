"""The data-quality view, served by the Airflow api-server under ``/mlcycle``.

``GET /mlcycle/quality/{dag_id}/{run_id}/{task_id}[?ds=YYYY-MM-DD][&map_index=N]``
    every gate of a gated task (``mlcycle.quality.gates.task_gates``) on the day(s) of that task
    instance: verdict, rows, failing rules, quarantine, message, Data Docs links.
``GET /mlcycle/data-docs/{path}``
    the GX Data Docs site under ``<data_root>/data_docs``, as static files.
``GET /mlcycle/monitoring``
    every model of the catalog, each linked to its chart; also in Airflow's own menu.
``GET /mlcycle/monitoring/{model}`` and ``/mlcycle/monitoring/{model}/chart.png``
    the chart of the model's daily and rolling metric against the alert threshold that its
    monitoring DAG draws (``mlcycle.monitoring.live.write_chart``).

Airflow mounts a plugin's FastAPI app as it is: none of its own authentication applies. Both
routes therefore depend on Airflow's own dependencies from
``airflow.api_fastapi.core_api.security``: ``requires_access_dag("GET", TASK_INSTANCE)`` for the
quality page (a valid JWT, from ``Authorization: Bearer`` or the UI's ``_token`` cookie, and the
auth manager's permission to read that DAG's task instances) and ``get_user`` for the Data Docs.
A browser without a valid token is sent to the login page; other clients get the 401.

Every Airflow process imports the plugins folder, task processes included, so this module stays
cheap: FastAPI, the api-server's security module and the database models are imported when the
api-server answers its first request under ``/mlcycle``, not before.
"""

from pathlib import Path

from airflow.plugins_manager import AirflowPlugin

from mlcycle.config import settings
from mlcycle.quality.gates import GATED_TASKS, task_gates
from mlcycle.ui.pages import (
    DOCS_DIR,
    MOUNT,
    load_verdicts,
    model_of,
    render_chart_page,
    render_live_record,
    render_message,
    render_models_page,
    render_page,
    resolve_days,
)


def _models() -> dict:
    from mlcycle.specs import catalog

    return catalog().models


def _usecases() -> dict:
    from mlcycle.specs import catalog

    return catalog().usecases


# Note: no ``from __future__ import annotations`` here: FastAPI reads the annotations of the
# route functions, which are defined inside ``create_app`` with names imported there.


def run_facts(dag_id: str, run_id: str, task_id: str, map_index: int | None) -> dict | None:
    """What the metadata database says about the days of one task instance (see
    ``resolve_days``), or None when the run does not exist."""
    from airflow.models.dagrun import DagRun
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as RTIF
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run is None:
            return None
        query = select(RTIF.rendered_fields).where(
            RTIF.dag_id == dag_id, RTIF.run_id == run_id, RTIF.task_id == task_id
        )
        if map_index is not None and map_index >= 0:
            query = query.where(RTIF.map_index == map_index)
        rendered = [(fields or {}).get("application_args") for fields in session.scalars(query)]
        return {
            "rendered_args": [args for args in rendered if args],
            "data_interval_start": run.data_interval_start,
            "logical_date": run.logical_date,
            "event_extras": [event.extra for event in run.consumed_asset_events],
        }


def create_app():
    """The FastAPI app of the view (routes only; the HTML comes from ``mlcycle.ui.pages``)."""
    from airflow.api_fastapi.core_api.security import DagAccessEntity, get_user, requires_access_dag
    from fastapi import Depends, FastAPI, Request
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
    from starlette.exceptions import HTTPException

    app = FastAPI(title="mlcycle data quality", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def login_or_error(request: Request, exc: HTTPException):
        """A browser without a valid login goes to the login page and comes back."""
        if exc.status_code == 401 and "text/html" in request.headers.get("accept", ""):
            from airflow.api_fastapi.app import get_auth_manager

            login = get_auth_manager().get_url_login(next_url=str(request.url))
            return RedirectResponse(login, status_code=303)
        return await http_exception_handler(request, exc)

    def html(page: str, status_code: int = 200) -> HTMLResponse:
        return HTMLResponse(page, status_code=status_code, headers={"Cache-Control": "no-store"})

    @app.get(
        "/quality/{dag_id}/{run_id:path}/{task_id}",
        response_class=HTMLResponse,
        dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.TASK_INSTANCE))],
    )
    def quality(
        request: Request,
        dag_id: str,
        run_id: str,
        task_id: str,
        ds: str | None = None,
        map_index: int | None = None,
    ):
        if task_id not in GATED_TASKS:
            gated = ", ".join(sorted(GATED_TASKS))
            text = f"The task {task_id} runs no data-quality gate (gated tasks: {gated})."
            return html(render_message("No data-quality gate", text), 404)
        if ds is not None:
            try:
                days, days_from = resolve_days(override=ds)
            except ValueError as exc:
                return html(render_message("Not a day", str(exc)), 400)
        else:
            facts = run_facts(dag_id, run_id, task_id, map_index)
            if facts is None:
                text = f"The DAG {dag_id} has no run {run_id}."
                return html(render_message("No such run", text), 404)
            days, days_from = resolve_days(**facts)
        data_root = records = settings().data_root
        gates = task_gates(task_id, _usecases().get(dag_id.removesuffix("_data")))
        if task_id == "score":  # a model's predictions gate keeps its verdicts with its records
            from mlcycle.config import model_root

            model = model_of(dag_id, _models().values())
            if model is None:
                return html(render_message("No such model", f"No model of the catalog owns {dag_id}."), 404)
            records = model_root(data_root, model.name)
        root = request.scope.get("root_path", "")  # where this app is mounted, e.g. /mlcycle
        task_url = f"{root.removesuffix(MOUNT)}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}"
        if map_index is not None and map_index >= 0:
            task_url += f"/mapped/{map_index}"
        page = render_page(
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            days=days,
            days_from=days_from,
            verdicts=load_verdicts(records, gates, days),
            data_root=records,
            docs_base=f"{root}/data-docs",
            task_url=task_url,
            docs_root=str(Path(data_root) / DOCS_DIR),
            gates=gates,
        )
        return html(page)

    @app.get("/data-docs/{path:path}", dependencies=[Depends(get_user)])
    def data_docs(request: Request, path: str):
        site = (Path(settings().data_root) / DOCS_DIR).resolve()
        try:
            target = (site / path).resolve()
        except (OSError, ValueError):
            return html(render_message("Not found", "No such file in the Data Docs."), 404)
        if not target.is_relative_to(site):
            return html(render_message("Refused", "That path is outside the Data Docs site."), 403)
        if target.is_dir():
            if path and not path.endswith("/"):
                return RedirectResponse(request.url.replace(path=request.url.path + "/"), status_code=307)
            target = target / "index.html"
        if not target.is_file():
            text = "No such file in the Data Docs (no gate has built the site yet?)."
            return html(render_message("Not found", text), 404)
        return FileResponse(target)

    @app.get("/monitoring", response_class=HTMLResponse, dependencies=[Depends(get_user)])
    def monitoring_index(request: Request):
        root = request.scope.get("root_path", "")
        return html(render_models_page(list(_models().values()), f"{root}/monitoring"))

    def chart_of(name: str):
        from mlcycle.monitoring.live import chart_path

        model = _models().get(name)
        return (model, None) if model is None else (model, chart_path(settings().for_model(model)))

    @app.get("/monitoring/{name}", response_class=HTMLResponse, dependencies=[Depends(get_user)])
    def monitoring(request: Request, name: str):
        from datetime import UTC, datetime

        from mlcycle.evaluation import label

        model, chart = chart_of(name)
        if model is None:
            known = ", ".join(sorted(_models())) or "none"
            return html(render_message("No such model", f"No model named {name} (models: {known})."), 404)
        drawn = chart.stat().st_mtime if chart.is_file() else None
        drawn_at = (
            None if drawn is None else datetime.fromtimestamp(drawn, UTC).strftime("%Y-%m-%d %H:%M UTC")
        )
        from mlcycle.monitoring import shadow

        cfg = settings().for_model(model)
        metric = model.retraining["metric"]
        shadows = []
        for version in shadow.shadow_versions(cfg.model_root)[:3]:
            days = shadow.shadow_days(cfg.model_root, version)
            shadows.append((version, days, shadow.pooled(days, tuple(model.metrics))))
        live = render_live_record(metric, shadow.online_against_batch(cfg.model_root, metric), shadows)
        root = request.scope.get("root_path", "")
        page = render_chart_page(
            f"{root}/monitoring/{name}/chart.png?v={int(drawn or 0)}",  # a new drawing is not served from cache
            drawn_at,
            f"{settings().tracking_uri.rstrip('/')}/#/experiments",
            f"{model.registered_name}-monitoring",
            model=model.name,
            metric=label(metric),
            live=live,
        )
        return html(page)

    @app.get("/monitoring/{name}/chart.png", dependencies=[Depends(get_user)])
    def monitoring_chart(name: str):
        model, chart = chart_of(name)
        if chart is None or not chart.is_file():
            return html(render_message("No chart yet", "The monitoring DAG has not drawn it yet."), 404)
        return FileResponse(chart, media_type="image/png", headers={"Cache-Control": "no-store"})

    return app


class QualityApp:
    """The ASGI app mounted on the api-server; it builds the FastAPI app on its first request."""

    def __init__(self):
        self._app = None

    async def __call__(self, scope, receive, send):
        if self._app is None:
            self._app = create_app()
        await self._app(scope, receive, send)


class QualityPlugin(AirflowPlugin):
    name = "mlcycle_quality"
    fastapi_apps = [{"app": QualityApp(), "url_prefix": MOUNT, "name": "mlcycle data quality"}]
    # Inside Airflow's own UI, behind its login: the monitoring of every model in the menu, and the
    # data-quality page of a task instance as one of its tabs (a task that runs no gate says so).
    external_views = [
        {
            "name": "Model monitoring",
            "href": f"{MOUNT}/monitoring",
            "destination": "nav",
            "url_route": "model-monitoring",
            "category": "browse",
        },
        {
            "name": "Data quality",
            "href": f"{MOUNT}/quality/{{DAG_ID}}/{{RUN_ID}}/{{TASK_ID}}?map_index={{MAP_INDEX}}",
            "destination": "task_instance",
            "url_route": "data-quality",
        },
    ]
