"""The raw gate against bad input, through the entry point the DAG runs (``validate_raw.main``,
here in-process on the test session; ``test_data_path.py`` runs it under spark-submit).

The real day before (2013-01-04) is validated first, so the volume rule has a trailing day (the
median of several is the unit test of ``volume_bounds``). Every case then delivers a damaged copy
of the real 2013-01-05 drop and asserts what a data team needs: the exit code (held or not), the
rule named with what was observed and expected, the reconciled counts, the quarantined rows, and
that a held day leaves every validated row as it was.
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
from pathlib import Path

import pytest

from mlcycle.quality.gates import GATE_FAILED_EXIT, load_thresholds
from mlcycle.quality.landing import landing_path
from mlcycle.specs import find_usecase
from spark_jobs import quality as validate_raw
from spark_jobs.flights.replay import land_day

pytestmark = pytest.mark.integration

TRAILING = ("2013-01-04",)
DS = "2013-01-05"


def run_gate(root: Path, ds: str, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = validate_raw.main(["--ds", ds, "--data-root", str(root)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def verdict(root: Path, dataset: str, ds: str = DS) -> dict:
    return json.loads((root / "gates" / f"raw_{dataset}" / f"ds={ds}.json").read_text())


def rows_of(spark, root: Path, dataset: str, ds: str = DS) -> int:
    path = root / dataset / f"ds={ds}"
    return spark.read.parquet(str(path)).count() if path.is_dir() else 0


def content(root: Path, dataset: str, table: str = "validated"):
    """Every row of ``<table>/<dataset>``, all days, in one fixed order: what a reader sees."""
    import pandas as pd

    frame = pd.read_parquet(root / table / dataset)
    frame["ds"] = frame["ds"].astype(str)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def snapshot(root: Path) -> dict:
    return {dataset: content(root, dataset) for dataset in ("flights", "weather")}


def assert_unchanged(root: Path, before: dict) -> None:
    """Row for row, every validated partition of both datasets is what it was."""
    import pandas as pd

    for dataset, frame in before.items():
        pd.testing.assert_frame_equal(content(root, dataset), frame, obj=f"validated/{dataset}")


@pytest.fixture(scope="module")
def root(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("raw_gate")
    for ds in (*TRAILING, DS):
        land_day(str(root), ds)
        assert validate_raw.main(["--ds", ds, "--data-root", str(root)]) == 0
    shutil.copytree(root / "landing", root / "pristine")
    shutil.copytree(root / "validated", root / "validated_pristine")  # what the real drops give
    return root


@pytest.fixture()
def good(root, spark) -> dict:
    """Restore the real drop of DS before each case; the validated rows of every day (DS as it was
    when it last passed), by dataset."""
    for dataset in ("flights", "weather"):
        src = root / "pristine" / dataset / f"ds={DS}" / f"{dataset}.csv"
        dst = Path(landing_path(str(root), dataset, DS))
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    return snapshot(root)


def deliver(root: Path, dataset: str, data: bytes | str) -> None:
    path = Path(landing_path(str(root), dataset, DS))
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def pristine(root: Path, dataset: str = "flights") -> list[str]:
    text = (root / "pristine" / dataset / f"ds={DS}" / f"{dataset}.csv").read_text()
    return text.splitlines()


def with_field(line: str, header: list[str], column: str, value: str) -> str:
    fields = line.split(",")
    fields[header.index(column)] = value
    return ",".join(fields)


def lines_text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


def assert_held(code, output, root, spark, good, rule, dataset="flights"):
    """The day is held: exit code, message, verdict; every validated row of both datasets, the
    day's previous partition included, is as it was."""
    assert code == GATE_FAILED_EXIT, output[-3000:]
    record = verdict(root, dataset)
    assert record["success"] is False
    rules = [f["expectation"] for f in record["failed"]]
    assert rule in rules, record["failed"]
    assert f"rejected raw_{dataset} ds={DS}" in output
    assert f"  - {rule}" in output  # the rule's own line, with what was observed
    assert f"  - {rule}" in record["message"]
    assert_unchanged(root, good)
    return record


def assert_quarantined(code, output, root, spark, expected: dict[str, int], dataset="flights"):
    """The day passes: bad rows set aside with their rules, the rest validated, counts reconciled."""
    assert code == 0, output[-3000:]
    record = verdict(root, dataset)
    total = len(pristine(root, dataset)) - 1
    assert record["success"] is True and record["reconciled"] is True
    assert record["rows"] == record["validated"] + record["quarantined"]
    assert record["quarantine_rules"] == expected
    quarantine = spark.read.parquet(record["quarantine"])
    assert quarantine.count() == record["quarantined"]
    assert rows_of(spark, root, f"validated/{dataset}") == record["validated"]
    for rule, count in expected.items():  # the job's log names each rule with its rows
        assert f"{rule}: {count}" in output
    labels = [label for row in quarantine.select("_failed_rules").collect() for label in row[0]]
    assert {label: labels.count(label) for label in set(labels)} == expected
    return record, total


