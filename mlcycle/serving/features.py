"""The features of a scoring request: the request's fields (the use case's ``request_fields``) and
the day's feature views as the batch job published them (``feature_views/ds=D/view=<view>``), put
together by the use case's own spec (its ``LOOKUPS``, ``DERIVED``, ``DEFAULTS``): the spec the
batch job assembles the feature table with, read here without Spark.

A day is covered once its feature table is there (the job writes the views first, the table
last). The views of the days asked for are kept in memory, read again when the day is rebuilt.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import operator
import threading
from collections import OrderedDict
from pathlib import Path

VIEWS = "feature_views"  # spark_jobs.features.VIEWS


class RequestError(ValueError):
    """A request the features cannot be found for: ``field`` names the field, ``rule`` the rule."""

    def __init__(self, field: str, rule: str):
        super().__init__(f"{field}: {rule}")
        self.field, self.rule = field, rule


def _key(value):
    """A view's key as the request's fields hold it: an instant as seconds since the epoch, a
    day as ``YYYY-MM-DD``."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # Spark's timestamps are written as UTC
            return calendar.timegm(value.timetuple())
        return int(value.timestamp())
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class DayViews:
    """The views of one day, each as ``{key: {feature: value}}``."""

    def __init__(self, data_root: str | Path, ds: str, spec):
        import pyarrow.parquet as pq

        self.ds = ds
        self.tables: dict[str, dict[tuple, dict]] = {}
        for view, keys, columns in spec.LOOKUPS:
            path = Path(data_root) / VIEWS / f"ds={ds}" / f"view={view}"
            table: dict[tuple, dict] = {}
            # Spark writes no partition for an empty view (no history before the first day): read
            # once the day's table is there, a view without its partition has no rows
            wanted = [c for c in (*keys, *columns) if c != "ds"]  # the day is the partition's
            rows = pq.read_table(str(path), columns=wanted).to_pylist() if path.is_dir() else []
            numeric = set(spec.NUMERIC)
            for row in rows:
                row.setdefault("ds", ds)  # the partition's own column
                table[tuple(_key(row[k]) for k in keys)] = {
                    c: (float(row[c]) if c in numeric and row[c] is not None else row[c]) for c in columns
                }
            self.tables[view] = table


class _Plan:
    """A spec's assembly, worked out once: which key each view is looked up by, which columns are
    numbers."""

    def __init__(self, spec):
        keys = {name: _getter(k) for name, k, _ in spec.LOOKUPS}
        self.required = [(view, keys[view], field, rule) for view, (field, rule) in spec.REQUIRED.items()]
        self.lookups = [(view, keys[view], columns) for view, _, columns in spec.LOOKUPS if columns]
        self.numeric = frozenset(spec.NUMERIC)
        self.kept = [(f, f in self.numeric) for f in spec.KEPT]
        self.derived = list(spec.DERIVED)
        self.defaults = list(spec.DEFAULTS.items())


def _getter(keys):
    """A view's key (a tuple) from a request's fields."""
    if len(keys) == 1:
        (only,) = keys
        return lambda fields: (fields[only],)
    return operator.itemgetter(*keys)


_PLANS: dict[int, _Plan] = {}


def _plan(spec) -> _Plan:
    plan = _PLANS.get(id(spec))
    if plan is None:
        plan = _PLANS[id(spec)] = _Plan(spec)
    return plan


def feature_row(fields: dict, views: DayViews, spec) -> dict:
    """The feature columns of one request, as ``features/ds=D`` holds them for the same flight.
    A key a required view does not hold refuses the request with that view's field and rule."""
    plan = _plan(spec)
    tables = views.tables
    for view, key, field, rule in plan.required:
        if key(fields) not in tables[view]:
            raise RequestError(field, rule.format(**fields))
    row = {}
    for field, number in plan.kept:
        value = fields[field]
        row[field] = float(value) if number and value is not None else value
    for name, field, divisor in plan.derived:
        row[name] = float(math.floor(fields[field] / divisor))
    for view, key, columns in plan.lookups:
        found = tables[view].get(key(fields))
        if found is None:
            for column in columns:
                row[column] = None
        else:
            row.update(found)  # numbers already as floats (DayViews)
    for name, value in plan.defaults:
        if row[name] is None:
            row[name] = float(value) if name in plan.numeric else value
    return row


class FeatureStore:
    """The features of requests for the days the published views cover."""

    def __init__(self, data_root: str | Path, usecase, keep_days: int = 8):
        self.data_root = Path(data_root)
        self.usecase = usecase
        self.module = usecase.code_module()
        self.spec = self.module.feature_spec()
        self.keep_days = keep_days
        self._days: OrderedDict[str, tuple[float, DayViews]] = OrderedDict()
        self._lock = threading.Lock()

    def covered(self) -> list[str]:
        """The days whose feature table (and so their views) is published."""
        root = self.data_root / "features"
        return (
            sorted(p.name.removeprefix("ds=") for p in root.glob("ds=*") if p.is_dir())
            if root.is_dir()
            else []
        )

    def views(self, ds: str) -> DayViews:
        table = self.data_root / "features" / f"ds={ds}"
        try:
            stamp = table.stat().st_mtime
        except FileNotFoundError:
            days = self.covered()
            span = f"{days[0]} to {days[-1]}" if days else "none yet"
            raise RequestError("sched_dep", f"{ds} is outside the days the features cover ({span})") from None
        with self._lock:
            held = self._days.get(ds)
            if held is not None and held[0] == stamp:
                self._days.move_to_end(ds)
                return held[1]
        views = DayViews(self.data_root, ds, self.spec)  # read outside the lock: other days answer
        with self._lock:
            self._days[ds] = (stamp, views)
            self._days.move_to_end(ds)
            while len(self._days) > self.keep_days:
                self._days.popitem(last=False)
        return views

    def features(self, request, days: dict | None = None) -> tuple[dict, dict]:
        """(the request's fields, its feature row); a ``RequestError`` names what is wrong.
        ``days``: the views already found for the other requests of a batch, by day."""
        try:
            fields = self.module.request_fields(request)
        except ValueError as exc:
            field = getattr(exc, "field", "request")
            raise RequestError(field, getattr(exc, "rule", str(exc))) from None
        ds = fields["ds"]
        if days is None:
            views = self.views(ds)
        else:
            views = days.get(ds)
            if views is None:
                views = days[ds] = self.views(ds)
        return fields, feature_row(fields, views, self.spec)
