"""Reading UMLS Rich Release Format (RRF) files with polars.

RRF: one record a line, fields separated by ``|``, a trailing ``|``, no header, no quoting
(``"`` is an ordinary character), UTF-8. Column lists are those of ``MRFILES.RRF``.

Scans are lazy and streaming. Each scan carries a row guard: a row whose shape is wrong
(a field lost or added shifts the ``SUPPRESS``/``TUI`` column off its value set) aborts the
query. On any read failure :func:`diagnose` re-reads the file in Python to name the first bad
line; this slow pass runs only on the error path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import polars as pl

from bali.io import BaliInputError, check_input_file

MRCONSO = [
    "CUI",
    "LAT",
    "TS",
    "LUI",
    "STT",
    "SUI",
    "ISPREF",
    "AUI",
    "SAUI",
    "SCUI",
    "SDUI",
    "SAB",
    "TTY",
    "CODE",
    "STR",
    "SRL",
    "SUPPRESS",
    "CVF",
]
MRREL = [
    "CUI1",
    "AUI1",
    "STYPE1",
    "REL",
    "CUI2",
    "AUI2",
    "STYPE2",
    "RELA",
    "RUI",
    "SRUI",
    "SAB",
    "SL",
    "RG",
    "DIR",
    "SUPPRESS",
    "CVF",
]
MRSTY = ["CUI", "TUI", "STN", "STY", "ATUI", "CVF"]

SUPPRESS_FLAGS = ("N", "O", "E", "Y")
_CUI = re.compile(r"C\d{7}")
_TUI = re.compile(r"T\d{3}")


def _row_checks(columns: tuple[str, ...] | list[str]) -> dict[str, Callable[[str], bool]]:
    """Per-column value checks that a shifted row fails (used by the Python diagnosis)."""
    checks: dict[str, Callable[[str], bool]] = {}
    for c in columns:
        if c in ("CUI", "CUI1", "CUI2"):
            checks[c] = lambda v: _CUI.fullmatch(v) is not None
        elif c == "SUPPRESS":
            checks[c] = lambda v: v in SUPPRESS_FLAGS
        elif c == "TUI":
            checks[c] = lambda v: _TUI.fullmatch(v) is not None
    return checks


# The row guard must see every row: with predicate pushdown polars may evaluate a cheaper
# filter first and drop a malformed row silently, so RRF queries run with it disabled.
QUERY_OPTS = pl.QueryOptFlags(predicate_pushdown=False)


def _guard_expr(columns: list[str]) -> pl.Expr:
    """True for well-formed rows; raises inside the query (strict cast) on a malformed one."""
    valid = pl.col("_trailing").is_null()
    if "SUPPRESS" in columns:
        valid &= pl.col("SUPPRESS").is_in(SUPPRESS_FLAGS).fill_null(False)
    if "TUI" in columns:  # T + 3 digits: a cheap shape check (the diagnosis uses regexes)
        valid &= ((pl.col("TUI").str.len_bytes() == 4) & pl.col("TUI").str.starts_with("T")
                  ).fill_null(False)
    for c in ("CUI", "CUI1", "CUI2"):  # C + 7 digits (MRREL's UInt32 cast checks the digits)
        if c in columns:
            valid &= ((pl.col(c).str.len_bytes() == 8) & pl.col(c).str.starts_with("C")
                      ).fill_null(False)
    return (
        pl.when(valid)
        .then(pl.lit("1"))
        .otherwise(pl.lit("malformed RRF row"))
        .cast(pl.UInt8, strict=True)
        == 1
    )


def scan_rrf(path: str | Path, columns: list[str]) -> pl.LazyFrame:
    """Lazy scan of one RRF file with all ``columns`` as strings (empty field -> null) and a
    row guard on the shape-revealing columns."""
    p = check_input_file(path)
    schema = {c: pl.String() for c in columns} | {"_trailing": pl.String()}
    lf = pl.scan_csv(
        p,
        separator="|",
        has_header=False,
        quote_char=None,
        schema=schema,
        encoding="utf8",
        low_memory=False,
    )
    return lf.filter(_guard_expr(columns)).drop("_trailing")  # collect with QUERY_OPTS


def diagnose(path: str | Path, columns: list[str]) -> BaliInputError | None:
    """Return an error naming the first bad line of an RRF file, or None if none is found.

    A line is bad when it is not UTF-8, does not have ``len(columns)`` fields plus the
    trailing ``|``, or a shape-revealing column (CUI, SUPPRESS, TUI) has an impossible value.
    """
    expected = len(columns) + 1
    checks = _row_checks(columns)
    index = {c: i for i, c in enumerate(columns)}
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                return BaliInputError(
                    path, f"bytes that are not UTF-8 at column {err.start + 1}", lineno
                )
            fields = line.split("|")
            if len(fields) != expected or fields[-1] != "":
                n = len(fields) - 1 if fields[-1] == "" else len(fields)
                return BaliInputError(
                    path,
                    f"expected {len(columns)} '|'-terminated fields, found {n}",
                    lineno,
                )
            for col, ok in checks.items():
                value = fields[index[col]]
                if not ok(value):
                    return BaliInputError(
                        path, f"field {col} has impossible value {value!r}", lineno
                    )
    return None


def explain_failure(err: Exception, files: dict[Path, list[str]]) -> BaliInputError:
    """Turn a polars failure while reading ``files`` into a one-line BaliInputError."""
    for path, columns in files.items():
        found = diagnose(path, columns)
        if found is not None:
            return found
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    names = ", ".join(p.name for p in files)
    return BaliInputError(next(iter(files)).parent, f"could not read {names}: {first}")
