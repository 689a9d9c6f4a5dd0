"""File contracts shared by every stage: one-line input errors, atomic writes, checked reads.

A stage never leaves a partial output: it writes ``name.tmp-<pid>`` beside the target and
renames it into place only after the whole write succeeded (``os.replace`` is atomic on one
file system). A reader checks the columns and types of a table and fails with one line that
names the file and what is wrong.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import polars as pl

from bali.errors import BaliInputError  # noqa: F401  (raised here; its home: bali.errors)


def check_input_file(path: str | os.PathLike, *, allow_empty: bool = False) -> Path:
    """Return ``path`` as a Path if it is a readable, non-empty regular file, else raise."""
    p = Path(path)
    if not p.exists():
        raise BaliInputError(p, "file not found")
    if not p.is_file():
        raise BaliInputError(p, "not a regular file")
    if not allow_empty and p.stat().st_size == 0:
        raise BaliInputError(p, "file is empty")
    return p


def first_non_utf8_line(path: str | os.PathLike) -> int | None:
    """1-based number of the first line that is not valid UTF-8, or None. Streams the file."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return lineno
    return None


def json_object(path: str | os.PathLike, line: str, lineno: int) -> dict:
    """One JSON-lines record: ``line`` parsed as a JSON object, else a BaliInputError naming
    ``path`` and ``lineno``."""
    import json

    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise BaliInputError(path, f"invalid JSON line: {err.msg}", lineno) from None
    if not isinstance(obj, dict):
        raise BaliInputError(path, "expected a JSON object", lineno)
    return obj


def json_objects(path: str | os.PathLike, lines: Iterable[str]) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` of the non-blank lines of a JSON-lines stream."""
    for lineno, line in enumerate(lines, start=1):
        if line.strip():
            yield lineno, json_object(path, line, lineno)


def _tmp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_paths(*targets: str | os.PathLike) -> Iterator[list[Path]]:
    """Yield temporary paths for ``targets``; rename all into place only if the block succeeds.

    On any exception every temporary file is removed and no target is touched.
    """
    finals = [Path(t) for t in targets]
    tmps = [_tmp_name(t) for t in finals]
    for f in finals:
        f.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmps
        for tmp, final in zip(tmps, finals, strict=True):
            if not tmp.exists():
                raise RuntimeError(f"{final}: writer produced no output")
        for tmp, final in zip(tmps, finals, strict=True):
            os.replace(tmp, final)
    except BaseException:
        for tmp in tmps:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        raise


def write_parquet(df: pl.DataFrame, path: str | os.PathLike) -> None:
    """Write one DataFrame atomically (zstd-compressed Parquet)."""
    with atomic_paths(path) as (tmp,):
        df.write_parquet(tmp, compression="zstd", statistics=True)


def check_schema(
    path: str | os.PathLike, schema: Mapping[str, pl.DataType], actual: Mapping[str, pl.DataType]
) -> None:
    """Raise a one-line BaliInputError if ``actual`` lacks a column of ``schema`` or has the
    wrong type for it. Extra columns are allowed."""
    missing = [c for c in schema if c not in actual]
    if missing:
        raise BaliInputError(path, f"missing column(s) {', '.join(missing)}")
    wrong = [f"{c} is {actual[c]}, expected {t}" for c, t in schema.items() if actual[c] != t]
    if wrong:
        raise BaliInputError(path, "wrong column type: " + "; ".join(wrong))


def scan_table(path: str | os.PathLike, schema: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    """Lazily scan a Parquet table after checking its columns against ``schema``."""
    p = check_input_file(path)
    try:
        actual = pl.read_parquet_schema(p)
    except Exception as err:  # noqa: BLE001 - any reader failure is a bad file
        raise BaliInputError(p, f"not a readable Parquet file ({err.__class__.__name__})") from err
    check_schema(p, schema, actual)
    return pl.scan_parquet(p).select(list(schema))


def read_table(path: str | os.PathLike, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Eagerly read a Parquet table checked against ``schema`` (only its columns)."""
    return scan_table(path, schema).collect()


def write_stats(path: str | os.PathLike, stats: dict) -> None:
    """Write a stage's statistics JSON atomically (sorted keys, indented)."""
    import json

    with atomic_paths(path) as (tmp,):
        tmp.write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")


def owned(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with its string columns copied into buffers of their own. Polars' strings are
    views: a few rows filtered out of a large frame keep all of its string data alive, so a
    loop that keeps small results of many large frames (the sampling merge) grows with them."""
    import pyarrow as pa

    table = df.to_arrow()
    schema = pa.schema([pa.field(f.name, pa.large_string())
                        if pa.types.is_string_view(f.type) or pa.types.is_string(f.type)
                        or pa.types.is_large_string(f.type) else f for f in table.schema])
    return pl.from_arrow(table.cast(schema)).cast(dict(df.schema))
