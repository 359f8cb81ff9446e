"""A scoring request of the flights use case, as a scheduler knows a flight, turned into the fields
the feature table's rows are keyed by (``project.REQUEST_FIELDS``). Plain Python: the scoring
service imports it without Spark.

A request: ``carrier`` (e.g. ``"B6"``), ``flight`` (its number), ``tailnum`` (the plane, may be
null: not yet assigned), ``origin`` and ``dest`` (airport codes), ``sched_dep`` (the scheduled
departure, local time at the origin, ``YYYY-MM-DDTHH:MM``). Every New York airport of the data is
on New York time.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from zoneinfo import ZoneInfo

TIMEZONE = ZoneInfo("America/New_York")
FIELDS = ("carrier", "flight", "tailnum", "origin", "dest", "sched_dep")
_CARRIER = re.compile(r"[A-Z0-9]{2}")
_AIRPORT = re.compile(r"[A-Z]{3}")
_TAIL = re.compile(r"[A-Z0-9]{2,6}")
_SCHED = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})")


@functools.lru_cache(maxsize=4096)
def _hour_instant(year: int, month: int, day: int, hour: int) -> int:
    """The local hour at New York as seconds since the epoch (UTC)."""
    return int(dt.datetime(year, month, day, hour, tzinfo=TIMEZONE).timestamp())


class BadRequest(ValueError):
    """A request that breaks a rule: ``field`` names the field, the message the rule."""

    def __init__(self, field: str, rule: str):
        super().__init__(f"{field}: {rule}")
        self.field, self.rule = field, rule


_FIELD_SET = frozenset(FIELDS)
_RULES = {
    "carrier": (_CARRIER, "two capital letters or digits, e.g. B6"),
    "origin": (_AIRPORT, "an airport code of three capital letters, e.g. JFK"),
    "dest": (_AIRPORT, "an airport code of three capital letters, e.g. LAX"),
    "tailnum": (_TAIL, "a tail number of 2 to 6 capital letters or digits, or null"),
}
# Values already found to follow their field's rule (a day asks the same carriers, airports and
# planes again and again): a set lookup instead of a pattern match. Bounded: cleared when full.
_GOOD: dict[str, set] = {field: set() for field in _RULES}
_GOOD_MAX = 100_000


def request_fields(request) -> dict:
    """``{"flight_id", "ds", "carrier", "flight", "tailnum", "origin", "dest", "sched_dep_time",
    "time_hour"}``:
    ``sched_dep_time`` as the upstream writes it (HHMM), ``time_hour`` the scheduled hour as an
    instant (seconds since the epoch, UTC), the key of the weather at the origin."""
    if not isinstance(request, dict):
        raise BadRequest("request", "must be a JSON object of " + ", ".join(FIELDS))
    if not request.keys() <= _FIELD_SET:
        unknown = sorted(set(request) - _FIELD_SET)
        raise BadRequest(unknown[0], "is not a field of a request (" + ", ".join(FIELDS) + ")")
    if len(request) < 5 or (len(request) == 5 and "tailnum" in request):
        for field in FIELDS:
            if field not in request and field != "tailnum":
                raise BadRequest(field, "is missing")
    carrier = _text(request, "carrier")
    origin = _text(request, "origin")
    dest = _text(request, "dest")
    tailnum = request.get("tailnum")
    if tailnum is not None:
        tailnum = _text(request, "tailnum")
    flight = request["flight"]
    if type(flight) is not int or not 1 <= flight <= 9999:  # a bool is not a flight number
        raise BadRequest("flight", "must be a whole number from 1 to 9999")
    raw = request["sched_dep"]
    if not isinstance(raw, str):
        raise BadRequest("sched_dep", "must be the local departure time as YYYY-MM-DDTHH:MM")
    compact, ds, sched_dep_time, time_hour = _departure(raw)
    return {
        # the flight's key as the feature table holds it (features.flight_key): what monitoring
        # joins the logged request with the flight's outcome on
        "flight_id": f"{carrier}{flight}-{origin}-{compact}-{sched_dep_time:04d}",
        "ds": ds,
        "carrier": carrier,
        "flight": flight,
        "tailnum": tailnum,
        "origin": origin,
        "dest": dest,
        "sched_dep_time": sched_dep_time,
        "time_hour": time_hour,
    }


@functools.lru_cache(maxsize=16384)
def _departure(raw: str) -> tuple[str, str, int, int]:
    """``(YYYYMMDD, YYYY-MM-DD, HHMM, the hour as an instant)`` of a scheduled departure."""
    parts = _SCHED.fullmatch(raw)
    try:
        if parts is None:
            raise ValueError
        year, month, day, hh, mm = (int(p) for p in parts.groups())
        dt.datetime(year, month, day, hh, mm)  # a real day and time
    except ValueError:
        raise BadRequest("sched_dep", "must be the local departure time as YYYY-MM-DDTHH:MM") from None
    return (
        f"{year:04d}{month:02d}{day:02d}",
        f"{year:04d}-{month:02d}-{day:02d}",
        hh * 100 + mm,
        _hour_instant(year, month, day, hh),
    )


def _text(request: dict, field: str) -> str:
    value = request.get(field)
    good = _GOOD[field]
    if isinstance(value, str) and value in good:
        return value
    pattern, rule = _RULES[field]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadRequest(field, f"must be {rule}")
    if len(good) >= _GOOD_MAX:
        good.clear()
    good.add(value)
    return value
