"""Static checks of the cluster stack (docker-compose.yaml and its Dockerfile).

No Docker engine is needed: the files are parsed, and the checks are the ones that break a
cluster run silently or late (a version drifting from the lock, the driver and the executors
seeing different data paths, a component starting before the database migration).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
LOCK_FILE = ROOT / "requirements.lock"

AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
AIRFLOW_COMPONENTS = tuple(s for s in AIRFLOW_SERVICES if s != "airflow-init")
EXPECTED_SERVICES = {"postgres", *AIRFLOW_SERVICES, "spark-master", "spark-worker", "mlflow"}
PROJECT_FOLDERS = ("dags", "plugins", "spark_jobs", "expectations", "mlcycle")
SPARK_MASTER_URL = "spark://spark-master:7077"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text()


@pytest.fixture(scope="module")
def lock_versions() -> dict[str, str]:
    """``name -> version`` from lines like ``apache-airflow==3.3.2 \\``."""
    versions = {}
    for line in LOCK_FILE.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)==([^\s\\;]+)", line)
        if match:
            versions[_normalise(match.group(1))] = match.group(2)
    return versions


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _mounts(service: dict) -> dict[str, str]:
    """``target -> source`` of a service's volumes, short or long syntax."""
    mounts = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            mounts[volume["target"]] = volume.get("source", "")
        else:
            source, target = volume.split(":")[:2]
            mounts[target] = source
    return mounts


def _dockerfile_args(dockerfile: str) -> dict[str, str]:
    return dict(re.findall(r"^ARG\s+(\w+)=(\S+)", dockerfile, flags=re.MULTILINE))


def _dockerfile_base_images(dockerfile: str) -> list[str]:
    return re.findall(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)", dockerfile, flags=re.MULTILINE)


def _command_text(service: dict) -> str:
    command = service.get("command") or ""
    return " ".join(command) if isinstance(command, list) else command


def _is_pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest") and "$" not in image


def test_expected_services_exist(services):
    missing = EXPECTED_SERVICES - set(services)
    assert not missing, f"services missing from docker-compose.yaml: {sorted(missing)}"


def test_every_image_is_pinned(services, dockerfile):
    images = {name: svc["image"] for name, svc in services.items() if "image" in svc}
    assert set(images) == set(services), "every service names its image (built ones get a tag)"
    unpinned = {name: image for name, image in images.items() if not _is_pinned(image)}
    assert not unpinned, f"images without an exact tag: {unpinned}"
    bases = _dockerfile_base_images(dockerfile)
    assert bases, "Dockerfile has no FROM line"
    assert all(_is_pinned(base) for base in bases), f"unpinned Dockerfile base image: {bases}"


def test_airflow_version_matches_lock(services, dockerfile, lock_versions):
    locked = lock_versions["apache-airflow"]
    airflow_images = [i for i in _dockerfile_base_images(dockerfile) if i.startswith("apache/airflow:")]
    airflow_images += [s["image"] for s in services.values() if s["image"].startswith("apache/airflow:")]
    assert airflow_images, "no apache/airflow image in the Dockerfile or the compose file"
    for image in airflow_images:
        tag = image.split(":", 1)[1]
        assert tag.split("-")[0] == locked, f"{image} differs from apache-airflow=={locked} in the lock"
        assert tag.endswith("-python3.11"), f"{image} is not the Python 3.11 image the lock was built for"


def test_mlflow_and_pyspark_versions_match_lock(services, dockerfile, lock_versions):
    args = _dockerfile_args(dockerfile)
    assert args.get("MLFLOW_VERSION") == lock_versions["mlflow"]
    assert args.get("PYSPARK_VERSION") == lock_versions["pyspark"]
    mlflow = services["mlflow"]
    if "build" in mlflow:
        # The server runs the project image, which the build checks against MLFLOW_VERSION.
        assert mlflow["image"] == services["airflow-scheduler"]["image"]
    else:
        assert mlflow["image"].rsplit(":", 1)[1].lstrip("v") == lock_versions["mlflow"]


