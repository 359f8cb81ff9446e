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
