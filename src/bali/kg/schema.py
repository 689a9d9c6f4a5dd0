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

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

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


def table_paths(out_dir: str | Path) -> dict[str, Path]:
    """``{table: out_dir/<table>.parquet}`` for the four KG tables."""
    return {t: Path(out_dir) / f"{t}.parquet" for t in TABLES}


ROW_GROUP = 1 << 20  # rows per Parquet row group: fixed, so files are byte-identical
ZSTD_LEVEL = 1  # fast; KG tables are written once per build and read often


def write_table(frame: pl.DataFrame | pl.LazyFrame, path: Path, row_group_size: int = ROW_GROUP,
                optimizations: pl.QueryOptFlags | None = None) -> int:
    """Write ``frame`` as zstd Parquet in row groups of ``row_group_size`` rows; returns rows.

    A LazyFrame is written slice by slice (each slice collected, converted and appended as
    one row group), which bounds memory and, unlike ``sink_parquet``, fixes the row-group
    boundaries, so the same input gives the same bytes.
    """
    if isinstance(frame, pl.DataFrame):
        frame.write_parquet(path, compression="zstd", compression_level=ZSTD_LEVEL,
                            statistics=True, row_group_size=row_group_size)
        return frame.height
    import pyarrow.parquet as pq

    opts = {} if optimizations is None else {"optimizations": optimizations}
    rows, writer = 0, None
    try:
        while True:
            chunk = frame.slice(rows, row_group_size).collect(**opts).to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, chunk.schema, compression="zstd",
                                          compression_level=ZSTD_LEVEL)
            if chunk.num_rows or rows == 0:
                writer.write_table(chunk, row_group_size=row_group_size)
            rows += chunk.num_rows
            if chunk.num_rows < row_group_size:
                return rows
    finally:
        if writer is not None:
            writer.close()


def write_kg(
    tables: dict[str, pl.DataFrame | pl.LazyFrame],
    out_dir: str | Path,
    presorted: tuple[str, ...] = (),
    optimizations: pl.QueryOptFlags | None = None,
    row_group_size: int = ROW_GROUP,
) -> dict[str, int]:
    """Sort, type-check and write the four tables into ``out_dir`` all-or-nothing.

    Tables named in ``presorted`` are already in ``SORT_KEYS`` order (a cheaper integer sort
    upstream) and are not sorted again. LazyFrames (meant for frames backed by memory, such
    as the UMLS edges whose string columns are rebuilt while writing) are written slice by
    slice with ``optimizations``. Returns ``{table: row count}``.
    """
    from bali.io import atomic_paths, check_schema

    if set(tables) != set(TABLES):
        raise ValueError(f"write_kg needs tables {sorted(TABLES)}, got {sorted(tables)}")
    paths = table_paths(out_dir)

    def write(name: str, path: Path, tmp: Path) -> int:
        frame = tables[name].select(list(TABLES[name]))
        if name not in presorted:
            frame = frame.sort(SORT_KEYS[name], nulls_last=False)
        check_schema(path, TABLES[name], frame.collect_schema())
        return write_table(frame, tmp, row_group_size, optimizations)

    with atomic_paths(*paths.values()) as tmps, ThreadPoolExecutor(len(paths)) as pool:
        # polars releases the GIL: the four sorts and writes overlap on the cores
        futures = {name: pool.submit(write, name, path, tmp)
                   for (name, path), tmp in zip(paths.items(), tmps, strict=True)}
        return {name: future.result() for name, future in futures.items()}
