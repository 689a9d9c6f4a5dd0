"""Map annotator ids to KG nodes through the KG ``xrefs`` table.

An id is split by :func:`bali.kg.prefixes.split_curie` into the UMLS-style (source, code)
of the xrefs table: BERN2's ``mesh:D003920``/``MESH:D003920`` -> (MSH, D003920),
``mim:``/``OMIM:`` -> OMIM, ``NCBITaxon:``/``NCBI:txid`` -> NCBI, ``NCBIGene:``/
``EntrezGene:`` -> NCBIGENE, ``CHEBI:``, ``CL:``, ``cellosaurus:``/bare ``CVCL_…`` -> CVCL.
``UMLS:C…`` ids and ids that are node ids themselves map as they are. A mention keeps every
node any of its ids maps to (one row each); a mention with none keeps one row with a null
``cui`` unless ``drop_unmapped``. The report counts, per id prefix, the mentions with an id
of that prefix that were mapped and unmapped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from bali.kg.prefixes import split_curie
from bali.text.schema import MENTIONS


@dataclass(frozen=True)
class NormalizeOptions:
    """Options of :func:`normalize_mentions`."""

    drop_unmapped: bool = field(
        default=False, metadata={"help": "drop mentions none of whose ids maps to a KG node"})
    entity_types: tuple[str, ...] = field(
        default=(), metadata={"help": "keep only these entity types; empty = all"})


def id_key(raw_id: str) -> tuple[str, str] | None:
    """(source, code) of an annotator id, or None for ``CUI-less`` and unparsable ids."""
    if raw_id.upper().startswith("CVCL_"):
        return ("CVCL", raw_id)
    if raw_id == "CUI-less":
        return None
    return split_curie(raw_id)


def _prefix(raw_id: str) -> str:
    """The id's prefix as written (``mesh``, ``MESH``, ``NCBITaxon``; ``CUI-less`` for BERN2's
    unnormalised mentions); ``<none>`` if absent."""
    if raw_id.upper().startswith("CVCL_") or raw_id == "CUI-less":
        return "CVCL" if raw_id != "CUI-less" else raw_id
    prefix, sep, _ = raw_id.partition(":")
    return prefix if sep and prefix else "<none>"


def _id_lookup(distinct: list[str]) -> pl.DataFrame:
    """One row per distinct raw id: (raw_id, source, code, prefix) from :func:`id_key` and
    :func:`_prefix` (source and code null when the id does not parse)."""
    keys = [id_key(i) for i in distinct]
    return pl.DataFrame(
        {"raw_id": distinct, "source": [k[0] if k else None for k in keys],
         "code": [k[1] if k else None for k in keys],
         "prefix": [_prefix(i) for i in distinct]},
        schema={"raw_id": pl.String, "source": pl.String, "code": pl.String,
                "prefix": pl.String},
    )


def _id_to_cui(lookup: pl.DataFrame, xrefs: pl.DataFrame, concepts: pl.DataFrame
               ) -> pl.DataFrame:
    """Distinct (raw_id, cui) pairs: an id that names a node (``UMLS:C…`` or a node CURIE)
    maps to it alone; the others to every node their (source, code) xrefs name."""
    nodes = concepts.select("cui")
    direct = pl.concat([
        lookup.filter(pl.col("source") == "UMLS").select("raw_id", cui=pl.col("code")),
        lookup.select("raw_id", cui=pl.col("raw_id")),
    ]).join(nodes, on="cui", how="semi")
    via_xref = (
        lookup.join(direct, on="raw_id", how="anti")
        .join(xrefs.select("source", "code", "cui"), on=["source", "code"])
        .join(nodes, on="cui", how="semi")
        .select("raw_id", "cui")
    )
    return pl.concat([direct, via_xref]).unique()


def _by_prefix(all_ids: pl.DataFrame, lookup: pl.DataFrame, mapped: pl.DataFrame) -> dict:
    """``{prefix: {"mapped": n, "unmapped": n}}``: per id prefix, the mentions with an id of
    that prefix that were mapped (any id) and not, sorted by prefix."""
    per_prefix = (
        all_ids.join(lookup.select("raw_id", "prefix"), on="raw_id")
        .select("_m", "prefix").unique()
        .join(mapped.with_columns(mapped=pl.lit(True)), on="_m", how="left")
        .with_columns(pl.col("mapped").fill_null(False))
        .group_by("prefix")
        .agg(mapped=pl.col("mapped").sum(), unmapped=(~pl.col("mapped")).sum())
        .sort("prefix")
    )
    return {p: {"mapped": m, "unmapped": u} for p, m, u in per_prefix.iter_rows()}


def normalize_mentions(
    raw: pl.DataFrame, xrefs: pl.DataFrame, concepts: pl.DataFrame, opts: NormalizeOptions
) -> tuple[pl.DataFrame, dict]:
    """Set ``cui`` of ``raw`` mentions (rows whose ``cui`` is already set pass through).

    Returns (mentions, report) with ``report = {"mentions": n, "mapped": n, "unmapped": n,
    "rows": n, "by_prefix": {prefix: {"mapped": n, "unmapped": n}}}``.
    """
    if opts.entity_types:
        raw = raw.filter(pl.col("entity_type").is_in(opts.entity_types))
    raw = raw.with_row_index("_m")
    all_ids = (
        raw.select("_m", pl.col("source_ids").alias("raw_id")).explode("raw_id").drop_nulls()
    )
    # preset nodes (dictionary) are not re-mapped
    ids = all_ids.join(raw.filter(pl.col("cui").is_null()).select("_m"), on="_m", how="semi")
    lookup = _id_lookup(all_ids["raw_id"].unique().sort().to_list())  # each id parsed once
    id_to_cui = _id_to_cui(lookup, xrefs, concepts)
    hits = ids.join(id_to_cui, on="raw_id").select("_m", pl.col("cui").alias("_cui")).unique()
    preset = raw.filter(pl.col("cui").is_not_null()).select("_m", pl.col("cui").alias("_cui"))
    hits = pl.concat([hits, preset]).unique()
    mapped = hits.select("_m").unique()
    out = raw.join(hits, on="_m", how="left").with_columns(pl.col("_cui").alias("cui"))
    if opts.drop_unmapped:
        out = out.filter(pl.col("cui").is_not_null())
    out = out.sort("doc_id", "start", "end", "cui", nulls_last=True).select(list(MENTIONS))
    report = {
        "mentions": raw.height,
        "mapped": mapped.height,
        "unmapped": raw.height - mapped.height,
        "rows": out.height,
        "by_prefix": _by_prefix(all_ids, lookup, mapped),
    }
    return out, report
