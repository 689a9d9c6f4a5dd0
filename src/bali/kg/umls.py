"""UMLS META directory (MRCONSO, MRREL, MRSTY .RRF) -> KG tables.

Semantics (all filters are options of :class:`UmlsOptions`):

- names: MRCONSO rows with LAT in ``languages``, SAB passing include/exclude, SUPPRESS not in
  {O, E, Y} unless ``keep_suppressed``. One row per (CUI, STR); when several atoms share a
  string, the best-ranked atom gives source/term_type. Rank: TS=P, then STT=PF, then
  ISPREF=Y, then AUI (ascending).
- concepts: CUIs with at least one name; ``preferred_name`` is the best-ranked atom's STR;
  ``semantic_types`` the sorted STY names from MRSTY.
- edges: MRREL rows passing SAB/SUPPRESS/REL/RELA filters, both CUIs concepts, no
  self-loops (rows dropped for either are counted in the stats). UMLS reads
  ``REL``/``RELA`` as "CUI2 <RELA> CUI1" (e.g. RELA=isa: CUI2 is a CUI1), so ``head=CUI2,
  tail=CUI1``. One row per (head, REL, RELA, tail); ``source`` is the alphabetically first
  SAB asserting it. Directed as UMLS lists them: UMLS ships the inverse
  row (PAR/CHD, RB/RN, inverse RELA) itself.
- xrefs: distinct (SAB, CODE, CUI) of the kept names, CODE ``NOCODE`` skipped.

Speed and memory: CUIs are handled as UInt32 (``C0000005`` -> 5) and REL/RELA/SAB as
Categorical inside the edge query; every dedupe is a sort plus a comparison with the row
before (no hash group-by), mostly on integer keys: MRCONSO atoms on ``CUI * 27 + rank``
then AUI, edges on one packed UInt64 (:mod:`bali.kg.umls_edges`). Every table comes out sorted,
and the edge strings are built one row group at a time as they are written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from bali.io import BaliInputError
from bali.kg import rrf
from bali.kg.options import UmlsOptions
from bali.kg.schema import ArrowSlices, write_kg
from bali.kg.sorted_runs import new_run
from bali.kg.umls_edges import EDGES_ARROW, PACKED_KEY_MAX, PAIR_TABLE_MAX, dedupe_edges

__all__ = ["EDGES_ARROW", "HIDDEN_SUPPRESS", "PACKED_KEY_MAX", "PAIR_TABLE_MAX", "UmlsOptions",
           "build_umls", "meta_files"]

log = logging.getLogger(__name__)

HIDDEN_SUPPRESS = ("O", "E", "Y")


def _in_out(col: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> pl.Expr:
    """Row filter: ``col`` in include (if any) and not in exclude. Nulls pass only if no
    include list is given."""
    expr = pl.lit(True)
    if include:
        expr &= pl.col(col).is_in(include).fill_null(False)
    if exclude:
        expr &= ~pl.col(col).is_in(exclude).fill_null(False)
    return expr


def _common_filters(opts: UmlsOptions) -> pl.Expr:
    expr = _in_out("SAB", opts.sab_include, opts.sab_exclude)
    if not opts.keep_suppressed:
        expr &= ~pl.col("SUPPRESS").is_in(HIDDEN_SUPPRESS)
    return expr


def _cui_to_int(col: str) -> pl.Expr:
    return pl.col(col).str.slice(1).cast(pl.UInt32, strict=True)


def meta_files(meta_dir: str | Path) -> dict[str, Path]:
    """Locate MRCONSO/MRREL/MRSTY in ``meta_dir`` (a UMLS ``META`` directory)."""
    d = Path(meta_dir)
    if not d.is_dir():
        raise BaliInputError(d, "UMLS META directory not found")
    return {name: d / f"{name}.RRF" for name in ("MRCONSO", "MRREL", "MRSTY")}


def _rank_key(col: str, best: str) -> pl.Expr:
    """0 for null, 1 for ``best``, 2 otherwise: the order in which polars sorts
    ``col != best`` (nulls first)."""
    return ((pl.col(col) != best).cast(pl.UInt32) + 1).fill_null(0)


def _atoms(conso: pl.LazyFrame, opts: UmlsOptions) -> pl.DataFrame:
    """Filtered MRCONSO atoms (id = CUI as UInt32, CUI, STR, SAB, TTY, CODE), best-ranked
    first within each CUI: sorted on ``id * 27 + rank`` (rank = TS=P, STT=PF, ISPREF=Y as
    three base-3 digits, < 27, so the key fits a UInt32), then AUI."""
    key = (_cui_to_int("CUI") * 27 + _rank_key("TS", "P") * 9 + _rank_key("STT", "PF") * 3
           + _rank_key("ISPREF", "Y"))
    return (
        conso.filter(pl.col("LAT").is_in(opts.languages) & _common_filters(opts))
        .select(key.alias("key"), "AUI", "CUI", "STR", "SAB", "TTY", "CODE")
        .collect(engine="streaming", optimizations=rrf.QUERY_OPTS)
        .sort("key", "AUI", maintain_order=True)
        .select((pl.col("key") // 27).alias("id"), "CUI", "STR", "SAB", "TTY", "CODE")
    )


def _names(atoms: pl.DataFrame, best: pl.DataFrame) -> pl.DataFrame:
    """One row per (CUI, STR) from its best-ranked atom, sorted by (cui, name): a sort on
    (id, STR, atom order) keeps the first row of each (id, STR) run."""
    names = (
        atoms.with_row_index("order")
        .sort("id", "STR", "order")
        .filter(new_run("id", "STR"))
    )
    # names and best are both sorted by id and hold the same ids: the preferred name of a
    # row is best's STR at the number of ids seen so far
    pref = best["STR"].gather(names.select(new_run("id").cum_sum() - 1).to_series())
    return names.select(
        pl.col("CUI").alias("cui"),
        pl.col("STR").alias("name"),
        pl.col("SAB").alias("source"),
        pl.col("TTY").alias("term_type"),
        (pl.col("STR") == pref).alias("is_preferred"),
    )


def _xrefs(atoms: pl.DataFrame) -> pl.DataFrame:
    """Distinct (source, code, cui), CODE NOCODE skipped, sorted so. One sort on a struct
    of the three (row-encoded: much cheaper than a multi-column sort whose first key, SAB,
    has few values), then the first row of each run."""
    return (
        atoms.filter(pl.col("CODE").is_not_null() & (pl.col("CODE") != "NOCODE"))
        .select(pl.col("SAB").alias("source"), pl.col("CODE").alias("code"),
                pl.col("CUI").alias("cui"), "id")
        .sort(pl.struct("source", "code", "id"))
        .filter(new_run("source", "code", "id"))
        .drop("id")
    )


def _concepts(best: pl.DataFrame, mrsty: pl.LazyFrame) -> pl.DataFrame:
    """Concepts in CUI order, with the sorted distinct STY names of each from MRSTY."""
    sty = (
        mrsty.select("CUI", "STY")
        .collect(engine="streaming", optimizations=rrf.QUERY_OPTS)
        # one sort (cheap: MRSTY comes sorted by CUI), distinct rows, then lists in row
        # order: much cheaper than a hash unique, which loses that order, or list sorts
        .sort("CUI", "STY")
        .filter(new_run("CUI", "STY"))
        .group_by("CUI", maintain_order=True)
        .agg(pl.col("STY").alias("semantic_types"))
    )
    return best.join(sty, on="CUI", how="left", maintain_order="left").select(
        pl.col("CUI").alias("cui"),
        pl.col("STR").alias("preferred_name"),
        pl.col("semantic_types").fill_null(pl.lit([], dtype=pl.List(pl.String))),
    )


def build_umls(meta_dir: str | Path, out_dir: str | Path, opts: UmlsOptions) -> dict[str, int]:
    """Build the KG tables from a UMLS META directory; returns row counts per table plus
    the MRREL rows dropped (``edges_unknown_end_dropped``, ``self_loops_dropped``).

    Order of work: MRCONSO atoms (sorted by CUI and rank); then names, xrefs and concepts
    are derived from them in threads while MRREL is read and deduplicated (which needs the
    concept ids); then the four tables are written, each in its own thread.
    """
    files = meta_files(meta_dir)
    columns = {files["MRCONSO"]: rrf.MRCONSO, files["MRREL"]: rrf.MRREL, files["MRSTY"]: rrf.MRSTY}
    t0 = time.perf_counter()
    try:
        conso = rrf.scan_rrf(files["MRCONSO"], rrf.MRCONSO)
        mrrel = rrf.scan_rrf(files["MRREL"], rrf.MRREL)
        mrsty = rrf.scan_rrf(files["MRSTY"], rrf.MRSTY)
        atoms = _atoms(conso, opts)
        log.info("MRCONSO: %d atoms kept (%.1fs)", atoms.height, time.perf_counter() - t0)
        if atoms.height == 0:
            raise BaliInputError(files["MRCONSO"], "no names left after the language/source "
                                 f"filters (languages={list(opts.languages)})")
        best = atoms.filter(new_run("id")).select("id", "CUI", "STR")
        # names, xrefs and concepts are derived in threads while MRREL is read and deduped
        with ThreadPoolExecutor(3) as pool:
            tables = {"concepts": pool.submit(_concepts, best, mrsty).result,
                      "names": pool.submit(_names, atoms, best).result,
                      "xrefs": pool.submit(_xrefs, atoms).result}
            tables["edges"], dropped = _edges_table(mrrel, opts, best["id"])
            counts = write_kg(
                tables,
                out_dir,
                # concepts are in order too, but the sort (cheap) gives them one chunk, as
                # the polars writer's page layout, hence the bytes, depend on the chunks
                presorted=("names", "edges", "xrefs"),
                optimizations=rrf.QUERY_OPTS,
            )
    except pl.exceptions.PolarsError as err:
        raise rrf.explain_failure(err, columns) from err
    log.info("KG written to %s: %s (%.1fs)", out_dir, counts, time.perf_counter() - t0)
    return counts | dropped


def _edges_table(mrrel: pl.LazyFrame, opts: UmlsOptions,
                 node_ids: pl.Series) -> tuple[ArrowSlices, dict[str, int]]:
    """MRREL -> edges (see :func:`~bali.kg.umls_edges.dedupe_edges`) and the counts of rows
    passing the filters but dropped: ``self_loops_dropped`` (CUI1 = CUI2) and
    ``edges_unknown_end_dropped`` (the other rows naming a CUI that is not a concept: absent
    from MRCONSO or without a kept name). The scan keeps CUIs as UInt32 and REL, RELA and SAB
    as Categorical (own Categories each), so the kept rows take ~20 bytes; the counts come
    from the same pass."""
    t0 = time.perf_counter()
    rel_filter = _in_out("REL", opts.rel_include, opts.rel_exclude) & _in_out(
        "RELA", opts.rela_include, opts.rela_exclude
    )
    cats = {c: pl.Categories.random() for c in ("relation", "relation_attr", "source")}
    rows = mrrel.filter(_common_filters(opts) & rel_filter).select(
        _cui_to_int("CUI2").alias("head"),
        pl.col("REL").alias("relation"),
        pl.col("RELA").alias("relation_attr"),
        _cui_to_int("CUI1").alias("tail"),
        pl.col("SAB").alias("source"),
    )
    seen: dict[str, list[int]] = {"rows": [], "no_loop": []}  # batch heights (append: atomic)

    def count(key: str) -> Callable[[pl.DataFrame], pl.DataFrame]:
        def pass_through(batch: pl.DataFrame) -> pl.DataFrame:
            seen[key].append(batch.height)
            return batch
        return pass_through

    # the counts come from this one pass: a second query would read MRREL again (and
    # collect_all's shared scan pushes the filters below the row guard)
    query = (
        rows.map_batches(count("rows"), streamable=True, schema=rows.collect_schema())
        .filter(pl.col("head") != pl.col("tail"))
        .map_batches(count("no_loop"), streamable=True, schema=rows.collect_schema())
        .filter(pl.col("head").is_in(node_ids.implode())
                & pl.col("tail").is_in(node_ids.implode()))
        .with_columns(pl.col(c).cast(pl.Categorical(cats[c])) for c in cats)  # kept rows only
    )
    kept = query.collect(engine="streaming", optimizations=rrf.QUERY_OPTS)
    n_rows, n_no_loop = sum(seen["rows"]), sum(seen["no_loop"])
    counts = {"self_loops_dropped": n_rows - n_no_loop,
              "edges_unknown_end_dropped": n_no_loop - kept.height}
    edges = dedupe_edges(kept, cats, node_ids.to_numpy())
    log.info("MRREL: %d edges, %s (%.1fs)", edges.num_rows, counts, time.perf_counter() - t0)
    return edges, counts