def test_real_days_pass_whole(root, spark, good):
    for ds in (*TRAILING, DS):
        for dataset in ("flights", "weather"):
            record = verdict(root, dataset, ds)
            assert (record["success"], record["reconciled"], record["quarantined"]) == (True, True, 0)
            assert record["rows"] == record["validated"] == rows_of(spark, root, f"validated/{dataset}", ds)
            assert Path(record["docs_page"]).is_file()


def test_reordered_columns(root, spark, good, capsys):
    lines = pristine(root)
    header = lines[0].split(",")
    swap = [header.index("dep_time"), header.index("sched_dep_time")]

    def swapped(line):
        fields = line.split(",")
        fields[swap[0]], fields[swap[1]] = fields[swap[1]], fields[swap[0]]
        return ",".join(fields)

    deliver(root, "flights", lines_text([swapped(line) for line in lines]))
    record = assert_held(*run_gate(root, DS, capsys), root, spark, good, "header_matches_schema")
    observed = record["failed"][0]["observed"]
    assert observed["reordered"] == [
        "dep_time@4 but found sched_dep_time",
        "sched_dep_time@5 but found dep_time",
    ]


def test_renamed_column(root, spark, good, capsys):
    lines = pristine(root)
    lines[0] = lines[0].replace("dep_delay", "departure_delay")
    deliver(root, "flights", lines_text(lines))
    record = assert_held(*run_gate(root, DS, capsys), root, spark, good, "header_matches_schema")
    assert record["failed"][0]["observed"]["missing"] == ["dep_delay"]
    assert record["failed"][0]["observed"]["unexpected"] == ["departure_delay"]


def test_missing_column(root, spark, good, capsys):
    lines = pristine(root)
    at = lines[0].split(",").index("tailnum")
    deliver(
        root,
        "flights",
        lines_text([",".join(f for i, f in enumerate(x.split(",")) if i != at) for x in lines]),
    )
    record = assert_held(*run_gate(root, DS, capsys), root, spark, good, "header_matches_schema")
    assert record["failed"][0]["observed"]["missing"] == ["tailnum"]


def test_extra_column(root, spark, good, capsys):
    lines = pristine(root)
    deliver(root, "flights", lines_text([lines[0] + ",gate"] + [x + ",B12" for x in lines[1:]]))
    record = assert_held(*run_gate(root, DS, capsys), root, spark, good, "header_matches_schema")
    assert record["failed"][0]["observed"]["unexpected"] == ["gate"]


def test_bad_rows_are_set_aside_each_with_the_rules_it_broke(root, spark, good, capsys):
    """Text in numeric columns, a short row and one with extra tokens, null flight keys and tail
    number, impossible values: each row set aside with its rules, the day passes with the rest."""
    lines = pristine(root)
    header = lines[0].split(",")
    lines[3] = with_field(lines[3], header, "distance", "far")
    lines[7] = with_field(lines[7], header, "dep_delay", "late")
    lines[2] = ",".join(lines[2].split(",")[:-3])  # lacks its last three fields
    lines[4] = lines[4] + ",x,y"
    departed = [
        i for i, x in enumerate(lines[1:], 1) if i > 20 and x.split(",")[header.index("dep_time")] != "NA"
    ]
    lines[departed[0]] = with_field(lines[departed[0]], header, "carrier", "NA")
    lines[departed[1]] = with_field(lines[departed[1]], header, "flight", "NA")
    lines[departed[2]] = with_field(lines[departed[2]], header, "tailnum", "NA")
    lines[5] = with_field(lines[5], header, "distance", "-187")
    lines[6] = with_field(with_field(lines[6], header, "hour", "27"), header, "sched_dep_time", "2705")
    lines[8] = with_field(lines[8], header, "origin", "XYZ")
    lines[9] = with_field(lines[9], header, "dest", "ZZZ")  # an airport code, but no known airport
    deliver(root, "flights", lines_text(lines))
    record, total = assert_quarantined(
        *run_gate(root, DS, capsys),
        root,
        spark,
        {
            "expect_column_values_to_be_null(_corrupt_record)": 4,
            "expect_column_values_to_not_be_null(distance)": 1,  # the field that did not parse
            "expect_column_values_to_not_be_null(hour)": 1,  # the short row's last three fields
            "expect_column_values_to_not_be_null(minute)": 1,
            "expect_column_values_to_not_be_null(time_hour)": 1,
            "expect_column_values_to_not_be_null(carrier)": 1,
            "expect_column_values_to_not_be_null(flight)": 1,
            "expect_column_values_to_not_be_null(tailnum)": 1,
            "expect_column_values_to_be_between(distance)": 1,
            "expect_column_values_to_be_between(hour)": 1,
            "expect_column_values_to_be_between(sched_dep_time)": 1,
            "expect_column_values_to_be_in_set(origin)": 1,
            "expect_column_values_to_be_in_set(dest)": 1,
        },
    )
    assert (record["rows"], record["validated"], record["quarantined"]) == (total, total - 11, 11)
    set_aside = spark.read.parquet(record["quarantine"])
    texts = {r[0] for r in set_aside.select("_corrupt_record").collect() if r[0] is not None}
    assert texts == {lines[2], lines[3], lines[4], lines[7]}  # kept verbatim, nothing silently nulled
    assert "XYZ" in {r.origin for r in set_aside.select("origin").collect()}
    assert "ZZZ" in {r.dest for r in set_aside.select("dest").collect()}


