#!/bin/bash
# One-shot service `mlflow-auth-db` of docker-compose.yaml: the database of MLflow's user store
# (accounts and permissions), beside the tracking database, owned by the same MLflow user. Safe to
# run again, and it also serves a Postgres volume initialised before the auth database existed
# (docker/postgres-init.sh runs only on a fresh volume). Connection settings come from the PG*
# variables of the service; the password from PGPASSWORD.
set -euo pipefail

for _ in $(seq 60); do
    pg_isready --quiet && break
    sleep 2
done

psql -v ON_ERROR_STOP=1 -v db="$MLFLOW_AUTH_DB_NAME" -v owner="$MLFLOW_DB_USER" <<'EOSQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
EOSQL
echo "database $MLFLOW_AUTH_DB_NAME ready"
