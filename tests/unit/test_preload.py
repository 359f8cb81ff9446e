"""The scheduler, and only the scheduler, imports the tasks' heavy libraries before it forks the
task processes; the dag-processor, and only it, imports the DAG factory before it forks a parse; a
user can turn both off, and a user's own local settings file is kept."""

from __future__ import annotations

import subprocess
import sys

from mlcycle.config import REPO_ROOT
from mlcycle.devstack import stack
from mlcycle.orchestration import preload

LOCAL_SETTINGS = REPO_ROOT / "deploy" / "airflow" / "config"


def test_only_the_scheduler_preloads_and_it_can_be_turned_off():
    assert preload.wanted(["/venv/bin/airflow", "scheduler"], {})
    assert not preload.wanted(["/venv/bin/airflow", "api-server"], {})
    assert not preload.wanted(["/venv/bin/airflow", "dag-processor"], {})
    assert not preload.wanted(["/venv/bin/airflow", "scheduler"], {"MLCYCLE_PRELOAD": "0"})
    assert preload.wanted(["/venv/bin/airflow", "scheduler"], {"MLCYCLE_PRELOAD": "1"})


def test_the_dag_processor_preloads_the_dag_factory_and_nothing_of_the_tasks():
    assert preload.modules_for(["/venv/bin/airflow", "dag-processor"], {}) == preload.PARSING_MODULES
    assert preload.modules_for(["/venv/bin/airflow", "dag-processor"], {"MLCYCLE_PRELOAD": "0"}) == ()
    assert preload.modules_for(["/venv/bin/airflow", "triggerer"], {}) == ()


def test_a_library_that_cannot_be_imported_is_skipped_not_fatal():
    assert preload.preload(("json", "no_such_library_here")) == ["json"]


WATCHED = ("mlflow", "pandas", "mlcycle.orchestration.dag_factory")


def _loaded_after_local_settings(argv1: str) -> set[str]:
    code = (
        f"import sys; sys.argv = ['airflow', {argv1!r}]; sys.path.insert(0, {str(LOCAL_SETTINGS)!r}); "
        f"import airflow_local_settings; print(' '.join(m for m in {WATCHED!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    return set(out.stdout.split())


def test_the_local_settings_airflow_imports_preload_in_the_scheduler_and_the_dag_processor_only():
    assert _loaded_after_local_settings("scheduler") == {"mlflow", "pandas"}
    assert _loaded_after_local_settings("dag-processor") == {"mlcycle.orchestration.dag_factory"}
    assert _loaded_after_local_settings("api-server") == set()


def test_the_stack_links_the_local_settings_and_keeps_a_users_own(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCYCLE_HOME", str(tmp_path))
    link = tmp_path / "airflow" / "config" / "airflow_local_settings.py"
    stack._link_airflow_config()
    assert link.is_symlink() and link.resolve() == (LOCAL_SETTINGS / "airflow_local_settings.py").resolve()
    link.unlink()
    link.write_text("# the user's own\n")
    stack._link_airflow_config()
    assert not link.is_symlink() and link.read_text() == "# the user's own\n"


def test_the_stack_compiles_the_dag_files_once_where_no_process_writes_bytecode(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "a_dag.py").write_text("x = 1\n")
    done = stack.compile_bytecode({"AIRFLOW__CORE__DAGS_FOLDER": str(dags)})
    assert dags in done
    assert [p.name for p in (dags / "__pycache__").iterdir()] == [f"a_dag.{sys.implementation.cache_tag}.pyc"]
