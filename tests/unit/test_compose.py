"""Static checks of the cluster stack (docker-compose.yaml, its Dockerfile and deploy/).

No Docker engine is needed: the files are parsed, and the checks are the ones that break a
cluster run silently or late (a version drifting from the lock, the driver and the executors
seeing different data paths, a component starting before the database migration), or that would
open the model registry (MLflow without authentication, an account other than the pipeline's
allowed to move `champion`, a password committed to the repository).

MLflow itself is not imported (it takes seconds): what the deploy scripts rely on in it is read
from the installed distribution's metadata and source.
"""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import importlib.util
import inspect
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
LOCK_FILE = ROOT / "requirements.lock"
DEPLOY = ROOT / "deploy"
AUTH_INI = DEPLOY / "mlflow" / "basic_auth.ini"
GRANT_SCRIPT = DEPLOY / "mlflow" / "grant_pipeline.py"
AIRFLOW_SETUP = DEPLOY / "airflow" / "setup_db.py"
ENV_EXAMPLE = ROOT / ".env.example"
GITIGNORE = ROOT / ".gitignore"

AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
AIRFLOW_COMPONENTS = tuple(s for s in AIRFLOW_SERVICES if s != "airflow-init")
MLFLOW_SERVICES = ("mlflow", "mlflow-auth-db", "mlflow-auth-init")
EXPECTED_SERVICES = {
    "postgres",
    *AIRFLOW_SERVICES,
    "spark-master",
    "spark-worker",
    "spark-connect",
    "scoring",
    *MLFLOW_SERVICES,
}
PROJECT_FOLDERS = ("dags", "plugins", "spark_jobs", "expectations", "mlcycle")
SPARK_MASTER_URL = "spark://spark-master:7077"

