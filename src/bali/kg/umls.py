"""UMLS META directory (MRCONSO, MRREL, MRSTY .RRF) -> KG tables.

Semantics (all filters are options of :class:`UmlsOptions`):

- names: MRCONSO rows with LAT in ``languages``, SAB passing include/exclude, SUPPRESS not in
  {O, E, Y} unless ``keep_suppressed``. One row per (CUI, STR); when several atoms share a
  string, the best-ranked atom gives source/term_type. Rank: TS=P, then STT=PF, then
  ISPREF=Y, then AUI (ascending).
- concepts: CUIs with at least one name; ``preferred_name`` is the best-ranked atom's STR;
  ``semantic_types`` the sorted STY names from MRSTY.
- edges: MRREL rows passing SAB/SUPPRESS/REL/RELA filters, both CUIs concepts, no
  self-loops. UMLS reads ``REL``/``RELA`` as "CUI2 <RELA> CUI1" (e.g. RELA=isa: CUI2 is a
  CUI1), so ``head=CUI2, tail=CUI1``. One row per (head, REL, RELA, tail); ``source`` is the
  alphabetically first SAB asserting it. Directed as UMLS lists them: UMLS ships the inverse
  row (PAR/CHD, RB/RN, inverse RELA) itself.
- xrefs: distinct (SAB, CODE, CUI) of the kept names, CODE ``NOCODE`` skipped.

CUIs are handled as UInt32 (``C0000005`` -> 5) inside the edge query to keep 80M-row MRREL
within a few GB.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from bali.io import BaliInputError
from bali.kg import rrf
from bali.kg.schema import write_kg

log = logging.getLogger(__name__)

HIDDEN_SUPPRESS = ("O", "E", "Y")


@dataclass(frozen=True)
class UmlsOptions:
    """Filters for :func:`build_umls`. Empty include lists mean "all"."""

    languages: tuple[str, ...] = field(
        default=("ENG",), metadata={"help": "MRCONSO LAT values to keep"})
    sab_include: tuple[str, ...] = field(
        default=(), metadata={"help": "source vocabularies (SAB) to keep; empty = all"})
    sab_exclude: tuple[str, ...] = field(
        default=(), metadata={"help": "source vocabularies (SAB) to drop"})
    keep_suppressed: bool = field(
        default=False, metadata={"help": "keep rows with SUPPRESS in {O, E, Y}"})
    rel_include: tuple[str, ...] = field(
        default=(), metadata={"help": "MRREL REL values to keep; empty = all"})
    rel_exclude: tuple[str, ...] = field(
        default=(), metadata={"help": "MRREL REL values to drop (e.g. SIB)"})
    rela_include: tuple[str, ...] = field(
        default=(), metadata={"help": "MRREL RELA values to keep; empty = all"})
    rela_exclude: tuple[str, ...] = field(
        default=(), metadata={"help": "MRREL RELA values to drop"})

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


def _int_to_cui(col: str) -> pl.Expr:
    return (pl.lit("C") + pl.col(col).cast(pl.String).str.zfill(7)).alias(col)


def meta_files(meta_dir: str | Path) -> dict[str, Path]:
    """Locate MRCONSO/MRREL/MRSTY in ``meta_dir`` (a UMLS ``META`` directory)."""
    d = Path(meta_dir)
    if not d.is_dir():
        raise BaliInputError(d, "UMLS META directory not found")
    return {name: d / f"{name}.RRF" for name in ("MRCONSO", "MRREL", "MRSTY")}


def _names_frame(conso: pl.LazyFrame, opts: UmlsOptions) -> pl.LazyFrame:
    """Filtered MRCONSO atoms, best-ranked first within each CUI."""
    return (
        conso.filter(pl.col("LAT").is_in(opts.languages) & _common_filters(opts))
        .select("CUI", "STR", "SAB", "TTY", "CODE", "TS", "STT", "ISPREF", "AUI")
        .sort(
            [
                "CUI",
                pl.col("TS") != "P",
                pl.col("STT") != "PF",
                pl.col("ISPREF") != "Y",
                "AUI",
            ]
        )
    )


def build_umls(meta_dir: str | Path, out_dir: str | Path, opts: UmlsOptions) -> dict[str, int]:
    """Build the KG tables from a UMLS META directory; returns row counts per table."""
    files = meta_files(meta_dir)
    columns = {files["MRCONSO"]: rrf.MRCONSO, files["MRREL"]: rrf.MRREL, files["MRSTY"]: rrf.MRSTY}
    t0 = time.perf_counter()
    try:
        conso = rrf.scan_rrf(files["MRCONSO"], rrf.MRCONSO)
        atoms = _names_frame(conso, opts).collect(engine="streaming", optimizations=rrf.QUERY_OPTS)
        log.info("MRCONSO: %d atoms kept (%.1fs)", atoms.height, time.perf_counter() - t0)
        if atoms.height == 0:
            raise BaliInputError(files["MRCONSO"], "no names left after the language/source "
                                 f"filters (languages={list(opts.languages)})")
        names = atoms.unique(["CUI", "STR"], keep="first", maintain_order=True)
        best = names.unique("CUI", keep="first", maintain_order=True).select("CUI", "STR")
        sty = (
            rrf.scan_rrf(files["MRSTY"], rrf.MRSTY)
            .select("CUI", "STY")
            .unique()
            .group_by("CUI")
            .agg(pl.col("STY").sort().alias("semantic_types"))
            .collect(engine="streaming", optimizations=rrf.QUERY_OPTS)
        )
        concepts = (
            best.join(sty, on="CUI", how="left")
            .select(
                pl.col("CUI").alias("cui"),
                pl.col("STR").alias("preferred_name"),
                pl.col("semantic_types").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            )
        )
        names_out = names.join(best.rename({"STR": "PREF"}), on="CUI").select(
            pl.col("CUI").alias("cui"),
            pl.col("STR").alias("name"),
            pl.col("SAB").alias("source"),
            pl.col("TTY").alias("term_type"),
            (pl.col("STR") == pl.col("PREF")).alias("is_preferred"),
        )
        xrefs = (
            atoms.filter(pl.col("CODE").is_not_null() & (pl.col("CODE") != "NOCODE"))
            .select(pl.col("SAB").alias("source"), pl.col("CODE").alias("code"),
                    pl.col("CUI").alias("cui"))
            .unique()
        )
        del atoms
        node_ids = concepts.select(_cui_to_int("cui")).to_series()
        edges = _edges_query(files["MRREL"], opts, node_ids)
        counts = write_kg(
            {"concepts": concepts, "names": names_out, "edges": edges, "xrefs": xrefs},
            out_dir,
            presorted=("edges",),
            optimizations=rrf.QUERY_OPTS,
        )
    except pl.exceptions.PolarsError as err:
        raise rrf.explain_failure(err, columns) from err
    log.info("KG written to %s: %s (%.1fs)", out_dir, counts, time.perf_counter() - t0)
    return counts


def _edges_query(mrrel: Path, opts: UmlsOptions, node_ids: pl.Series) -> pl.LazyFrame:
    """Lazy MRREL -> edges query (streams; dedupes on integer CUIs)."""
    rel_filter = _in_out("REL", opts.rel_include, opts.rel_exclude) & _in_out(
        "RELA", opts.rela_include, opts.rela_exclude
    )
    return (
        rrf.scan_rrf(mrrel, rrf.MRREL)
        .filter(_common_filters(opts) & rel_filter)
        .select(
            _cui_to_int("CUI2").alias("head"),
            pl.col("REL").alias("relation"),
            pl.col("RELA").alias("relation_attr"),
            _cui_to_int("CUI1").alias("tail"),
            pl.col("SAB").alias("source"),
        )
        .filter(
            (pl.col("head") != pl.col("tail"))
            & pl.col("head").is_in(node_ids.implode())
            & pl.col("tail").is_in(node_ids.implode())
        )
        .group_by("head", "relation", "relation_attr", "tail")
        .agg(pl.col("source").min())
        .sort("head", "relation", "relation_attr", "tail", nulls_last=False)
        .with_columns(_int_to_cui("head"), _int_to_cui("tail"))
    )
