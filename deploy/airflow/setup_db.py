"""Run by the one-shot service `airflow-init` of docker-compose.yaml after `airflow db migrate`,
the same set-up the embedded stack does at each start (mlcycle/devstack/stack.py):

- the pool `model_promotion` with one slot, which serialises every move of `champion`;
- the connection `spark_default`, kept in Airflow's database so that the Airflow UI (Admin ->
  Connections) or the REST API (PATCH /api/v2/connections/spark_default) can point it at another
  cluster and the change survives restarts. It is created with the compose Spark master; when
  MLCYCLE_SPARK_MASTER is set (in .env), its host is set to that master at every start;
- the connection `spark_connect` to the compose Spark Connect server (service `spark-connect`), on
  which the data, training, scoring and monitoring jobs run from the task's process. Its extra
  `{"submit": ["train"]}` (task ids) would submit those through `spark_default` instead, with a
  driver of their own. Removing the connection (or MLCYCLE_SPARK_CONNECT=0 before the first start)
  submits every job through `spark_default`.
"""

from __future__ import annotations

import json
import os

COMPOSE_MASTER = "spark://spark-master:7077"
EXTRA = {"deploy-mode": "client", "spark-binary": "spark-submit"}
COMPOSE_CONNECT = {"host": "spark-connect", "port": 15002}


def main() -> None:
    from airflow.models import Pool
    from airflow.models.connection import Connection  # the ORM model, not the task SDK one
    from airflow.utils.session import create_session

    from mlcycle.config import switched_on  # the project's code is on the image's PYTHONPATH

    wanted = os.environ.get("MLCYCLE_SPARK_MASTER", "").strip()
    with create_session() as session:
        Pool.create_or_update_pool("model_promotion", 1, "Serializes champion moves", False, session=session)
        conn = session.query(Connection).filter(Connection.conn_id == "spark_default").one_or_none()
        if conn is None:
            session.add(
                Connection(
                    conn_id="spark_default",
                    conn_type="spark",
                    host=wanted or COMPOSE_MASTER,
                    extra=json.dumps(EXTRA),
                )
            )
            print("spark_default created:", wanted or COMPOSE_MASTER)
        elif wanted and conn.host != wanted:
            conn.host = wanted
            print("spark_default now points at", wanted)
        else:
            print("spark_default kept:", conn.host)
        exists = session.query(Connection).filter(Connection.conn_id == "spark_connect").one_or_none()
        if exists is None and switched_on("MLCYCLE_SPARK_CONNECT"):
            session.add(Connection(conn_id="spark_connect", conn_type="spark_connect", **COMPOSE_CONNECT))
            print("spark_connect created:", COMPOSE_CONNECT)


if __name__ == "__main__":
    main()