def test_truncated_last_line(root, spark, good, capsys):
    text = lines_text(pristine(root))
    deliver(root, "flights", text[: len(text) - 25])
    record = assert_held(*run_gate(root, DS, capsys), root, spark, good, "file_ends_with_newline")
    assert record["failed"][0]["observed"]["line"] == len(pristine(root))


def test_empty_file(root, spark, good, capsys):
    deliver(root, "flights", b"")
    record = assert_held(*run_gate(root, DS, capsys), root, spark, good, "file_is_not_empty")
    assert record["failed"][0]["observed"] == {"bytes": 0}


def test_header_only_file(root, spark, good, capsys):
    deliver(root, "flights", pristine(root)[0] + "\n")
    record = assert_held(
        *run_gate(root, DS, capsys), root, spark, good, "expect_table_row_count_to_be_between"
    )
    counted = next(f for f in record["failed"] if f["expectation"] == "expect_table_row_count_to_be_between")
    assert counted["observed"] == 0 and counted["expected"]["min_value"] > 400  # half the trailing median


def test_missing_partition(root, spark, good, capsys):
    Path(landing_path(str(root), "flights", DS)).unlink()
    code, output = run_gate(root, DS, capsys)
    record = assert_held(code, output, root, spark, good, "file_exists")
    assert record["failed"][0]["observed"]["path"].endswith(f"ds={DS}/flights.csv")
    assert "deliver it there, then clear the task" in output


def test_duplicates_rows_of_another_day_and_too_many_bad_rows_hold_the_day(root, spark, good, capsys):
    """Three batch rules broken in one drop, each named with what it observed: five flights listed
    twice, a row dated the day after, and one row in twenty with an impossible distance (5 % set
    aside, over the 2 % allowed: the rows are still set aside, for people to see)."""
    lines = pristine(root)
    header = lines[0].split(",")
    bad = range(1, len(lines), 20)
    for i in bad:
        lines[i] = with_field(lines[i], header, "distance", "-1")
    lines[2] = with_field(lines[2], header, "day", "6")
    lines += lines[10:15]
    deliver(root, "flights", lines_text(lines))
    code, output = run_gate(root, DS, capsys)
    record = assert_held(code, output, root, spark, good, "expect_compound_columns_to_be_unique")
    dup = next(f for f in record["failed"] if f["expectation"] == "expect_compound_columns_to_be_unique")
    assert dup["column"] == ["carrier", "flight", "origin", "sched_dep_time"]
    assert dup["observed"]["unexpected_count"] == 10  # both copies of each of the 5 flights
    dated = next(f for f in record["failed"] if f["column"] == "day")
    assert dated["observed"]["unexpected_sample"] == [6] and dated["expected"] == {
        "max_value": 5,
        "min_value": 5,
    }
    share = next(f for f in record["failed"] if f["expectation"] == "expect_column_mean_to_be_between")
    assert share["observed"] == pytest.approx(len(bad) / (len(lines) - 1))
    assert share["expected"]["max_value"] == 0.02
    assert {f["expectation"] for f in record["failed"]} == {
        "expect_compound_columns_to_be_unique",
        "expect_column_values_to_be_between",
        "expect_column_mean_to_be_between",
    }
    assert record["quarantined"] == len(bad)
    assert spark.read.parquet(record["quarantine"]).count() == len(bad)
    assert f"Quarantined rows: {record['quarantine']}" in output
    for rule in ("expect_column_values_to_be_between", "expect_column_mean_to_be_between"):
        assert f"  - {rule}" in output


