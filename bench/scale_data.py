"""Real sizes for the scale benchmark: the year 2013 with 1, 10 or 30 times its traffic, made to look
like more airlines flying from more airports, not like copies of the same flights.

    .venv/bin/python bench/scale_data.py --data-root SRC --out DST --copies 10 [--first-day ..] [--last-day ..]

``SRC`` holds the validated year (``validated/flights``, ``validated/weather``, ``reference/planes``:
a data root the pipeline has gated). Copy 0 is the real data, unchanged. Copy ``i`` (1, 2, ...):

- each carrier becomes a carrier of its own (a two-character code no real carrier has), each
  airport an airport of its own (three letters no real airport has): copy ``i``'s flights are
  distinct flights, on distinct routes, of distinct carriers, with their own keys;
- each plane a plane of its own (its tail number with ``x<i>``), with its row in the planes table;
- each origin's weather, hour by hour, the weather of the copy's origin, a little changed;
- the measured outcomes a little changed, row by row (air time within 3 %, delays within 5
  minutes, from a hash of the flight's key and the copy: the same every time the data is made), so
  training never sees two identical rows.

The copies keep the days, the schedules and the shape of real traffic; groups (routes, carriers,
carriers on routes, planes) grow with the copies, as more airlines would make them. Written to
``DST`` as the pipeline writes them (``validated/<dataset>/ds=D``, ``reference/planes``); the rows
and bytes of each are printed.
"""

from __future__ import annotations

import argparse
import itertools
import string
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def new_codes(alphabet: str, length: int, taken: set[str], count: int) -> list[str]:
    """``count`` codes of ``length`` characters of ``alphabet`` none of ``taken``, in a fixed order."""
    out = []
    for chars in itertools.product(alphabet, repeat=length):
        code = "".join(chars)
        if code not in taken:
            out.append(code)
            if len(out) == count:
                return out
    raise ValueError(f"not enough codes of {length} characters for {count}")


def code_maps(carriers: list[str], airports: list[str], copies: int) -> list[tuple[dict, dict]]:
    """For each copy, ``(carrier -> its code, airport -> its code)``; copy 0 keeps the real ones."""
    carriers, airports = sorted(carriers), sorted(airports)
    carrier_codes = new_codes(
        string.ascii_uppercase + string.digits, 2, set(carriers), len(carriers) * (copies - 1)
    )
    airport_codes = new_codes(string.ascii_uppercase, 3, set(airports), len(airports) * (copies - 1))
    maps = [({c: c for c in carriers}, {a: a for a in airports})]
    for i in range(copies - 1):
        c = carrier_codes[i * len(carriers) : (i + 1) * len(carriers)]
        a = airport_codes[i * len(airports) : (i + 1) * len(airports)]
        maps.append((dict(zip(carriers, c, strict=True)), dict(zip(airports, a, strict=True))))
    return maps


def _mapped(column, mapping: dict):
    from pyspark.sql import functions as F

    return F.create_map(*[F.lit(x) for pair in sorted(mapping.items()) for x in pair])[column]


def _unit(*columns):
    """A number in [-1, 1) from a hash of the columns: the same for the same row every time."""
    from pyspark.sql import functions as F

    return (F.pmod(F.xxhash64(*columns), F.lit(2_000_001)) - F.lit(1_000_000)) / F.lit(1_000_000.0)


def scaled_flights(flights, maps):
    """The flights of every copy (see the module's note), with their keys made again."""
    from pyspark.sql import functions as F

    out = None
    for i, (carriers, airports) in enumerate(maps):
        part = flights
        if i > 0:
            noise = _unit(F.col("flight_id"), F.lit(i))
            part = part.select(
                *[F.col(c) for c in flights.columns if c not in _CHANGED],
                _mapped(F.col("carrier"), carriers).alias("carrier"),
                _mapped(F.col("origin"), airports).alias("origin"),
                _mapped(F.col("dest"), airports).alias("dest"),
                F.concat(F.col("tailnum"), F.lit(f"x{i}")).alias("tailnum"),
                F.round(F.col("air_time") * (F.lit(1.0) + F.lit(0.03) * noise))
                .cast(flights.schema["air_time"].dataType)
                .alias("air_time"),
                (F.col("dep_delay") + F.round(F.lit(5.0) * noise))
                .cast(flights.schema["dep_delay"].dataType)
                .alias("dep_delay"),
                (F.col("arr_delay") + F.round(F.lit(5.0) * _unit(F.col("flight_id"), F.lit(-i))))
                .cast(flights.schema["arr_delay"].dataType)
                .alias("arr_delay"),
                F.col("flight_id"),
            )
            # the key as the gate makes it (features.flight_key): carrier, number, origin, day, time
            part = part.withColumn(
                "flight_id",
                F.format_string(
                    "%s%d-%s-%s", F.col("carrier"), F.col("flight"), F.col("origin"),
                    F.substring_index(F.col("flight_id"), "-", -2),
                ),
            ).select(*flights.columns)  # fmt: skip
        out = part if out is None else out.unionByName(part)
    return out


