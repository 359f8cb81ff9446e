#!/bin/bash
# Runs once, when the Postgres volume is first initialised: a database and a user for the MLflow
# server beside Airflow's own. (Changing the names or password later needs a fresh volume or a
# manual ALTER.)
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v mlflow_db="$MLFLOW_DB_NAME" -v mlflow_user="$MLFLOW_DB_USER" -v mlflow_password="$MLFLOW_DB_PASSWORD" <<'EOSQL'
CREATE USER :"mlflow_user" WITH PASSWORD :'mlflow_password';
CREATE DATABASE :"mlflow_db" OWNER :"mlflow_user";
EOSQL
