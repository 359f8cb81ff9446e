"""File checks of a raw drop, before any parser sees it."""

from __future__ import annotations

import gzip

from mlcycle.quality.raw_files import header_problem, inspect_csv

COLUMNS = ["year", "month", "day", "carrier"]
GOOD = b"year,month,day,carrier\n2013,1,2,AA\n2013,1,2,B6\n"


def rules(inspection) -> list[str]:
    return [p["expectation"] for p in inspection.problems]


def test_a_good_file_counts_its_data_lines():
    inspection = inspect_csv(GOOD, COLUMNS)
    assert inspection.ok and inspection.data_lines == 2


def test_blank_lines_and_crlf_are_not_rows():
    inspection = inspect_csv(b"year,month,day,carrier\r\n2013,1,2,AA\r\n\r\n\n2013,1,2,B6\r\n", COLUMNS)
    assert inspection.ok and inspection.data_lines == 2


def test_empty_file():
    inspection = inspect_csv(b"", COLUMNS)
    assert rules(inspection) == ["file_is_not_empty"]


def test_header_only_file_is_readable_with_no_rows():
    inspection = inspect_csv(b"year,month,day,carrier\n", COLUMNS)
    assert inspection.ok and inspection.data_lines == 0  # the volume rule decides


def test_invalid_utf8_names_byte_and_line():
    inspection = inspect_csv(GOOD.replace(b"B6", b"B\xe9"), COLUMNS)
    assert rules(inspection) == ["file_is_utf8_text"]
    assert inspection.problems[0]["observed"] == {"invalid_byte": "0xe9", "offset": 45, "line": 3}


def test_binary_file_with_a_csv_name():
    inspection = inspect_csv(gzip.compress(GOOD, mtime=0), COLUMNS)
    assert rules(inspection) == ["file_is_utf8_text"]


def test_cut_off_last_line():
    inspection = inspect_csv(GOOD[:-4], COLUMNS)
    assert rules(inspection) == ["file_ends_with_newline"]
    assert inspection.problems[0]["observed"] == {"last_line": "2013,1,2", "line": 3}
    assert inspect_csv(GOOD[:-1], COLUMNS, require_final_newline=False).ok


def test_header_differences_are_named():
    assert header_problem(COLUMNS, COLUMNS) is None
    reordered = header_problem(["month", "year", "day", "carrier"], COLUMNS)["observed"]
    assert reordered["reordered"] == ["year@1 but found month", "month@2 but found year"]
    renamed = header_problem(["year", "month", "dd", "carrier"], COLUMNS)["observed"]
    assert (renamed["missing"], renamed["unexpected"]) == (["day"], ["dd"])
    extra = header_problem([*COLUMNS, "gate"], COLUMNS)["observed"]
    assert extra["unexpected"] == ["gate"] and "missing" not in extra
    doubled = header_problem([*COLUMNS, "day"], COLUMNS)["observed"]
    assert doubled["columns"] == 5


def test_quoted_header_is_read_as_csv():
    assert inspect_csv(b'"year","month","day","carrier"\n2013,1,2,AA\n', COLUMNS).ok


def test_a_byte_order_mark_before_the_header_is_the_same_header():
    inspection = inspect_csv(b"\xef\xbb\xbf" + GOOD, COLUMNS)
    assert inspection.ok and inspection.data_lines == 2
    # the mark is accepted only where exports write it: before the header, not inside a name
    inside = inspect_csv(b"year,\xef\xbb\xbfmonth,day,carrier\n2013,1,2,AA\n", COLUMNS)
    assert rules(inside) == ["header_matches_schema"]
    assert inside.problems[0]["observed"]["unexpected"] == ["\ufeffmonth"]


def test_a_byte_order_mark_alone_is_an_empty_file():
    inspection = inspect_csv(b"\xef\xbb\xbf", COLUMNS)
    assert rules(inspection) == ["file_is_not_empty"]
    assert inspection.problems[0]["observed"]["bytes"] == 3


def test_the_files_of_a_range_are_read_under_a_data_root_given_relative(spark, tmp_path):
    """A range's files are read in one Spark job, which names each file by its absolute path: a
    data root given relative to the working directory still finds each file's own bytes."""
    import os

    from spark_jobs.quality import read_many_bytes

    (tmp_path / "a.csv").write_bytes(b"x\n1\n")
    (tmp_path / "empty.csv").write_bytes(b"")
    root = os.path.relpath(tmp_path)  # relative to where the session was started
    paths = [f"{root}/a.csv", f"{root}/empty.csv", f"{root}/missing.csv"]
    assert read_many_bytes(spark, paths) == {paths[0]: b"x\n1\n", paths[1]: b""}
    absolute = str(tmp_path / "a.csv")
    assert read_many_bytes(spark, [absolute]) == {absolute: b"x\n1\n"}