# Every secret of the stack: required from the environment or .env, never defaulted in the repo.
SECRETS = (
    "POSTGRES_PASSWORD",
    "MLFLOW_DB_PASSWORD",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_FERNET_KEY",
    "MLFLOW_FLASK_SERVER_SECRET_KEY",
    "MLFLOW_ADMIN_PASSWORD",
    "MLFLOW_PIPELINE_PASSWORD",
    "MLCYCLE_SERVING_TOKEN",
)
REQUIRED_REF = re.compile(r"\$\{(?P<var>[A-Za-z_][A-Za-z0-9_]*):\?(?P<msg>[^}]+)\}")
ANY_REF = re.compile(r"\$\{(?P<var>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?[^}]*\}")
URL_PASSWORD = re.compile(r"://[^/\s:@]+:(?P<password>[^@\s]+)@")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _load_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"deploy_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _deploy_files() -> dict[str, Path]:
    """The files of deploy/ as committed (no bytecode caches)."""
    return {
        p.relative_to(DEPLOY).as_posix(): p
        for p in sorted(DEPLOY.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text) -> dict:
    return yaml.safe_load(compose_text)


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


@pytest.fixture(scope="module")
def grant_pipeline():
    return _load_module(GRANT_SCRIPT)


@pytest.fixture(scope="module")
def mlflow_source() -> Path:
    """The installed MLflow package folder (located, not imported)."""
    spec = importlib.util.find_spec("mlflow")
    assert spec and spec.submodule_search_locations, "mlflow is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


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


def _command_args(service: dict) -> dict[str, str]:
    command = service["command"]
    return dict(zip(command, command[1:], strict=False))


def _is_pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest") and "$" not in image


def _joined_lines(text: str) -> str:
    """``text`` with each backslash-continued line joined to the next (a shell command as run)."""
    return re.sub(r"\\\n\s*", " ", text)


def _without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def _required_var(value: str) -> str | None:
    """The variable of a value that is exactly one required reference ``${VAR:?message}``."""
    match = REQUIRED_REF.fullmatch(value.strip())
    return match.group("var") if match else None


def _is_secret_name(name: str) -> bool:
    if name.endswith(("_FILE", "_PATH")):  # where a secret is kept, not the secret
        return False
    return bool(re.search(r"PASSWORD|SECRET|TOKEN|(^|_)KEY$", name))


def _secret_leaks(environment: dict[str, str]) -> list[str]:
    """Secret-looking variables whose value is not a required reference, and URLs whose password
    is not one (the rule the compose file is held to)."""
    leaks = [f"{k}={v}" for k, v in environment.items() if _is_secret_name(k) and not _required_var(v)]
    for key, value in environment.items():
        for match in URL_PASSWORD.finditer(value):
            if not _required_var(match.group("password")):
                leaks.append(f"{key}: password in URL {value}")
    return leaks


# ---------------------------------------------------------------------------------------------
# Services, images and versions


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
    # the one-shot that creates the auth database runs the server's own Postgres image
    assert services["mlflow-auth-db"]["image"] == services["postgres"]["image"]


def test_airflow_version_matches_lock(services, dockerfile, lock_versions):
    locked = lock_versions["apache-airflow"]
    airflow_images = [i for i in _dockerfile_base_images(dockerfile) if i.startswith("apache/airflow:")]
    airflow_images += [s["image"] for s in services.values() if s["image"].startswith("apache/airflow:")]
    assert airflow_images, "no apache/airflow image in the Dockerfile or the compose file"
    for image in airflow_images:
        tag = image.split(":", 1)[1]
        assert tag.split("-")[0] == locked, f"{image} differs from apache-airflow=={locked} in the lock"
        assert tag.endswith("-python3.11"), f"{image} is not the Python 3.11 image the lock was built for"
    # the build's own check of what got installed
    built = re.search(r"airflow\.__version__ == '([^']+)'", dockerfile)
    assert built and built.group(1) == locked


def test_mlflow_and_pyspark_versions_match_lock(services, dockerfile, lock_versions):
    args = _dockerfile_args(dockerfile)
    assert args.get("MLFLOW_VERSION") == lock_versions["mlflow"]
    assert args.get("PYSPARK_VERSION") == lock_versions["pyspark"]
    # The MLflow server, the grant script and Spark run the project image, whose build checks
    # MLFLOW_VERSION and PYSPARK_VERSION against what the lock installed.
    project_image = services["airflow-scheduler"]["image"]
    for name in ("mlflow", "mlflow-auth-init", "spark-master", "spark-worker", "spark-connect"):
        assert services[name]["image"] == project_image, name


def test_every_package_the_stack_installs_comes_from_the_lock(dockerfile, compose_text, lock_versions):
    """The image installs the lock, hash-checked, and nothing else by name: Great Expectations,
    the providers and every other dependency are the lock's; any ``name==version`` written in the
    stack files must be the lock's version."""
    for name in (
        "apache-airflow",
        "apache-airflow-providers-apache-spark",
        "mlflow",
        "pyspark",
        "great-expectations",
    ):
        assert name in lock_versions, f"{name} is not pinned in requirements.lock"
    texts = {"Dockerfile": dockerfile, "docker-compose.yaml": compose_text}
    texts |= {f"deploy/{name}": p.read_text() for name, p in _deploy_files().items()}
    installs = []
    for where, text in texts.items():
        for command in re.findall(r"pip install ([^\n&;]+)", _joined_lines(text)):
            installs.append((where, command))
            words = [w for w in command.split() if not w.startswith("-")]
            assert words, f"{where}: pip install {command} names nothing to install"
            from_lock = "-r" in command.split() and all(w.endswith("requirements.lock") for w in words)
            project = "--no-deps" in command.split() and all(w.startswith("/tmp/mlcycle/src") for w in words)
            assert from_lock or project, f"{where} installs packages outside the lock: pip install {command}"
        for name, version in re.findall(r"\b([A-Za-z][A-Za-z0-9_.-]*)==([0-9][^\s'\"\\;,]*)", text):
            if _normalise(name) in lock_versions:
                assert version == lock_versions[_normalise(name)], f"{where}: {name}=={version}"
    assert any("requirements.lock" in command for _, command in installs), "the lock is never installed"
    # Hash-checked: pip checks every hash of a requirements file as soon as one entry has one,
    # and refuses the whole file if any entry has none.
    entries = [
        line
        for line in _joined_lines(LOCK_FILE.read_text()).splitlines()
        if re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*==", line)
    ]
    assert len(entries) == len(lock_versions) > 0
    unhashed = [line.split()[0] for line in entries if not re.search(r"--hash=sha256:[0-9a-f]{64}", line)]
    assert not unhashed, f"requirements.lock entries without a hash: {unhashed}"


def test_image_installs_java_the_lock_and_the_project(dockerfile):
    joined = _joined_lines(dockerfile)
    install = re.search(r"apt-get install ([^\n&;]+)", joined)
    assert install, "the image installs no Debian package"
    packages = {w.strip("'\"") for w in install.group(1).split() if not w.startswith("-")}
    # Java 17 by name, or through the build argument that names it (directly or via a shell
    # variable set from it)
    java_args = [k for k, v in _dockerfile_args(dockerfile).items() if v == "openjdk-17-jre-headless"]
    refs = {"openjdk-17-jre-headless"}
    for arg in java_args:
        refs |= {f"${{{arg}}}", f"${arg}"}
        for var in re.findall(rf"\b(\w+)=\"?\$\{{?{arg}\}}?\"?", joined):
            refs |= {f"${{{var}}}", f"${var}"}
    assert packages & refs, f"apt-get install {install.group(1)} does not install openjdk-17-jre-headless"
    assert re.search(r"pip install [^\n]*--no-deps -r \S*requirements\.lock", dockerfile)
    assert "COPY --chown=airflow:0 mlcycle " in dockerfile


def test_lock_has_what_mlflow_basic_auth_needs(lock_versions):
    """``--app-name basic-auth`` and the auth client import Flask-WTF (extra ``mlflow[auth]``)."""
    extra = [r for r in importlib.metadata.requires("mlflow") or [] if re.search(r"extra == .auth.", r)]
    assert extra, "mlflow declares no auth extra"
    for requirement in extra:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
        assert _normalise(name) in lock_versions, f"{name} (mlflow[auth]) is not in requirements.lock"


# ---------------------------------------------------------------------------------------------
# Airflow and Spark


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
    for name in (*AIRFLOW_SERVICES, "spark-worker", "spark-connect"):
        assert _env(services[name]).get("MLCYCLE_DATA_ROOT") == data_root, name
        assert _mounts(services[name]).get(data_root) == source, f"{name} lacks {source} at {data_root}"


def test_airflow_components_wait_for_the_migration(services):
    init = services["airflow-init"]
    assert "airflow db migrate" in _command_text(init)
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
        assert env["AIRFLOW__CORE__EXECUTOR"] == "mlcycle.orchestration.executor.LocalExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
        assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
        assert "approver" in env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
        assert _required_var(env["AIRFLOW__API_AUTH__JWT_SECRET"]) == "AIRFLOW_JWT_SECRET", name
        assert _required_var(env["AIRFLOW__CORE__FERNET_KEY"]) == "AIRFLOW_FERNET_KEY", name


def test_airflow_init_creates_the_promotion_pool_and_spark_default(services):
    """spark_default lives in Airflow's database (editable in the UI and the REST API), created by
    airflow-init with the compose master; the promote tasks' one-slot pool is created there too."""
    for name in AIRFLOW_SERVICES:
        assert "AIRFLOW_CONN_SPARK_DEFAULT" not in _env(services[name]), (
            f"{name}: a connection from the environment hides the one in the database"
        )
    init = services["airflow-init"]
    command = _command_text(init)
    script = "/opt/deploy/airflow/setup_db.py"
    assert command.index("airflow db migrate") < command.index(f"python {script}")
    assert _mounts(init)["/opt/deploy/airflow"] == "./deploy/airflow"
    assert "MLCYCLE_SPARK_MASTER" in _env(init)

    setup = _load_module(AIRFLOW_SETUP)
    assert setup.COMPOSE_MASTER == SPARK_MASTER_URL
    assert setup.EXTRA == {"deploy-mode": "client", "spark-binary": "spark-submit"}
    promotion_pools = set()
    promotion_pools |= set(
        re.findall(r'pool="(\w+)"', (ROOT / "mlcycle" / "orchestration" / "dag_factory.py").read_text())
    )
    assert promotion_pools == {"model_promotion"}
    assert re.search(r'create_or_update_pool\("model_promotion", 1,', AIRFLOW_SETUP.read_text())


def test_spark_standalone_master_and_worker(services):
    master = _command_text(services["spark-master"])
    assert "org.apache.spark.deploy.master.Master" in master and "--port 7077" in master
    worker = _command_text(services["spark-worker"])
    assert "org.apache.spark.deploy.worker.Worker" in worker and SPARK_MASTER_URL in worker


def test_spark_connect_server_drives_the_cluster_and_airflow_reaches_it(services):
    """The jobs' long-lived Connect server runs against the compose master and listens where the
    ``spark_connect`` connection made by airflow-init points."""
    connect = _command_text(services["spark-connect"])
    assert "org.apache.spark.sql.connect.service.SparkConnectServer" in connect
    assert f"--master {SPARK_MASTER_URL}" in connect and "--conf spark.driver.host=spark-connect" in connect
    setup = _load_module(AIRFLOW_SETUP)
    assert f"spark.connect.grpc.binding.port={setup.COMPOSE_CONNECT['port']}" in connect
    assert setup.COMPOSE_CONNECT["host"] == "spark-connect"
    assert "15002" in " ".join(services["spark-connect"]["healthcheck"]["test"])


# ---------------------------------------------------------------------------------------------
# MLflow: server, authentication, accounts


def test_the_scoring_service_follows_the_registry_and_reads_the_shared_data(services, compose):
    scoring = services["scoring"]
    command = _command_text(scoring)
    assert "mlcycle.serving.service" in command and "--port 8790" in command
    env = _env(scoring)
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["MLCYCLE_SERVING_TOKEN"].startswith("${MLCYCLE_SERVING_TOKEN:?")  # from .env, required
    airflow_data = _env(services["airflow-scheduler"])["MLCYCLE_DATA_ROOT"]
    assert env["MLCYCLE_DATA_ROOT"] == airflow_data  # the views and request logs at one path
    mounts = {v.split(":")[0]: v.split(":")[1] for v in scoring["volumes"]}
    assert mounts["mlcycle-data"] == airflow_data
    assert {"./mlcycle", "./spark_jobs", "./usecases"} <= set(mounts)
    assert "8790:8790" in scoring["ports"]
    assert scoring["depends_on"]["mlflow"]["condition"] == "service_healthy"


def test_mlflow_server_is_reachable_from_airflow(services):
    for name in AIRFLOW_SERVICES:
        assert _env(services[name])["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    command = services["mlflow"]["command"]
    args = _command_args(services["mlflow"])
    assert command[:2] == ["mlflow", "server"]
    assert args["--backend-store-uri"].startswith("postgresql://")
    assert "--artifacts-destination" in args
    assert _mounts(services["mlflow"])[args["--artifacts-destination"]] == "mlflow-artifacts"
    assert args["--host"] == "0.0.0.0" and args["--port"] == "5000"
    assert "mlflow:*" in args["--allowed-hosts"], "MLflow 3 refuses the Host header mlflow:5000 otherwise"


def test_mlflow_runs_basic_auth_with_read_as_the_default(services):
    mlflow = services["mlflow"]
    args = _command_args(mlflow)
    assert args.get("--app-name") == "basic-auth", "MLflow must run with authentication"
    env = _env(mlflow)
    config_path = env["MLFLOW_AUTH_CONFIG_PATH"]
    assert _mounts(mlflow)[config_path] == "./deploy/mlflow/basic_auth.ini"
    assert any(str(v).endswith(f":{config_path}:ro") for v in mlflow["volumes"]), "mount it read-only"

    config = configparser.ConfigParser()
    config.read(AUTH_INI)
    section = config["mlflow"]
    assert section["default_permission"] == "READ"
    assert "admin_password" not in section, "the admin password comes from the environment"
    auth_db = urlsplit(section["database_uri"])
    tracking_db = urlsplit(args["--backend-store-uri"])
    assert auth_db.scheme == "postgresql" and auth_db.hostname == "postgres"
    assert auth_db.password is None and tracking_db.password is None, "libpq reads PGPASSWORD"
    assert auth_db.path != tracking_db.path, "the user store has its own database"
    assert _required_var(env["PGPASSWORD"]) == "MLFLOW_DB_PASSWORD"
    assert auth_db.username == tracking_db.username == "mlflow"

    # the database the one-shot creates is the one the ini names, before the server starts
    auth_db_init = _env(services["mlflow-auth-db"])
    assert auth_db_init["MLFLOW_AUTH_DB_NAME"] == auth_db.path.lstrip("/")
    assert auth_db_init["MLFLOW_DB_USER"] == auth_db.username
    assert mlflow["depends_on"]["mlflow-auth-db"]["condition"] == "service_completed_successfully"
    assert "CREATE DATABASE" in (DEPLOY / "postgres" / "create-mlflow-auth-db.sh").read_text()

    assert _required_var(env["MLFLOW_AUTH_ADMIN_PASSWORD"]) == "MLFLOW_ADMIN_PASSWORD"
    assert env["MLFLOW_AUTH_ADMIN_USERNAME"].startswith("${MLFLOW_ADMIN_USER")
    assert _required_var(env["MLFLOW_FLASK_SERVER_SECRET_KEY"]) == "MLFLOW_FLASK_SERVER_SECRET_KEY"
    health = " ".join(mlflow["healthcheck"]["test"])
    assert "/health" in health


def test_installed_mlflow_has_what_the_deploy_files_use(mlflow_source, lock_versions):
    """The settings and client names used above exist in the locked MLflow (read, not imported)."""
    assert importlib.metadata.version("mlflow") == lock_versions["mlflow"]
    apps = {e.name: e.value for e in importlib.metadata.entry_points(group="mlflow.app")}
    clients = {e.name: e.value for e in importlib.metadata.entry_points(group="mlflow.app.client")}
    assert apps.get("basic-auth") == "mlflow.server.auth:create_app"
    assert clients.get("basic-auth") == "mlflow.server.auth.client:AuthServiceClient"
    env_vars = (mlflow_source / "environment_variables.py").read_text()
    for name in (
        "MLFLOW_AUTH_CONFIG_PATH",
        "MLFLOW_AUTH_ADMIN_USERNAME",
        "MLFLOW_AUTH_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
    ):
        assert f'{name} = _EnvironmentVariable("{name}"' in env_vars, name
    auth_config = (mlflow_source / "server" / "auth" / "config.py").read_text()
    assert 'config["mlflow"]["default_permission"]' in auth_config
    assert 'config["mlflow"]["database_uri"]' in auth_config
    assert "MLFLOW_AUTH_ADMIN_PASSWORD.get()" in auth_config
    permissions = (mlflow_source / "server" / "auth" / "permissions.py").read_text()
    assert 'RESOURCE_TYPE_EXPERIMENT = "experiment"' in permissions
    assert 'RESOURCE_TYPE_REGISTERED_MODEL = "registered_model"' in permissions
    for resource_type in ("RESOURCE_TYPE_EXPERIMENT", "RESOURCE_TYPE_REGISTERED_MODEL"):
        assert f"{resource_type}: WILDCARD_AND_ID," in permissions, "grants on one named resource"
    grantable = re.search(r"RESOURCE_GRANTABLE_PERMISSIONS = frozenset\(\{(.*?)\}\)", permissions, re.S)
    assert grantable and "MANAGE.name" in grantable.group(1)


def _real_methods(mlflow_source: Path) -> dict[str, list[str]]:
    """``method -> parameter names`` of the installed ``AuthServiceClient``."""
    tree = ast.parse((mlflow_source / "server" / "auth" / "client.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "AuthServiceClient")
    return {f.name: [a.arg for a in f.args.args[1:]] for f in cls.body if isinstance(f, ast.FunctionDef)}


class FakeMlflowError(Exception):
    """What the MLflow clients raise: an exception with the server's ``error_code``."""

    def __init__(self, error_code: str):
        super().__init__(error_code)
        self.error_code = error_code


class FakeMlflow:
    """An MLflow server as far as the grant script sees it: the basic-auth client's methods (same
    names and parameters as the installed AuthServiceClient) and the tracking client's."""

    def __init__(self, admin: str):
        self.users = {admin: {"password": "admin-password-123", "is_admin": True}}
        self.grants: dict[tuple[str, str, str], str] = {}
        self.models: set[str] = set()
        self.experiments: dict[str, SimpleNamespace] = {}

    # AuthServiceClient
    def get_user(self, username):
        if username not in self.users:
            raise FakeMlflowError("RESOURCE_DOES_NOT_EXIST")
        return SimpleNamespace(username=username, is_admin=self.users[username]["is_admin"])

    def create_user(self, username, password):
        if username in self.users:
            raise FakeMlflowError("RESOURCE_ALREADY_EXISTS")
        self.users[username] = {"password": password, "is_admin": False}

    def update_user_password(self, username, password, current_password=None):
        self.users[username]["password"] = password

    def update_user_admin(self, username, is_admin):
        self.users[username]["is_admin"] = is_admin

    def grant_user_permission(self, username, resource_type, resource_id, permission):
        self.get_user(username)
        if (username, resource_type, resource_id) in self.grants:
            raise FakeMlflowError("RESOURCE_ALREADY_EXISTS")
        self.grants[(username, resource_type, resource_id)] = permission

    def revoke_user_permission(self, username, resource_type, resource_id):
        if self.grants.pop((username, resource_type, resource_id), None) is None:
            raise FakeMlflowError("RESOURCE_DOES_NOT_EXIST")

    # MlflowClient
    def get_registered_model(self, name):
        if name not in self.models:
            raise FakeMlflowError("RESOURCE_DOES_NOT_EXIST")
        return SimpleNamespace(name=name)

    def create_registered_model(self, name):
        if name in self.models:
            raise FakeMlflowError("RESOURCE_ALREADY_EXISTS")
        self.models.add(name)

    def get_experiment_by_name(self, name):
        return self.experiments.get(name)

    def create_experiment(self, name):
        experiment_id = str(len(self.experiments) + 1)
        self.experiments[name] = SimpleNamespace(experiment_id=experiment_id, lifecycle_stage="active")
        return experiment_id

    def restore_experiment(self, experiment_id):
        for experiment in self.experiments.values():
            if experiment.experiment_id == experiment_id:
                experiment.lifecycle_stage = "active"


AUTH_METHODS = (
    "get_user",
    "create_user",
    "update_user_password",
    "update_user_admin",
    "grant_user_permission",
    "revoke_user_permission",
)

SCRIPT_ENV = {
    "MLFLOW_TRACKING_URI": "http://mlflow:5000",
    "MLFLOW_TRACKING_USERNAME": "admin",
    "MLFLOW_TRACKING_PASSWORD": "admin-password-123",
    "MLFLOW_PIPELINE_USER": "pipeline",
    "MLFLOW_PIPELINE_PASSWORD": "pipeline-password-1",
    "MLCYCLE_MODEL_NAMES": "flights_air_time",
}


def test_fake_server_has_the_real_auth_client_signatures(mlflow_source):
    real = _real_methods(mlflow_source)
    for method in AUTH_METHODS:
        assert method in real, f"AuthServiceClient has no {method}"
        fake = list(inspect.signature(getattr(FakeMlflow, method)).parameters)[1:]
        assert fake == real[method], f"{method}: the script calls {fake}, MLflow takes {real[method]}"
    script = GRANT_SCRIPT.read_text()
    assert 'get_app_client("basic-auth", tracking_uri=tracking_uri)' in script


def test_only_the_pipeline_account_gets_registry_edit_rights(grant_pipeline):
    server = FakeMlflow(admin="admin")
    grants = grant_pipeline.setup(SCRIPT_ENV, auth=server, tracking=server)

    experiments = {name: e.experiment_id for name, e in server.experiments.items()}
    assert set(experiments) == {"flights_air_time", "flights_air_time-monitoring"}
    assert server.models == {"flights_air_time"}, "the admin creates the model before anyone else can"
    expected = {
        ("pipeline", "registered_model", "flights_air_time"): "MANAGE",
        ("pipeline", "experiment", experiments["flights_air_time"]): "MANAGE",
        ("pipeline", "experiment", experiments["flights_air_time-monitoring"]): "MANAGE",
    }
    assert server.grants == expected
    assert {(u, t, i): p for u, t, i, p in grants} == expected
    assert {user for user, *_ in server.grants} == {"pipeline"}, "no other account is granted anything"
    assert "*" not in {resource_id for _, _, resource_id in server.grants}, "no wildcard grant"
    assert server.users["pipeline"] == {"password": "pipeline-password-1", "is_admin": False}
    assert server.users["admin"]["password"] == "admin-password-123", "the admin is left alone"

    # Run again (every `docker compose up`): a new password is applied, nothing is duplicated, and a
    # pipeline account someone made admin is demoted (its rights are exactly the grants).
    server.users["pipeline"]["is_admin"] = True
    server.experiments["flights_air_time-monitoring"].lifecycle_stage = "deleted"
    grant_pipeline.setup(
        SCRIPT_ENV | {"MLFLOW_PIPELINE_PASSWORD": "rotated-password-2"}, auth=server, tracking=server
    )
    assert server.grants == expected
    assert server.users["pipeline"] == {"password": "rotated-password-2", "is_admin": False}
    assert server.experiments["flights_air_time-monitoring"].lifecycle_stage == "active"
    assert len(server.experiments) == 2 and server.models == {"flights_air_time"}


def test_grant_script_follows_the_model_name_and_replaces_a_weaker_grant(grant_pipeline):
    server = FakeMlflow(admin="admin")
    server.users["pipeline"] = {"password": "old-password-000", "is_admin": False}
    server.models.add("other_model")
    server.grants[("pipeline", "registered_model", "other_model")] = "MANAGE"
    server.create_experiment("taxi_fares")
    server.grants[("pipeline", "experiment", "1")] = "READ"
    grant_pipeline.setup(SCRIPT_ENV | {"MLCYCLE_MODEL_NAMES": "taxi_fares"}, auth=server, tracking=server)
    assert server.grants[("pipeline", "experiment", "1")] == "MANAGE"
    assert server.grants[("pipeline", "registered_model", "taxi_fares")] == "MANAGE"
    assert server.experiments["taxi_fares-monitoring"].experiment_id in {
        i for (_, t, i) in server.grants if t == "experiment"
    }


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"MLFLOW_PIPELINE_USER": "admin"}, "must not be the MLflow admin"),
        ({"MLFLOW_PIPELINE_PASSWORD": "short"}, "at least 12 characters"),
        ({"MLFLOW_PIPELINE_PASSWORD": ""}, "MLFLOW_PIPELINE_PASSWORD is not set"),
    ],
)
def test_grant_script_refuses_a_bad_setting(grant_pipeline, override, message):
    server = FakeMlflow(admin="admin")
    with pytest.raises(SystemExit, match=message):
        grant_pipeline.setup(SCRIPT_ENV | override, auth=server, tracking=server)
    assert server.grants == {} and set(server.users) == {"admin"}