def test_volume_spike(root, spark, good, capsys):
    lines = pristine(root)
    header = lines[0].split(",")
    at = header.index("flight")
    copies = []
    for line in lines[1:]:
        fields = line.split(",")
        fields[at] = str(int(fields[at]) + 5000) if int(fields[at]) < 5000 else str(int(fields[at]) - 4000)
        copies.append(",".join(fields))
    deliver(root, "flights", lines_text(lines + copies))
    record = assert_held(
        *run_gate(root, DS, capsys), root, spark, good, "expect_table_row_count_to_be_between"
    )
    counted = next(f for f in record["failed"] if f["expectation"] == "expect_table_row_count_to_be_between")
    assert counted["observed"] == 2 * (len(lines) - 1)


def test_volume_collapse(root, spark, good, capsys):
    lines = pristine(root)
    deliver(root, "flights", lines_text(lines[:1] + lines[1::4]))  # a quarter of the day, spread over it
    record = assert_held(
        *run_gate(root, DS, capsys), root, spark, good, "expect_table_row_count_to_be_between"
    )
    counted = next(f for f in record["failed"] if f["expectation"] == "expect_table_row_count_to_be_between")
    assert counted["observed"] == len(lines[1::4])
    assert [f["expectation"] for f in record["failed"]] == ["expect_table_row_count_to_be_between"]


def test_non_utf8_bytes(root, spark, good, capsys):
    data = lines_text(pristine(root)).encode()
    at = data.index(b"\n", 2000) + 5
    deliver(root, "flights", data[:at] + b"\xe9" + data[at + 1 :])
    record = assert_held(*run_gate(root, DS, capsys), root, spark, good, "file_is_utf8_text")
    assert record["failed"][0]["observed"]["invalid_byte"] == "0xe9"
    assert record["failed"][0]["observed"]["line"] == data[:at].count(b"\n") + 1


def test_binary_file_named_csv(root, spark, good, capsys):
    deliver(root, "flights", gzip.compress(lines_text(pristine(root)).encode(), mtime=0))
    assert_held(*run_gate(root, DS, capsys), root, spark, good, "file_is_utf8_text")


def test_weather_glitch_is_quarantined_and_a_bad_weather_file_holds_the_day(root, spark, good, capsys):
    lines = pristine(root, "weather")
    header = lines[0].split(",")
    lines[4] = with_field(lines[4], header, "wind_speed", "1048.0")
    deliver(root, "weather", lines_text(lines))
    assert_quarantined(
        *run_gate(root, DS, capsys),
        root,
        spark,
        {"expect_column_values_to_be_between(wind_speed)": 1},
        dataset="weather",
    )

    # flights fine, weather unreadable: the whole day is held, flights included
    passed = snapshot(root)
    deliver(root, "weather", b"")
    code, output = run_gate(root, DS, capsys)
    assert code == GATE_FAILED_EXIT
    assert verdict(root, "weather")["success"] is False and verdict(root, "flights")["success"] is True
    assert "rejected raw_weather" in output and "rejected raw_flights" not in output
    assert_unchanged(root, passed)


