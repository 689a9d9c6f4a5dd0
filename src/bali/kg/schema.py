"""The four KG tables every source writes (Parquet, one file each, in one directory).

concepts  cui: str (node id: UMLS CUI, else a CURIE such as ``HP:0000118``),
          preferred_name: str, semantic_types: list[str]
names     cui, name: str, source: str (SAB or ontology), term_type: str (TTY or OBO
          synonym scope), is_preferred: bool  -- unique on (cui, name)
edges     head, relation: str, relation_attr: str | null, tail, source: str
          -- read "head <relation_attr or relation> tail", e.g. (child, is_a, parent);
          unique on (head, relation, relation_attr, tail); no self-loops; both ends are concepts
xrefs     source: str (UMLS SAB style: MSH, OMIM, HPO, ...), code: str, cui: str
          -- external id -> node; unique on (source, code, cui)

All tables are sorted, so the same input gives byte-identical files.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    import pyarrow as pa

CONCEPTS = {
    "cui": pl.String(),
    "preferred_name": pl.String(),
    "semantic_types": pl.List(pl.String()),
}
NAMES = {
    "cui": pl.String(),
    "name": pl.String(),
    "source": pl.String(),
    "term_type": pl.String(),
    "is_preferred": pl.Boolean(),
}
EDGES = {
    "head": pl.String(),
    "relation": pl.String(),
    "relation_attr": pl.String(),
    "tail": pl.String(),
    "source": pl.String(),
}
XREFS = {"source": pl.String(), "code": pl.String(), "cui": pl.String()}

TABLES: dict[str, dict[str, pl.DataType]] = {
    "concepts": CONCEPTS,
    "names": NAMES,
    "edges": EDGES,
    "xrefs": XREFS,
}
SORT_KEYS = {
    "concepts": ["cui"],
    "names": ["cui", "name"],
    "edges": ["head", "relation", "relation_attr", "tail"],
    "xrefs": ["source", "code", "cui"],
}


@dataclass(frozen=True)
class ArrowSlices:
    """A table built one slice at a time as it is written (bounded memory): ``get(start,
    length)`` returns rows ``[start, start + length)`` as an Arrow table whose columns are
    those of ``schema`` (polars types), as ``DataFrame.to_arrow()`` would give them."""

    schema: dict[str, pl.DataType]
    num_rows: int
    get: Callable[[int, int], pa.Table]


Frame = pl.DataFrame | pl.LazyFrame | ArrowSlices


def table_paths(out_dir: str | Path) -> dict[str, Path]:
    """``{table: out_dir/<table>.parquet}`` for the four KG tables."""
    return {t: Path(out_dir) / f"{t}.parquet" for t in TABLES}


ROW_GROUP = 1 << 20  # rows per Parquet row group: fixed, so files are byte-identical
ZSTD_LEVEL = 1  # fast; KG tables are written once per build and read often


def write_table(frame: Frame, path: Path, row_group_size: int = ROW_GROUP,
                optimizations: pl.QueryOptFlags | None = None) -> int:
    """Write ``frame`` as zstd Parquet in row groups of ``row_group_size`` rows; returns rows.

    A DataFrame is written by polars. A LazyFrame or :class:`ArrowSlices` is written by
    pyarrow slice by slice (a LazyFrame slice is collected with ``optimizations`` and
    converted to Arrow), each slice one row group, which bounds memory and, unlike
    ``sink_parquet``, fixes the row-group boundaries, so the same input gives the same bytes.
    """
    if isinstance(frame, pl.DataFrame):
        frame.write_parquet(path, compression="zstd", compression_level=ZSTD_LEVEL,
                            statistics=True, row_group_size=row_group_size)
        return frame.height
    import pyarrow.parquet as pq

    if isinstance(frame, ArrowSlices):
        def chunks():
            # the next slice is built in a second thread while this one is encoded
            starts = range(0, max(frame.num_rows, 1), row_group_size)
            with ThreadPoolExecutor(1) as pool:
                ahead = pool.submit(frame.get, starts[0], row_group_size)
                for start in starts[1:]:
                    chunk, ahead = ahead.result(), pool.submit(frame.get, start, row_group_size)
                    yield chunk
                yield ahead.result()
    else:
        opts = {} if optimizations is None else {"optimizations": optimizations}

        def chunks():
            start = 0
            while True:
                chunk = frame.slice(start, row_group_size).collect(**opts).to_arrow()
                if chunk.num_rows or start == 0:
                    yield chunk
                start += chunk.num_rows
                if chunk.num_rows < row_group_size:
                    return

    rows, writer = 0, None
    try:
        for chunk in chunks():
            if writer is None:
                writer = pq.ParquetWriter(path, chunk.schema, compression="zstd",
                                          compression_level=ZSTD_LEVEL)
            writer.write_table(chunk, row_group_size=row_group_size)
            rows += chunk.num_rows
        return rows
    finally:
        if writer is not None:
            writer.close()


def write_kg(
    tables: dict[str, Frame | Callable[[], Frame]],
    out_dir: str | Path,
    presorted: tuple[str, ...] = (),
    optimizations: pl.QueryOptFlags | None = None,
    row_group_size: int = ROW_GROUP,
) -> dict[str, int]:
    """Sort, type-check and write the four tables into ``out_dir`` all-or-nothing, each in
    its own thread; returns ``{table: row count}``.

    A table may be given as a function that builds it: it runs in the table's writer thread,
    so building one table overlaps writing another. Tables named in ``presorted`` are
    already in ``SORT_KEYS`` order (a cheaper integer sort upstream) and are not sorted
    again; :class:`ArrowSlices` must be. LazyFrames (meant for frames backed by memory) and
    ArrowSlices are written slice by slice (see :func:`write_table`).
    """
    from bali.io import atomic_paths, check_schema

    if set(tables) != set(TABLES):
        raise ValueError(f"write_kg needs tables {sorted(TABLES)}, got {sorted(tables)}")
    paths = table_paths(out_dir)

    def write(name: str, path: Path, tmp: Path) -> int:
        frame = tables[name]
        frame = frame() if callable(frame) else frame
        if isinstance(frame, ArrowSlices):
            if list(frame.schema) != list(TABLES[name]):
                raise ValueError(f"{name}: columns {list(frame.schema)}, expected "
                                 f"{list(TABLES[name])}")
            schema = frame.schema
        else:
            frame = frame.select(list(TABLES[name]))
            schema = frame.collect_schema()
            if name not in presorted:
                frame = frame.sort(SORT_KEYS[name], nulls_last=False)
        check_schema(path, TABLES[name], schema)
        return write_table(frame, tmp, row_group_size, optimizations)

    with atomic_paths(*paths.values()) as tmps, ThreadPoolExecutor(len(paths)) as pool:
        # polars and pyarrow release the GIL: the builds, sorts and writes overlap on the cores
        futures = {name: pool.submit(write, name, path, tmp)
                   for (name, path), tmp in zip(paths.items(), tmps, strict=True)}
        return {name: future.result() for name, future in futures.items()}