def test_image_installs_java_the_lock_and_the_project(dockerfile):
    assert "openjdk-17-jre-headless" in dockerfile
    assert re.search(r"pip install [^\n]*--no-deps -r \S*requirements\.lock", dockerfile)
    assert "COPY --chown=airflow:0 mlcycle " in dockerfile


def test_project_folders_are_mounted_into_airflow_services(services):
    for name in AIRFLOW_SERVICES:
        mounts = _mounts(services[name])
        for folder in PROJECT_FOLDERS:
            target = f"/opt/airflow/{folder}"
            assert mounts.get(target) == f"./{folder}", f"{name} does not mount ./{folder} at {target}"
        assert "/opt/airflow" in _env(services[name]).get("PYTHONPATH", "").split(":"), name


def test_data_volume_is_shared_at_one_path_by_airflow_and_spark(services, compose):
    data_root = _env(services["airflow-scheduler"])["MLCYCLE_DATA_ROOT"]
    source = _mounts(services["airflow-scheduler"]).get(data_root)
    assert source, f"MLCYCLE_DATA_ROOT={data_root} is not a mounted volume in airflow-scheduler"
    assert source in (compose.get("volumes") or {}), f"{source} is not a named volume"
    for name in (*AIRFLOW_SERVICES, "spark-worker"):
        assert _env(services[name]).get("MLCYCLE_DATA_ROOT") == data_root, name
        assert _mounts(services[name]).get(data_root) == source, f"{name} lacks {source} at {data_root}"


def test_airflow_components_wait_for_the_migration(services):
    init = services["airflow-init"]
    assert "db migrate" in _command_text(init)
    assert init["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in AIRFLOW_COMPONENTS:
        depends_on = services[name].get("depends_on") or {}
        assert depends_on.get("airflow-init", {}).get("condition") == "service_completed_successfully", name


def test_airflow_component_commands(services):
    commands = {name: _command_text(services[name]) for name in AIRFLOW_COMPONENTS}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
    }
    health = " ".join(services["airflow-apiserver"]["healthcheck"]["test"])
    assert "/api/v2/monitor/health" in health


def test_airflow_settings(services):
    for name in AIRFLOW_SERVICES:
        env = _env(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
        assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
        assert "approver" in env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"], "components must share one JWT secret"


def test_spark_default_points_at_the_compose_master(services):
    for name in AIRFLOW_SERVICES:
        conn = json.loads(_env(services[name])["AIRFLOW_CONN_SPARK_DEFAULT"])
        assert conn["conn_type"] == "spark"
        assert conn["host"] == SPARK_MASTER_URL, name
        assert conn["extra"]["deploy-mode"] == "client"
    master = _command_text(services["spark-master"])
    assert "org.apache.spark.deploy.master.Master" in master and "--port 7077" in master
    worker = _command_text(services["spark-worker"])
    assert "org.apache.spark.deploy.worker.Worker" in worker and SPARK_MASTER_URL in worker


def test_mlflow_server_is_reachable_from_airflow(services):
    for name in AIRFLOW_SERVICES:
        assert _env(services[name])["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    command = services["mlflow"]["command"]
    args = dict(zip(command, command[1:], strict=False))
    assert command[:2] == ["mlflow", "server"]
    assert args["--backend-store-uri"].startswith("postgresql://")
    assert "--artifacts-destination" in args
    assert args["--host"] == "0.0.0.0" and args["--port"] == "5000"
    assert "mlflow:*" in args["--allowed-hosts"], "MLflow 3 refuses the Host header mlflow:5000 otherwise"


def _compose_cli() -> list[str]:
    """Compose v2 (the docker plugin) where it is installed, else the standalone docker-compose
    that .ci/run installs from Debian; both validate the file without an engine."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    assert shutil.which("docker-compose"), "install a compose client: apt-get install docker-compose"
    return ["docker-compose"]


def test_docker_compose_accepts_the_file():
    cli = _compose_cli()
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), "config", "-q"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
