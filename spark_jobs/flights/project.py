"""The contract of the flights project: its datasets, key, label and feature columns.

Only this package, its suites under ``expectations/flights`` and its config know the project is
about flights; the generic jobs read these names.
"""

NAME = "flights"
RAW_DATASETS = ("flights", "weather")
KEY = "flight_id"
LABEL = "air_time"
# What is known only once a flight has flown (null for flights that did not): the labels of the
# project's models are these or made from them (usecases/flights/usecase.toml).
OUTCOMES = (LABEL, "arr_delay")
CATEGORICAL = ("carrier", "origin", "dest", "engine")
NUMERIC = (
    "distance",
    "sched_dep_hour",
    "month",
    "day_of_week",
    "days_to_holiday",
    "temp",
    "wind_speed",
    "precip",
    "visib",
    "route_air_time_mean",
    "route_flights",
    "carrier_route_air_time_mean",
    "plane_age",
    "seats",
)
# Columns predictions are sliced by (carried into predictions/ds=D for monitoring).
SLICES = ("carrier", "origin", "dest")
# Features watched for drift against a model's training rows (not the calendar: one day holds one
# month and one weekday, which would always look like a shift).
DRIFT_NUMERIC = (
    "distance",
    "sched_dep_hour",
    "temp",
    "wind_speed",
    "precip",
    "visib",
    "route_air_time_mean",
    "carrier_route_air_time_mean",
    "plane_age",
    "seats",
)
DRIFT_CATEGORICAL = ("carrier", "origin", "dest")
# Days of history behind the rolling statistics of a day (days strictly before it).
HISTORY_DAYS = 28
# Columns of features/ds=D besides the features: the key, the partition, the outcomes.
FEATURE_TABLE_COLUMNS = (KEY, "ds", *OUTCOMES, *CATEGORICAL, *NUMERIC)

# How each feature of a flight is found, as data read by both sides: the batch job builds the
# feature table with it (``features.assemble``, over the day's feature views) and the scoring
# service answers a request with it (``mlcycle.serving.features``, over the same views as
# published under ``feature_views/ds=D/view=<view>``).
# - the fields a flight is scheduled with (what a request names, ``online.request_fields``):
REQUEST_FIELDS = ("ds", "carrier", "flight", "tailnum", "origin", "dest", "sched_dep_time", "time_hour")
# - each view: its key (request fields) and the features it holds for that key:
LOOKUPS = (
    # views of keys only, no feature: what a request's carrier and airports must be among
    ("carriers", ("carrier",), ()),
    ("origins", ("origin",), ()),
    ("dests", ("dest",), ()),
    ("weather", ("origin", "time_hour"), ("temp", "wind_speed", "precip", "visib")),
    ("route", ("origin", "dest"), ("distance", "route_air_time_mean", "route_flights")),
    ("carrier_route", ("carrier", "origin", "dest"), ("carrier_route_air_time_mean",)),
    ("plane", ("tailnum",), ("plane_age", "engine", "seats")),
    ("calendar", ("ds",), ("month", "day_of_week", "days_to_holiday")),
)
# - features of a request field itself: (feature, field, divisor), the field divided and floored:
DERIVED = (("sched_dep_hour", "sched_dep_time", 100),)  # HHMM -> the hour
# - the views a request's key must be found in, in this order, and the field and rule a request
#   is refused with otherwise (the other views give null features):
REQUIRED = {
    "carriers": ("carrier", "{carrier} is not a carrier of the flights up to {ds}"),
    "origins": ("origin", "{origin} is not an airport flights leave from up to {ds}"),
    "dests": ("dest", "{dest} is not an airport flights go to up to {ds}"),
    "route": ("dest", "no flight from {origin} to {dest} up to {ds}"),
    "calendar": ("sched_dep", "{ds} has no features"),
}
# - the value of a feature its view does not have for the key (no flight on the route yet):
DEFAULTS = {"route_flights": 0.0}
# - the request fields a feature row keeps:
KEPT = ("carrier", "origin", "dest")