_CHANGED = ("carrier", "origin", "dest", "tailnum", "air_time", "dep_delay", "arr_delay", "flight_id")


def scaled_weather(weather, maps):
    """Each copy's origins with the weather of the real origin they stand for, a little changed."""
    from pyspark.sql import functions as F

    origins = sorted(weather.select("origin").distinct().toPandas()["origin"])
    out = None
    for i, (_, airports) in enumerate(maps):
        part = weather
        if i > 0:
            part = part.withColumn("origin", _mapped(F.col("origin"), {o: airports[o] for o in origins}))
            part = part.withColumn(
                "temp", F.round(F.col("temp") + _unit(F.col("origin"), F.col("time_hour").cast("string")), 2)
            )
        out = part if out is None else out.unionByName(part)
    return out


def scaled_planes(planes, copies: int):
    """Each copy's planes: the real ones under the copy's tail numbers."""
    import pandas as pd

    return pd.concat(
        [planes] + [planes.assign(tailnum=planes["tailnum"] + f"x{i}") for i in range(1, copies)],
        ignore_index=True,
    )


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def dataset_sizes(root: Path, days: list[str]) -> dict[str, tuple[int, int]]:
    """Rows and bytes of the validated flights and weather of ``days`` and of the planes table under
    ``root``, read from the files' footers."""
    import pyarrow.parquet as pq

    sizes = {}
    for name in ("flights", "weather"):
        files = [f for d in days for f in (root / "validated" / name / f"ds={d}").glob("*.parquet")]
        sizes[name] = (
            sum(pq.ParquetFile(f).metadata.num_rows for f in files),
            sum(f.stat().st_size for f in files),
        )
    planes = root / "reference" / "planes" / "planes.csv"
    sizes["planes"] = (len(planes.read_text().splitlines()) - 1, planes.stat().st_size)
    return sizes


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="the validated year")
    parser.add_argument("--out", required=True)
    parser.add_argument("--copies", type=int, required=True)
    parser.add_argument("--first-day", default="2013-01-01")
    parser.add_argument("--last-day", default="2013-12-31")
    args = parser.parse_args(argv)

    import pandas as pd
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from mlcycle.config import days_between

    started = SparkSession.getActiveSession() is None  # run in-process, a caller's session stays up
    spark = (
        SparkSession.builder.master("local[2]")
        .appName(f"scale-data x{args.copies}")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    days = days_between(args.first_day, args.last_day)
    source, out = Path(args.data_root), Path(args.out)
    read = {
        name: spark.read.parquet(str(source / "validated" / name)).where(
            F.col("ds").cast("string").isin(days)
        )
        for name in ("flights", "weather")
    }
    carriers = [r.carrier for r in read["flights"].select("carrier").distinct().collect()]
    airports = [
        r.code
        for r in read["flights"]
        .select(F.col("origin").alias("code"))
        .union(read["flights"].select("dest"))
        .union(read["weather"].select("origin"))
        .distinct()
        .collect()
    ]
    maps = code_maps(carriers, airports, args.copies)
    sizes = {}
    for name, scaled in (
        ("flights", scaled_flights(read["flights"], maps)),
        ("weather", scaled_weather(read["weather"], maps)),
    ):
        target = out / "validated" / name
        scaled.write.mode("overwrite").partitionBy("ds").parquet(str(target))
        sizes[name] = (spark.read.parquet(str(target)).count(), _size(target))
    planes = pd.read_csv(source / "reference" / "planes" / "planes.csv", dtype=str, keep_default_na=False)
    target = out / "reference" / "planes" / "planes.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    scaled_planes(planes, args.copies).to_csv(target, index=False)
    sizes["planes"] = (len(planes) * args.copies, target.stat().st_size)
    if started:
        spark.stop()
    print(f"x{args.copies}, {days[0]}..{days[-1]}: {len(carriers) * args.copies} carriers, "
          f"{len(airports) * args.copies} airports")  # fmt: skip
    for name, (rows, size) in sizes.items():
        print(f"  {name:8} {rows:>12,} rows {size / 2**20:>10,.1f} MiB")
    return sizes


if __name__ == "__main__":
    main()