def test_weather_share_of_bad_rows_passes_just_under_its_threshold_and_holds_just_over(
    root, spark, good, capsys
):
    share = load_thresholds(str(find_usecase().thresholds), "raw_weather")["max_quarantine_share"]
    lines = pristine(root, "weather")
    header = lines[0].split(",")
    rows = len(lines) - 1
    under = math.floor(share * rows)
    assert 0 < under / rows <= share < (under + 1) / rows

    def with_bad_readings(count: int) -> str:
        bad = list(lines)
        for i in range(1, rows + 1, rows // count)[:count]:  # spread over the day
            bad[i] = with_field(bad[i], header, "temp", "999.0")
        return lines_text(bad)

    deliver(root, "weather", with_bad_readings(under))
    record, total = assert_quarantined(
        *run_gate(root, DS, capsys),
        root,
        spark,
        {"expect_column_values_to_be_between(temp)": under},
        dataset="weather",
    )
    assert (record["rows"], record["quarantined"]) == (total, under)

    passed = snapshot(root)
    deliver(root, "weather", with_bad_readings(under + 1))
    record = assert_held(
        *run_gate(root, DS, capsys),
        root,
        spark,
        passed,
        "expect_column_mean_to_be_between",
        dataset="weather",
    )
    held = next(f for f in record["failed"] if f["expectation"] == "expect_column_mean_to_be_between")
    assert held["observed"] == pytest.approx((under + 1) / rows)
    assert held["expected"]["max_value"] == share
    assert record["quarantined"] == under + 1
    assert verdict(root, "flights")["success"] is True  # the weather alone holds the day


def test_a_byte_order_mark_before_the_header_is_read_as_the_same_file(root, spark, good, capsys):
    for dataset in ("flights", "weather"):
        deliver(root, dataset, b"\xef\xbb\xbf" + lines_text(pristine(root, dataset)).encode())
    code, output = run_gate(root, DS, capsys)
    assert code == 0, output[-3000:]
    for dataset in ("flights", "weather"):
        record = verdict(root, dataset)
        assert (record["success"], record["reconciled"], record["quarantined"]) == (True, True, 0)
        assert record["rows"] == record["validated"] == len(pristine(root, dataset)) - 1
    # the first column is read under its own name, its values as written
    firsts = content(root, "flights").query(f"ds == '{DS}'")["year"]
    assert set(firsts) == {2013}
    assert set(content(root, "weather").query(f"ds == '{DS}'")["origin"]) == {"EWR", "JFK", "LGA"}
    # row for row what the drop without the mark gives
    assert_unchanged(root, {dataset: content(root, dataset, "validated_pristine") for dataset in good})


def test_a_fixed_drop_replaces_exactly_its_partition(root, spark, good, capsys):
    lines = pristine(root)
    header = lines[0].split(",")
    lines[5] = with_field(lines[5], header, "distance", "-187")
    deliver(root, "flights", lines_text(lines))
    code, _ = run_gate(root, DS, capsys)
    assert code == 0 and (root / "quarantine" / "flights" / f"ds={DS}").is_dir()
    assert rows_of(spark, root, "validated/flights") == rows_of(spark, root, "validated_pristine/flights") - 1

    deliver(root, "flights", lines_text(pristine(root)))  # the upstream fixes its drop; rerun
    code, _ = run_gate(root, DS, capsys)
    assert code == 0
    assert not (root / "quarantine" / "flights" / f"ds={DS}").exists()  # no stale quarantine
    assert verdict(root, "flights")["quarantined"] == 0
    # the day holds the rows of the real drop again, and the other days were not touched
    assert_unchanged(root, {dataset: content(root, dataset, "validated_pristine") for dataset in good})


def test_a_failed_write_leaves_the_previous_partition(root, spark, good):
    from pyspark.sql import functions as F

    from spark_jobs.common import overwrite_partitions, read_partitions

    dataset = "validated/flights"
    before = read_partitions(spark, str(root), dataset, [DS])
    expected = sorted(r.flight_id for r in before.select("flight_id").collect())
    # the same day again, but the job dies half way through computing it
    broken = before.withColumn(
        "distance",
        F.when(F.col("flight") % 7 == 3, F.raise_error(F.lit("disk gone"))).otherwise(F.col("distance")),
    )
    with pytest.raises(Exception, match="disk gone"):
        overwrite_partitions(broken, str(root), dataset)

    after = spark.read.option("basePath", str(root / dataset)).parquet(str(root / dataset))
    assert (
        sorted(r.flight_id for r in after.where(f"ds = DATE'{DS}'").select("flight_id").collect()) == expected
    )
    assert_unchanged(root, good)  # every row of every day, not only the day's keys
    leftovers = [p.name for p in (root / dataset).iterdir() if not p.name.startswith(("ds=", "_", "."))]
    assert leftovers == []


@pytest.mark.parametrize("job", ["day", "range"])
def test_a_gate_that_fails_half_way_leaves_no_rows_cached(root, spark, good, monkeypatch, job):
    """A gate that raises once it has read and cached its rows (here the weather's judgement, in
    the day's job and in a range's) lets go of what every dataset cached, the flights' too: on a
    long-lived session (the stack's Connect server) a cached scan would answer a rerun after a
    fix with the rows of the file as it was."""
    from mlcycle.quality import by_day

    # the day's job judges with the gate_day it imported; a range's imports measure_days when it runs
    judge, where = ("gate_day", validate_raw) if job == "day" else ("measure_days", by_day)
    real = getattr(by_day, judge)

    def failing(*args, **kwargs):
        if kwargs["name"] == "raw_weather":
            raise RuntimeError("the gate's judgement failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(where, judge, failing)
    spark.catalog.clearCache()
    cache = spark._jsparkSession.sharedState().cacheManager()
    days = ["--ds", DS] if job == "day" else ["--start", TRAILING[0], "--end", DS]
    with pytest.raises(RuntimeError, match="judgement failed"):
        validate_raw.main([*days, "--data-root", str(root)])
    assert cache.isEmpty()
    assert_unchanged(root, good)