def test_airflow_logs_in_to_mlflow_as_the_pipeline_account_only(services):
    init = services["mlflow-auth-init"]
    init_env = _env(init)
    assert init["command"] == ["python", "/opt/deploy/mlflow/grant_pipeline.py"]
    assert _mounts(init)["/opt/deploy/mlflow/grant_pipeline.py"] == "./deploy/mlflow/grant_pipeline.py"
    assert init["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert init_env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # the script runs as the admin the server created
    assert init_env["MLFLOW_TRACKING_USERNAME"] == _env(services["mlflow"])["MLFLOW_AUTH_ADMIN_USERNAME"]
    assert _required_var(init_env["MLFLOW_TRACKING_PASSWORD"]) == "MLFLOW_ADMIN_PASSWORD"
    # the registered names come from the model folders, mounted beside the suites they point at
    assert init_env["MLCYCLE_USECASES"] == "/opt/mlcycle/usecases"
    assert _mounts(init)["/opt/mlcycle/usecases"] == "./usecases"
    assert _mounts(init)["/opt/mlcycle/expectations"] == "./expectations"

    for name in AIRFLOW_SERVICES:
        env = _env(services[name])
        assert env["MLFLOW_TRACKING_USERNAME"] == init_env["MLFLOW_PIPELINE_USER"], name
        assert _required_var(env["MLFLOW_TRACKING_PASSWORD"]) == "MLFLOW_PIPELINE_PASSWORD", name
        assert env["MLFLOW_TRACKING_USERNAME"] != init_env["MLFLOW_TRACKING_USERNAME"], name
    scheduler_deps = services["airflow-scheduler"]["depends_on"]
    assert scheduler_deps["mlflow-auth-init"]["condition"] == "service_completed_successfully"

    # The admin password reaches only the MLflow server and the grant script; Spark none at all.
    with_admin = {n for n, s in services.items() if "MLFLOW_ADMIN_PASSWORD" in yaml.safe_dump(s)}
    assert with_admin == {"mlflow", "mlflow-auth-init"}
    for name in ("spark-master", "spark-worker", "spark-connect"):
        assert not [k for k in _env(services[name]) if k.startswith("MLFLOW_")], name


# ---------------------------------------------------------------------------------------------
# Secrets


def test_the_secret_check_catches_literals():
    """The rule below, on values it must reject and accept."""
    assert _secret_leaks({"POSTGRES_PASSWORD": "airflow"})
    assert _secret_leaks({"X_SECRET": "${X_SECRET:-local-default}"})
    assert _secret_leaks({"AIRFLOW__CORE__FERNET_KEY": ""})
    assert _secret_leaks({"DB": "postgresql://airflow:airflow@postgres/airflow"})
    assert not _secret_leaks({"POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:?set it}"})
    assert not _secret_leaks({"DB": "postgresql://airflow:${POSTGRES_PASSWORD:?set it}@postgres/airflow"})
    assert not _secret_leaks({"SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": "/opt/airflow/auth/passwords.json"})


def test_no_secret_is_written_in_the_compose_file(services, compose_text):
    leaks = {name: _secret_leaks(_env(service)) for name, service in services.items()}
    assert not {k: v for k, v in leaks.items() if v}, f"secrets not taken from the environment: {leaks}"
    for name, service in services.items():
        for match in URL_PASSWORD.finditer(_command_text(service)):
            assert _required_var(match.group("password")), f"{name}: password in its command"
    # every reference to a secret is required, none has a default
    code = _without_comments(compose_text)
    refs = [(m.group("var"), m.group("op") or "") for m in ANY_REF.finditer(code)]
    defaulted = [var for var, op in refs if _is_secret_name(var) and op != ":?"]
    assert not defaulted, f"secrets with a default or no check in docker-compose.yaml: {defaulted}"
    assert {var for var, op in refs if op == ":?"} == set(SECRETS)


def _python_literals(path: Path) -> list[str]:
    """Secret-named names, keywords or dict keys given a literal string in a Python file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        pairs = []
        if isinstance(node, ast.Assign):
            pairs = [(getattr(t, "id", getattr(t, "attr", "")), node.value) for t in node.targets]
        elif isinstance(node, ast.AnnAssign):
            pairs = [(getattr(node.target, "id", ""), node.value)]
        elif isinstance(node, ast.keyword):
            pairs = [(node.arg or "", node.value)]
        elif isinstance(node, ast.Dict):
            pairs = [(getattr(k, "value", ""), v) for k, v in zip(node.keys, node.values, strict=False)]
        for name, value in pairs:
            if (
                isinstance(name, str)
                and _is_secret_name(name.upper())
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
                and value.value
            ):
                found.append(f"{name} = {value.value!r}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and URL_PASSWORD.search(node.value):
            found.append(node.value)
    return found


def test_no_secret_is_written_in_deploy_files():
    files = _deploy_files()
    assert set(files) >= {
        "mlflow/basic_auth.ini",
        "mlflow/grant_pipeline.py",
        "airflow/setup_db.py",
        "postgres/create-mlflow-auth-db.sh",
    }
    for name, path in files.items():
        text = path.read_text()
        if path.suffix == ".py":
            assert not _python_literals(path), f"deploy/{name}: {_python_literals(path)}"
        elif path.suffix == ".ini":
            config = configparser.ConfigParser()
            config.read(path)
            keys = [k for section in config.sections() for k in config[section]]
            assert not [k for k in keys if _is_secret_name(k.upper())], f"deploy/{name}: {keys}"
            values = [v for section in config.sections() for v in config[section].values()]
            assert not [v for v in values if URL_PASSWORD.search(v)], f"deploy/{name}: password in a URL"
        else:
            code = _without_comments(text)
            assigned = re.findall(r"\b(\w*(?:PASSWORD|SECRET|TOKEN)\w*)=(?!\"?\$)\S+", code)
            assert not assigned, f"deploy/{name} assigns {assigned}"
            assert not URL_PASSWORD.search(code), f"deploy/{name}: password in a URL"
    # the check sees a literal where there is one
    probe = DEPLOY.parent / "tests" / "unit" / "test_compose.py"
    assert any("admin-password-123" in f for f in _python_literals(probe))
    grant = GRANT_SCRIPT.read_text()
    assert '_required(environ, "MLFLOW_PIPELINE_PASSWORD")' in grant, (
        "the pipeline password comes from the environment"
    )


def test_env_file_is_git_ignored_and_the_example_holds_no_secret(compose_text):
    assert ".env" in [line.strip() for line in GITIGNORE.read_text().splitlines()]
    if not (shutil.which("git") and (ROOT / ".git").exists()):
        pytest.fail("git and the repository's .git are needed to check that .env is ignored")
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0, ".env is not ignored by git"
    example = subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT)
    assert example.returncode == 1, ".env.example must stay committable"

    text = ENV_EXAMPLE.read_text()
    assert "cp .env.example .env" in text
    values = dict(
        line.split("=", 1) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    )
    required = {m.group("var") for m in REQUIRED_REF.finditer(_without_comments(compose_text))}
    assert set(values) == required, "the example lists exactly the variables compose requires"
    filled = {k: v for k, v in values.items() if v.strip()}
    assert not filled, f".env.example gives secrets a value: {sorted(filled)}"
    commented = re.findall(r"^#\s*([A-Z_]+)=(.*)$", text, flags=re.MULTILINE)
    assert not [k for k, v in commented if _is_secret_name(k) and v.strip()]


# ---------------------------------------------------------------------------------------------
# The compose client itself


def _compose_cli() -> list[str]:
    """Compose v2 (the docker plugin) where it is installed, else the standalone docker-compose
    that .ci/run installs from Debian; both validate the file without an engine."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    assert shutil.which("docker-compose"), "install a compose client: apt-get install docker-compose"
    return ["docker-compose"]


def _compose_config(env_file: Path) -> subprocess.CompletedProcess:
    # Only the given file supplies variables: a developer's own .env or shell is not consulted.
    environ = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("MLFLOW_")}
    return subprocess.run(
        [*_compose_cli(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environ,
    )


def test_docker_compose_accepts_the_file_with_secrets_from_an_env_file(tmp_path):
    dummies = {name: f"dummy-{name.lower()}-0123456789" for name in SECRETS}
    env_file = tmp_path / "stack.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in dummies.items()))
    result = _compose_config(env_file)
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)["services"]
    mlflow_env = rendered["mlflow"]["environment"]
    assert mlflow_env["MLFLOW_AUTH_ADMIN_PASSWORD"] == dummies["MLFLOW_ADMIN_PASSWORD"]
    assert mlflow_env["PGPASSWORD"] == dummies["MLFLOW_DB_PASSWORD"]
    scheduler_env = rendered["airflow-scheduler"]["environment"]
    assert scheduler_env["MLFLOW_TRACKING_USERNAME"] == "pipeline"
    assert scheduler_env["MLFLOW_TRACKING_PASSWORD"] == dummies["MLFLOW_PIPELINE_PASSWORD"]
    assert (
        f":{dummies['POSTGRES_PASSWORD']}@postgres:5432/"
        in scheduler_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    )
    with_admin = {n for n, s in rendered.items() if dummies["MLFLOW_ADMIN_PASSWORD"] in yaml.safe_dump(s)}
    assert with_admin == {"mlflow", "mlflow-auth-init"}
    assert "--app-name" in rendered["mlflow"]["command"]


def test_docker_compose_refuses_to_run_without_the_secrets(tmp_path):
    env_file = tmp_path / "empty.env"
    env_file.write_text("# nothing set\n")
    result = _compose_config(env_file)
    assert result.returncode != 0, "compose accepted the file with no secret set"
    assert "see .env.example" in result.stderr, result.stderr


def test_grant_script_sets_up_every_model_of_the_catalog(grant_pipeline):
    server = FakeMlflow(admin="admin")
    env = {k: v for k, v in SCRIPT_ENV.items() if k != "MLCYCLE_MODEL_NAMES"}
    grant_pipeline.setup(env, auth=server, tracking=server)
    assert server.models == {"flights_air_time", "flights_late_arrival"}
    assert {i for (_, t, i) in server.grants if t == "registered_model"} == server.models
    assert set(server.experiments) == {
        "flights_air_time",
        "flights_air_time-monitoring",
        "flights_late_arrival",
        "flights_late_arrival-monitoring",
    }
