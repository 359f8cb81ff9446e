"""The data-quality view: the HTML of a verdict, the extra link, and the plugin's FastAPI app
(mounted under /mlcycle as the api-server mounts it) with Airflow's own JWT checks."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

import pytest

from mlcycle.config import REPO_ROOT
from mlcycle.quality.gates import result_path
from mlcycle.ui.pages import (
    days_from_rendered_args,
    docs_href,
    load_verdicts,
    quality_url,
    render_page,
    render_verdict,
    resolve_days,
)

PLUGINS = REPO_ROOT / "plugins"
RUN_ID = "scheduled__2013-01-02T00:00:00+00:00"
DS = "2013-01-02"


def load_plugin(name: str):
    spec = importlib.util.spec_from_file_location(f"_test_{name}", PLUGINS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def passed(data_root: str) -> dict:
    docs = f"{data_root}/data_docs"
    return {
        "ds": DS,
        "gate": "raw_weather",
        "success": True,
        "suite": "raw_weather",
        "name": "raw_weather",
        "evaluated": 9,
        "failed": [],
        "docs": f"{docs}/index.html",
        "docs_page": f"{docs}/validations/raw_weather/run 1/raw_weather.html",
        "rows": 24,
        "validated": 24,
        "quarantined": 0,
        "reconciled": True,
        "quarantine": None,
        "quarantine_rules": {},
        "source": f"{data_root}/landing/weather/ds={DS}/weather.csv",
        "message": None,
    }


def blocked(data_root: str) -> dict:
    docs = f"{data_root}/data_docs"
    return {
        "ds": DS,
        "gate": "raw_flights",
        "success": False,
        "suite": "raw_flights",
        "name": "raw_flights",
        "evaluated": 12,
        "failed": [
            {
                "expectation": "expect_column_values_to_be_between",
                "column": "dep_delay",
                "observed": {"unexpected_count": 7, "unexpected_sample": [9999, "<script>x</script>"]},
                "expected": {"min_value": -120, "max_value": 1500},
            },
            {
                "expectation": "expect_table_row_count_to_be_between",
                "column": None,
                "observed": 3,
                "expected": {"min_value": 100},
            },
        ],
        "docs": f"{docs}/index.html",
        "docs_page": f"{docs}/validations/raw_flights/run_1/raw_flights.html",
        "rows": 1010,
        "validated": 1000,
        "quarantined": 10,
        "reconciled": True,
        "quarantine": f"{data_root}/quarantine/flights/ds={DS}",
        "quarantine_rules": {"expect_column_values_to_not_be_null(carrier)": 3, "between(dep_delay)": 7},
        "source": f"{data_root}/landing/flights/ds={DS}/flights.csv",
        "message": "Gate 'raw_flights' rejected raw_flights ds=2013-01-02 & more",
    }


def render(verdict, data_root="/d"):
    return render_verdict(
        verdict.get("gate", "g") if verdict else "raw_flights",
        DS,
        verdict,
        docs_root=f"{data_root}/data_docs",
        docs_base="/mlcycle/data-docs",
        data_root=data_root,
    )


def test_passed_verdict_shows_counts_and_data_docs():
    html = render(passed("/d"))
    assert "PASSED" in html and "BLOCKED" not in html
    assert "24 rows read = 24 validated + 0 quarantined" in html
    assert "(reconciled)" in html
    assert "0 failed of 9 evaluated" in html
    assert 'href="/mlcycle/data-docs/validations/raw_weather/run%201/raw_weather.html"' in html
    assert 'href="/mlcycle/data-docs/index.html"' in html
    assert "/d/landing/weather/ds=2013-01-02/weather.csv" in html
    assert "Failing rules" not in html and "Quarantine" not in html


def test_blocked_verdict_shows_rules_observed_quarantine_and_message_escaped():
    html = render(blocked("/d"))
    assert "BLOCKED" in html
    assert "1010 rows read = 1000 validated + 10 quarantined" in html
    assert "2 failed of 12 evaluated" in html
    assert "Failing rules (2)" in html
    assert "expect_column_values_to_be_between" in html and "dep_delay" in html
    assert "expect_table_row_count_to_be_between" in html
    assert "9999" in html and "&quot;min_value&quot;: -120" in html  # observed and expected
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    # quarantine: per rule, most rows first, and where the rows are
    assert html.index("between(dep_delay)") < html.index("expect_column_values_to_not_be_null(carrier)")
    assert "<td>7</td>" in html and "<td>3</td>" in html
    assert "/d/quarantine/flights/ds=2013-01-02" in html
    assert "rejected raw_flights ds=2013-01-02 &amp; more" in html
    assert 'href="/mlcycle/data-docs/validations/raw_flights/run_1/raw_flights.html"' in html


def test_old_or_odd_verdicts_do_not_break_the_page():
    assert "No verdict for this day yet" in render(None)
    minimal = render({"success": False, "failed": [{"expectation": "x"}], "docs": None})
    assert "BLOCKED" in minimal and "not built for this run" in minimal and "rows read" not in minimal
    odd = render({"success": True, "rows": 10, "validated": 8, "quarantined": 1, "failed": None})
    assert "NOT reconciled" in odd  # computed when the verdict does not say
    outside = render({"success": True, "docs": "/elsewhere/index.html"})
    assert "/elsewhere" not in outside and "not built for this run" in outside
    assert "cannot be read" in render({"unreadable": "JSONDecodeError: <bad>"})


def test_load_verdicts_tolerates_missing_and_broken_files(tmp_path):
    root = str(tmp_path)
    good = Path(result_path(root, "features", DS))
    good.parent.mkdir(parents=True)
    good.write_text(json.dumps({"success": True}))
    broken = Path(result_path(root, "features", "2013-01-03"))
    broken.write_text("{half")
    verdicts = load_verdicts(root, ["features", "predictions"], [DS, "2013-01-03"])
    assert verdicts[("features", DS)] == {"success": True}
    assert "unreadable" in verdicts[("features", "2013-01-03")]
    assert ("predictions", DS) not in verdicts


def test_page_summary_and_gates_of_the_task():
    page = render_page(
        dag_id="flights_data",
        run_id=RUN_ID,
        task_id="validate_raw",
        days=[DS],
        days_from="the ds query parameter",
        verdicts={("raw_flights", DS): blocked("/d"), ("raw_weather", DS): passed("/d")},
        data_root="/d",
        docs_base="/mlcycle/data-docs",
        task_url="/dags/flights_data/runs/x/tasks/validate_raw",
    )
    assert "1 of 2 gate verdicts BLOCKED the data." in page
    assert "raw_flights" in page and "raw_weather" in page
    assert "scheduled__2013-01-02T00:00:00+00:00" in page
    empty = render_page(
        dag_id="flights_data",
        run_id=RUN_ID,
        task_id="build_features",
        days=[DS],
        days_from="x",
        verdicts={},
        data_root="/d",
        docs_base="/b",
    )
    assert "No verdict yet" in empty and "gate <code>features</code>" in empty


def test_days_of_a_task_instance():
    assert resolve_days(override="2013-01-05", data_interval_start=datetime(2013, 1, 2, tzinfo=UTC)) == (
        ["2013-01-05"],
        "the ds query parameter",
    )
    with pytest.raises(ValueError):
        resolve_days(override="../../etc")
    args = [["--ds", "2013-01-03", "--data-root", "/d"], '["--ds", "2013-01-04"]']
    assert days_from_rendered_args(args) == ["2013-01-03", "2013-01-04"]
    # a run of a month of days, and a score task of several days
    ranged = [["--start", "2013-01-30", "--end", "2013-02-02", "--data-root", "/d"]]
    assert days_from_rendered_args(ranged) == ["2013-01-30", "2013-01-31", "2013-02-01", "2013-02-02"]
    assert days_from_rendered_args([["--ds", "2013-01-03", "--ds", "2013-01-05"]]) == [
        "2013-01-03",
        "2013-01-05",
    ]
    assert resolve_days(rendered_args=args[:1], data_interval_start=datetime(2013, 1, 2))[0] == ["2013-01-03"]
    assert resolve_days(data_interval_start=datetime(2013, 1, 2, tzinfo=UTC))[0] == [DS]
    # a run triggered by hand for 2013-01-02: its tasks' {{ ds }} is the logical date
    manual = resolve_days(
        logical_date=datetime(2013, 1, 2, tzinfo=UTC), data_interval_start=datetime(2013, 1, 1, tzinfo=UTC)
    )
    assert manual == ([DS], "the run's logical date")
    events = [{"ds": "2013-01-04"}, {"ds": ["2013-01-03", "junk"]}, None]
    assert resolve_days(event_extras=events)[0] == ["2013-01-03", "2013-01-04"]
    assert resolve_days() == (
        [],
        "nothing (no rendered --ds, no logical date, no data interval, no ds in asset events)",
    )


def test_url_scheme_encodes_the_run_id():
    url = quality_url("http://127.0.0.1:8080/", "flights_data", RUN_ID, "validate_raw")
    assert url == (
        "http://127.0.0.1:8080/mlcycle/quality/flights_data/"
        "scheduled__2013-01-02T00%3A00%3A00%2B00%3A00/validate_raw"
    )
    assert quality_url("", "flights_scoring", "r", "score", 2).endswith("/score?map_index=2")
    assert docs_href("/d/data_docs/a b/c.html", "/d/data_docs", "/m/data-docs") == "/m/data-docs/a%20b/c.html"
    assert docs_href("/d/data_docs/../secret", "/d/data_docs", "/m") is None


def test_data_quality_link_only_on_gated_tasks(monkeypatch):
    monkeypatch.setenv("MLCYCLE_AIRFLOW_URL", "http://airflow.example:8080")
    links = load_plugin("mlcycle_links")
    names = [link.name for link in links.MLflowPlugin.global_operator_extra_links]
    assert names == ["MLflow model", "Data quality", "Monitoring chart"]
    link = links.DataQualityLink()

    def key(task_id, map_index=-1, dag_id="flights_data"):
        return SimpleNamespace(dag_id=dag_id, run_id=RUN_ID, task_id=task_id, map_index=map_index)

    assert link.get_link(None, ti_key=key("validate_raw")) == quality_url(
        "http://airflow.example:8080", "flights_data", RUN_ID, "validate_raw"
    )
    assert link.get_link(None, ti_key=key("score", 1, "air_time_scoring")).endswith("/score?map_index=1")
    assert link.get_link(None, ti_key=key("land")) == ""  # an empty link is not shown by the UI
    chart = links.MonitoringChartLink()
    assert chart.get_link(None, ti_key=key("chart", dag_id="late_arrival_monitoring")) == (
        "http://airflow.example:8080/mlcycle/monitoring/late_arrival"
    )
    assert chart.get_link(None, ti_key=key("validate_raw")) == ""
    assert chart.get_link(None, ti_key=key("train", dag_id="air_time_training")) == ""
    model = links.MLflowModelLink()
    assert model.get_link(None, ti_key=key("train", dag_id="late_arrival_training")).endswith(
        "/#/models/flights_late_arrival"
    )
    assert model.get_link(None, ti_key=key("land")) == ""  # the data DAG is no model's


def test_plugins_import_cheaply():
    code = (
        "import importlib.util, sys\n"
        f"for name in ('mlcycle_links', 'mlcycle_quality'):\n"
        f"    spec = importlib.util.spec_from_file_location(name, {str(PLUGINS)!r} + '/' + name + '.py')\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "heavy = ('fastapi', 'great_expectations', 'pyspark', 'pandas', 'airflow.api_fastapi.core_api')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# The FastAPI app, mounted under /mlcycle of a parent app as the api-server mounts plugin apps.


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("MLCYCLE_DATA_ROOT", str(root))
    for verdict in (blocked(str(root)), passed(str(root))):
        path = Path(result_path(str(root), verdict["gate"], DS))
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(verdict))
    docs = root / "data_docs"
    page = docs / "validations" / "raw_flights" / "run_1"
    page.mkdir(parents=True)
    (docs / "index.html").write_text("<html>index</html>")
    (page / "raw_flights.html").write_text("<html>raw flights page</html>")
    (root / "secret.txt").write_text("not for the web")
    return root


@pytest.fixture
def auth(monkeypatch):
    """Airflow's auth manager and JWT signer, as the api-server sets them up. The two database
    reads on the way (revoked tokens, the team of the DAG) answer 'none' without a database."""
    from airflow.api_fastapi import app as api_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models.dag import DagModel
    from airflow.models.revoked_token import RevokedToken

    monkeypatch.setenv(
        "AIRFLOW__CORE__AUTH_MANAGER",
        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    )
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "quality-view-test-" + "0123456789abcdef" * 4)
    monkeypatch.setattr(api_app._AuthManagerState, "instance", None)
    monkeypatch.setattr(RevokedToken, "is_revoked", classmethod(lambda cls, jti, session=None: False))
    monkeypatch.setattr(DagModel, "get_team_name", staticmethod(lambda dag_id, session=None: None))
    manager = api_app.create_auth_manager()

    def token(username="admin", role="admin"):
        return manager.generate_jwt(SimpleAuthManagerUser(username=username, role=role))

    return token


@pytest.fixture
def client(data_root, auth):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    quality = load_plugin("mlcycle_quality")
    (entry,) = quality.QualityPlugin.fastapi_apps
    assert entry["url_prefix"] == "/mlcycle"
    parent = FastAPI()
    parent.mount(entry["url_prefix"], quality.QualityApp())
    test_client = TestClient(parent, follow_redirects=False)
    test_client.headers["Authorization"] = f"Bearer {auth()}"
    return test_client


def quality_path(task_id="validate_raw", ds=DS):
    url = quality_url("", "flights_data", RUN_ID, task_id)
    return f"{url}?ds={ds}" if ds else url


def test_app_quality_page_for_a_day(client):
    response = client.get(quality_path())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "BLOCKED" in page and "PASSED" in page
    assert "1010 rows read = 1000 validated + 10 quarantined" in page
    assert 'href="/mlcycle/data-docs/validations/raw_flights/run_1/raw_flights.html"' in page
    assert f'href="/dags/flights_data/runs/{RUN_ID}/tasks/validate_raw"' in page
    docs = client.get("/mlcycle/data-docs/validations/raw_flights/run_1/raw_flights.html")
    assert docs.status_code == 200 and "raw flights page" in docs.text


def test_app_day_without_verdict_and_bad_requests(client):
    response = client.get(quality_path(ds="2013-02-01"))
    assert response.status_code == 200
    assert "No verdict yet" in response.text and "2013-02-01" in response.text
    assert client.get(quality_path(ds="2013-13-45")).status_code == 400
    assert client.get(quality_path(ds="../../x")).status_code == 400
    assert client.get(quality_path(task_id="land")).status_code == 404


def test_app_data_docs_refuses_paths_outside_the_site(client, data_root):
    assert client.get("/mlcycle/data-docs/").text == "<html>index</html>"
    assert client.get("/mlcycle/data-docs/index.html").status_code == 200
    for path in ("%2e%2e/secret.txt", "validations/%2e%2e/%2e%2e/%2e%2e/secret.txt", "%2Fetc%2Fpasswd"):
        response = client.get(f"/mlcycle/data-docs/{path}")
        assert response.status_code == 403, path
        assert "not for the web" not in response.text
    assert client.get("/mlcycle/data-docs/nothing.html").status_code == 404
    redirect = client.get("/mlcycle/data-docs/validations")
    assert redirect.status_code == 307 and redirect.headers["location"].endswith("/data-docs/validations/")


def test_app_requires_a_valid_airflow_token(client, auth):
    path = quality_path()
    del client.headers["Authorization"]
    assert client.get(path).status_code == 401
    assert client.get("/mlcycle/data-docs/index.html").status_code == 401
    browser = client.get(path, headers={"Accept": "text/html,application/xhtml+xml"})
    assert browser.status_code == 303
    assert browser.headers["location"].startswith("/auth/login?next=")
    back = unquote(browser.headers["location"].split("next=", 1)[1])
    assert back == f"http://testserver/mlcycle/quality/flights_data/{RUN_ID}/validate_raw?ds={DS}"
    assert client.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403
    client.cookies.set("_token", auth())  # how the Airflow UI holds its login
    assert client.get(path).status_code == 200
    client.cookies.clear()
    assert client.get(path, headers={"Authorization": f"Bearer {auth('nobody', None)}"}).status_code == 403


def test_app_monitoring_lists_every_model_and_shows_each_chart(client, data_root):
    index = client.get("/mlcycle/monitoring")
    assert index.status_code == 200
    assert 'href="/mlcycle/monitoring/air_time"' in index.text
    assert 'href="/mlcycle/monitoring/late_arrival"' in index.text and "monitored by auc" in index.text
    page = client.get("/mlcycle/monitoring/air_time")
    assert page.status_code == 200 and "No chart yet" in page.text
    assert client.get("/mlcycle/monitoring/air_time/chart.png").status_code == 404
    assert client.get("/mlcycle/monitoring/no_such_model").status_code == 404
    chart = data_root / "models" / "air_time" / "reports" / "monitoring.png"
    chart.parent.mkdir(parents=True)
    chart.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    page = client.get("/mlcycle/monitoring/air_time")
    assert 'src="/mlcycle/monitoring/air_time/chart.png?v=' in page.text
    assert "flights_air_time-monitoring" in page.text and "rolling MAE" in page.text
    image = client.get("/mlcycle/monitoring/air_time/chart.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == chart.read_bytes()
    # the other model's chart is its own: not drawn yet
    assert client.get("/mlcycle/monitoring/late_arrival/chart.png").status_code == 404
    del client.headers["Authorization"]
    assert client.get("/mlcycle/monitoring/air_time/chart.png").status_code == 401
    assert client.get("/mlcycle/monitoring").status_code == 401


def test_the_pages_sit_in_airflows_own_navigation():
    """Browse -> Model monitoring in the menu, and a Data quality tab on a task instance, both
    framed inside the Airflow UI (``url_route``) behind its login."""
    plugin = load_plugin("mlcycle_quality").QualityPlugin
    views = {v["name"]: v for v in plugin.external_views}
    assert views["Model monitoring"]["destination"] == "nav"
    assert (
        views["Model monitoring"]["href"] == "/mlcycle/monitoring" and views["Model monitoring"]["url_route"]
    )
    assert views["Data quality"]["destination"] == "task_instance"
    assert (
        views["Data quality"]["href"] == "/mlcycle/quality/{DAG_ID}/{RUN_ID}/{TASK_ID}?map_index={MAP_INDEX}"
    )
