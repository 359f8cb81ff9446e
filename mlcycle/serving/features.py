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
    """The views of one day, each as ``{key: (value of each feature of the view, in its order)}``."""

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
                table[tuple(_key(row[k]) for k in keys)] = tuple(
                    float(row[c]) if c in numeric and row[c] is not None else row[c] for c in columns
                )
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
    try:
        columns = feature_columns([fields], views, spec)
    except BatchRefused as exc:
        raise exc.error from None
    return {name: values[0] for name, values in columns.items()}


def feature_columns(fields: list[dict], views: DayViews, spec) -> dict[str, list]:
    """The feature columns of requests of one day, column by column (what the engine reads), as
    ``features/ds=D`` holds them for the same flights. The first request (in order) whose key a
    required view does not hold refuses them all: ``BatchRefused`` names it, with the first of
    its views' field and rule."""
    plan = _plan(spec)
    tables = views.tables
    first_bad = None
    for view, key, _, _ in plan.required:
        contains = tables[view].__contains__
        keys = list(map(key, fields))
        if not all(map(contains, keys)):
            bad = next(i for i, k in enumerate(keys) if not contains(k))
            first_bad = bad if first_bad is None else min(first_bad, bad)
    if first_bad is not None:
        asked = fields[first_bad]
        for view, key, field, rule in plan.required:
            if key(asked) not in tables[view]:
                raise BatchRefused(first_bad, RequestError(field, rule.format(**asked)))
    columns: dict[str, list] = {}
    for field, number in plan.kept:
        values = list(map(operator.itemgetter(field), fields))
        columns[field] = [None if v is None else float(v) for v in values] if number else values
    for name, field, divisor in plan.derived:
        columns[name] = [float(math.floor(v / divisor)) for v in map(operator.itemgetter(field), fields)]
    for view, key, names in plan.lookups:
        get, missing = tables[view].get, (None,) * len(names)
        found = [get(k, missing) for k in map(key, fields)]  # numbers already floats (DayViews)
        for name, values in zip(names, zip(*found, strict=True) if found else [()] * len(names), strict=True):
            columns[name] = list(values)
    for name, value in plan.defaults:
        default = float(value) if name in plan.numeric else value
        columns[name] = [default if v is None else v for v in columns[name]]
    return columns


class BatchRefused(ValueError):
    """Request ``index`` of a batch refused: ``error`` says why (the batch is answered by nothing)."""

    def __init__(self, index: int, error: RequestError):
        super().__init__(f"request {index}: {error}")
        self.index, self.error = index, error


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

    def fields(self, request) -> dict:
        """The request's fields (the use case's ``request_fields``); a ``RequestError`` names what
        is wrong."""
        try:
            return self.module.request_fields(request)
        except ValueError as exc:
            field = getattr(exc, "field", "request")
            raise RequestError(field, getattr(exc, "rule", str(exc))) from None

    def features(self, request) -> tuple[dict, dict]:
        """(the request's fields, its feature row); a ``RequestError`` names what is wrong."""
        fields = self.fields(request)
        return fields, feature_row(fields, self.views(fields["ds"]), self.spec)

    def batch(self, requests: list) -> tuple[list[dict], dict[str, list]]:
        """(each request's fields, the feature columns of them all, in the requests' order). The
        first request that is wrong refuses the batch: ``BatchRefused`` gives its index and why."""
        fields: list[dict] = []
        refused: BatchRefused | None = None
        for i, request in enumerate(requests):
            try:
                fields.append(self.fields(request))
            except RequestError as exc:
                refused = BatchRefused(i, exc)
                break
        by_day: dict[str, list[int]] = {}
        for i, f in enumerate(fields):
            by_day.setdefault(f["ds"], []).append(i)
        parts = []
        for ds, positions in by_day.items():  # each day's views read once
            if refused is not None and positions[0] > refused.index:
                continue  # an earlier request is already refused
            try:
                views = self.views(ds)
                chosen = fields if len(by_day) == 1 else [fields[i] for i in positions]
                parts.append((positions, feature_columns(chosen, views, self.spec)))
            except RequestError as exc:
                refused = _earlier(refused, BatchRefused(positions[0], exc))
            except BatchRefused as exc:
                refused = _earlier(refused, BatchRefused(positions[exc.index], exc.error))
        if refused is not None:
            raise refused
        if not parts:
            return fields, {}
        if len(parts) == 1:
            return fields, parts[0][1]
        columns = {name: [None] * len(fields) for name in parts[0][1]}
        for positions, part in parts:
            for name, values in part.items():
                column = columns[name]
                for i, value in zip(positions, values, strict=True):
                    column[i] = value
        return fields, columns


def _earlier(a: BatchRefused | None, b: BatchRefused) -> BatchRefused:
    return b if a is None or b.index < a.index else a
