"""The contract of the flights project: its datasets, key, label and feature columns.

Only this package, its suites under ``expectations/flights`` and its config know the project is
about flights; the generic jobs read these names.
"""

NAME = "flights"
RAW_DATASETS = ("flights", "weather")
KEY = "flight_id"
LABEL = "air_time"
CATEGORICAL = ("carrier", "origin", "dest")
NUMERIC = (
    "distance",
    "sched_dep_hour",
    "month",
    "day_of_week",
    "temp",
    "wind_speed",
    "precip",
    "visib",
)
# Columns of features/ds=D besides the features: the key, the label (null for flights that did
# not fly), the partition.
FEATURE_TABLE_COLUMNS = (KEY, "ds", LABEL, *CATEGORICAL, *NUMERIC)
