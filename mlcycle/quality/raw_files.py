"""Checks of an upstream CSV file as bytes, before any parser sees it.

A CSV reader forgives too much: it decodes invalid UTF-8 into replacement characters, maps a
reordered header by position, reads an empty file as zero rows, and takes the cut-off last line of
an interrupted transfer as a row when it still happens to parse. Each of these is a property of
the whole file, so each blocks the partition with a problem record that says what was seen and
what was expected (the same shape as a failed expectation in ``mlcycle.quality.gates``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field

SHOWN = 80  # characters of a line quoted in a problem
BOM = "\ufeff"  # the UTF-8 byte-order mark, as decoded text


@dataclass
class FileInspection:
    data_lines: int = 0  # non-blank lines after the header: the rows a reader must account for
    problems: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _problem(rule: str, observed, expected) -> dict:
    return {"expectation": rule, "column": None, "observed": observed, "expected": expected}


def _decode(content: bytes) -> tuple[str | None, dict | None]:
    if b"\x00" in content:
        offset = content.index(b"\x00")
        return None, {"nul_byte_at": offset, "line": content.count(b"\n", 0, offset) + 1}
    try:
        return content.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, {
            "invalid_byte": f"0x{content[exc.start]:02x}",
            "offset": exc.start,
            "line": content.count(b"\n", 0, exc.start) + 1,
        }


def header_problem(found: list[str], expected: list[str]) -> dict | None:
    """None when ``found`` names exactly ``expected`` in order; otherwise what differs."""
    if found == expected:
        return None
    missing = [c for c in expected if c not in found]
    unexpected = [c for c in found if c not in expected]
    observed: dict = {"header": found}
    if missing:
        observed["missing"] = missing
    if unexpected:
        observed["unexpected"] = unexpected
    if not missing and not unexpected:
        pairs = enumerate(zip(expected, found, strict=False), start=1)
        observed["reordered"] = [f"{want}@{i} but found {got}" for i, (want, got) in pairs if want != got]
        if len(found) != len(expected):
            observed["columns"] = len(found)
    return _problem("header_matches_schema", observed, {"header": expected})


def inspect_csv(content: bytes, columns: list[str], *, require_final_newline: bool = True) -> FileInspection:
    """Inspect one CSV drop whose header must be exactly ``columns``."""
    inspection = FileInspection()
    if not content:
        inspection.problems.append(_problem("file_is_not_empty", {"bytes": 0}, {"min_bytes": 1}))
        return inspection
    text, invalid = _decode(content)
    if text is None:
        inspection.problems.append(_problem("file_is_utf8_text", invalid, "UTF-8 text without NUL bytes"))
        return inspection
    # Spreadsheet exports often start with a UTF-8 byte-order mark. It is not part of the first
    # column's name, and Spark's reader skips it too, so the header is the same with or without it.
    text = text.removeprefix(BOM)
    if not text:
        inspection.problems.append(
            _problem(
                "file_is_not_empty",
                {"bytes": len(content), "only": "a byte-order mark"},
                "a header line after the byte-order mark",
            )
        )
        return inspection
    lines = text.split("\n")
    header = next(csv.reader([lines[0].rstrip("\r")]), [])
    mismatch = header_problem(header, list(columns))
    if mismatch:
        inspection.problems.append(mismatch)
    if require_final_newline and not text.endswith("\n"):
        inspection.problems.append(
            _problem(
                "file_ends_with_newline",
                {"last_line": lines[-1][:SHOWN], "line": len(lines)},
                "a newline after the last row; without it the file looks cut off in transfer",
            )
        )
    inspection.data_lines = sum(1 for line in lines[1:] if line.strip("\r") != "")
    return inspection
