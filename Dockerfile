# The one image of the cluster stack: the Airflow components, the Spark master and workers, and the
# MLflow server all run it, so the Spark driver (inside Airflow) and the executors share the same
# Python, pyspark and project code, and the MLflow server has the Postgres driver of the base image.
FROM apache/airflow:3.3.2-python3.11

# Versions the build checks against what requirements.lock installed (tests/unit/test_compose.py
# checks them against the lock too).
ARG MLFLOW_VERSION=3.17.2
ARG PYSPARK_VERSION=4.3.0
# Spark 4 runs on Java 17 or 21. If the base distribution no longer ships 17, 21 is used.
ARG JAVA_PACKAGE=openjdk-17-jre-headless

USER root
RUN apt-get update \
    && if apt-cache show "${JAVA_PACKAGE}" >/dev/null 2>&1; then java_pkg="${JAVA_PACKAGE}"; \
       else java_pkg=openjdk-21-jre-headless; fi \
    && apt-get install -y --no-install-recommends "${java_pkg}" procps \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /opt/mlcycle/data /opt/mlflow/artifacts /opt/airflow/auth \
    && chown -R airflow:0 /opt/mlcycle /opt/mlflow /opt/airflow/auth \
    && chmod -R g=u /opt/mlcycle /opt/mlflow /opt/airflow/auth

USER airflow
# The pinned, hash-checked lock; --no-deps because the lock is already the full closure.
COPY --chown=airflow:0 requirements.lock /tmp/mlcycle/requirements.lock
RUN pip install --no-cache-dir --no-deps -r /tmp/mlcycle/requirements.lock

# The project itself (the `mlcycle` command; the compose file mounts the live sources over it on
# PYTHONPATH, so code changes need no rebuild).
COPY --chown=airflow:0 pyproject.toml /tmp/mlcycle/src/pyproject.toml
COPY --chown=airflow:0 mlcycle /tmp/mlcycle/src/mlcycle
COPY --chown=airflow:0 spark_jobs /tmp/mlcycle/src/spark_jobs
RUN pip install --no-cache-dir --no-deps /tmp/mlcycle/src \
    && rm -rf /tmp/mlcycle \
    && python -c "import airflow, mlflow, pyspark, psycopg2; \
assert airflow.__version__ == '3.3.2', airflow.__version__; \
assert mlflow.__version__ == '${MLFLOW_VERSION}', mlflow.__version__; \
assert pyspark.__version__ == '${PYSPARK_VERSION}', pyspark.__version__" \
    && java -version \
    && command -v spark-submit
