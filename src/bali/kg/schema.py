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


def write_kg(
    tables: dict[str, pl.DataFrame | pl.LazyFrame],
    out_dir: str | Path,
    presorted: tuple[str, ...] = (),
    optimizations: pl.QueryOptFlags | None = None,
) -> dict[str, int]:
    """Sort, type-check and write the four tables into ``out_dir`` all-or-nothing.

    Tables named in ``presorted`` are already in ``SORT_KEYS`` order (a cheaper integer sort
    upstream) and are not sorted again. LazyFrames are streamed to disk (``sink_parquet``).
    ``optimizations`` is passed to the sink of LazyFrames. Returns ``{table: row count}``.
    """
    sink_opts = {} if optimizations is None else {"optimizations": optimizations}
    from bali.io import atomic_paths, check_schema

    if set(tables) != set(TABLES):
        raise ValueError(f"write_kg needs tables {sorted(TABLES)}, got {sorted(tables)}")
    paths = table_paths(out_dir)
    counts: dict[str, int] = {}
    with atomic_paths(*paths.values()) as tmps:
        for (name, path), tmp in zip(paths.items(), tmps, strict=True):
            frame = tables[name].select(list(TABLES[name]))
            if name not in presorted:
                frame = frame.sort(SORT_KEYS[name], nulls_last=False)
            check_schema(path, TABLES[name], frame.collect_schema())
            if isinstance(frame, pl.LazyFrame):
                frame.sink_parquet(
                    tmp, compression="zstd", statistics=True, engine="streaming", **sink_opts
                )
            else:
                frame.write_parquet(tmp, compression="zstd", statistics=True)
            counts[name] = pl.scan_parquet(tmp).select(pl.len()).collect().item()
    return counts
