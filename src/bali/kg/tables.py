"""Any KG given as node and edge tables (CSV, TSV or Parquet) -> KG tables, by column mapping.

Input: an edges file (head, relation, tail columns) and a nodes file (id, name, optional
synonyms and type columns), each ``.csv`` (comma, ``"`` quoting), ``.tsv``/``.sif``/``.txt``
(tab, no quoting) or ``.parquet``, optionally ``.gz``; text files have a header row. Ready
mappings (:data:`MAPPINGS`):

- ``primekg``: PrimeKG's ``kg.csv`` alone (relation, display_relation, x_index, x_id, x_type,
  x_name, x_source, y_index, y_id, y_type, y_name, y_source). Nodes come from the ``x_``/``y_``
  columns; node id = ``<source>:<id>`` as PrimeKG writes them (``NCBI:9796``, ``MONDO:13924``,
  ``DrugBank:DB00001``, ``MONDO_grouped:13924_12592``): ``x_index`` is release-specific and
  ``x_id`` alone is ambiguous across sources. relation = ``relation``, relation_attr =
  ``display_relation`` (``drug_protein`` is read as target/enzyme/carrier/transporter).
  xrefs add the canonical ids (``NCBIGENE 9796``, ``MONDO MONDO:0013924``, ``HPO
  HP:0002360``, ...) so that annotator ids map to the nodes.
- ``hetionet``: ``hetionet-v1.0-nodes.tsv`` (id, name, kind) and ``hetionet-v1.0-edges.sif``
  (source, metaedge, target). Node id = Hetionet's (``Gene::9796``, ``Disease::DOID:9352``);
  relation = the metaedge (``CtD``), relation_attr = its verb (``treats``); xrefs add the
  identifier after ``::`` in the id space of the kind (Gene -> NCBIGENE, Compound ->
  DRUGBANK, Side Effect -> UMLS, Symptom -> MSH, ...).
- ``custom``: the ``--*-column`` options (synonyms split on ``synonym_separator``).

Tables: concepts (preferred_name = the node's first name in file order, else its id;
semantic_types = its types), names (every distinct name, term_type ``name``; synonyms,
term_type ``synonym``), edges (ends that are not nodes and self-loops dropped, duplicates
merged, all counted in the stats), xrefs (the node id as a CURIE plus the mapping's ids).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from bali.io import BaliInputError, check_input_file
from bali.kg.options import TablesOptions
from bali.kg.prefixes import split_curie
from bali.kg.schema import CONCEPTS, EDGES, NAMES, XREFS, write_kg

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ColumnMapping:
    """Where the fields of nodes and edges are. With ``node_prefixes`` the nodes are read
    from the edges file, once per prefix (``x_id``, ``x_name``, ...), and ``head``/``tail``
    are the prefixes' id columns; with ``source`` the node id is ``<source>:<id>``."""

    id: str
    name: str | None
    head: str
    relation: str
    tail: str
    synonyms: str | None = None
    type: str | None = None
    source: str | None = None
    relation_attr: str | None = None
    node_prefixes: tuple[str, ...] = ()


MAPPINGS = {
    "primekg": ColumnMapping(id="id", name="name", type="type", source="source",
                             head="x_id", relation="relation", tail="y_id",
                             relation_attr="display_relation", node_prefixes=("x_", "y_")),
    "hetionet": ColumnMapping(id="id", name="name", type="kind", head="source",
                              relation="metaedge", tail="target"),
}
# PrimeKG source -> (xref source, CURIE prefix of zero-padded numeric ids, or None: as is)
PRIMEKG_XREFS = {
    "NCBI": ("NCBIGENE", None), "MONDO": ("MONDO", "MONDO"), "HPO": ("HPO", "HP"),
    "GO": ("GO", "GO"), "UBERON": ("UBERON", "UBERON"), "DrugBank": ("DRUGBANK", None),
    "REACTOME": ("REACTOME", None),
}
# Hetionet kind -> xref source of the identifier after "::" (None: split it as a CURIE)
HETIONET_XREFS = {
    "Gene": "NCBIGENE", "Compound": "DRUGBANK", "Side Effect": "UMLS", "Symptom": "MSH",
    "Pharmacologic Class": "NDFRT", "Pathway": "PATHWAY", "Anatomy": None, "Disease": None,
    "Biological Process": None, "Cellular Component": None, "Molecular Function": None,
}
HETIONET_VERBS = {
    "AdG": "downregulates", "AeG": "expresses", "AuG": "upregulates", "CbG": "binds",
    "CcSE": "causes", "CdG": "downregulates", "CpD": "palliates", "CrC": "resembles",
    "CtD": "treats", "CuG": "upregulates", "DaG": "associates", "DdG": "downregulates",
    "DlA": "localizes", "DpS": "presents", "DrD": "resembles", "DuG": "upregulates",
    "GcG": "covaries", "GiG": "interacts", "GpBP": "participates", "GpCC": "participates",
    "GpMF": "participates", "GpPW": "participates", "Gr>G": "regulates", "PCiC": "includes",
}


def column_mapping(opts: TablesOptions) -> ColumnMapping:
    """The ready mapping named by ``opts.mapping``, or the custom one from the options."""
    if opts.mapping in MAPPINGS:
        return MAPPINGS[opts.mapping]
    return ColumnMapping(id=opts.id_column, name=opts.name_column or None,
                         synonyms=opts.synonyms_column or None, type=opts.type_column or None,
                         head=opts.head_column, relation=opts.relation_column,
                         tail=opts.tail_column)


def read_columns(path: str | Path, columns: list[str]) -> pl.DataFrame:
    """``columns`` of a CSV/TSV/Parquet file, all as strings (empty field -> null)."""
    p = check_input_file(path)
    name = p.name.lower().removesuffix(".gz")
    try:
        if name.endswith(".parquet"):
            df = pl.read_parquet(p)
        elif name.endswith((".csv", ".tsv", ".sif", ".txt")):
            tab = not name.endswith(".csv")
            df = pl.read_csv(p, separator="\t" if tab else ",", quote_char=None if tab else '"',
                             infer_schema=False, encoding="utf8")
        else:
            raise BaliInputError(p, "cannot tell the table format from the name: use .csv, "
                                 ".tsv, .sif, .txt or .parquet (optionally .gz)")
    except pl.exceptions.PolarsError as err:
        raise BaliInputError(p, f"not a readable table: {str(err).splitlines()[0]}") from err
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise BaliInputError(p, f"missing column(s) {', '.join(missing)} (found "
                             f"{', '.join(df.columns[:12])})")
    df = df.select(pl.col(c).cast(pl.String) for c in dict.fromkeys(columns))
    blank = pl.all().str.strip_chars() == ""
    return df.with_columns(pl.when(~blank).then(pl.all()))


def _check_present(df: pl.DataFrame, columns: list[str], path: Path) -> None:
    """Raise for the first row where a column of ``columns`` is empty (line = row + 2 in a
    text file: the header is line 1)."""
    for col in columns:
        nulls = df[col].is_null().arg_true()
        if len(nulls):
            row = int(nulls[0])
            text = not path.name.lower().removesuffix(".gz").endswith(".parquet")
            raise BaliInputError(path, f"empty {col} (row {row + 1})",
                                 row + 2 if text else None)


def _node_fields(m: ColumnMapping) -> list[str]:
    return [f for f in ("id", "name", "synonyms", "type", "source") if getattr(m, f)]


def _node_rows(df: pl.DataFrame, m: ColumnMapping, prefixes: tuple[str, ...],
               path: Path) -> pl.DataFrame:
    """Nodes (id, name, synonyms, type, source) in file order (per row: one per prefix)."""
    _check_present(df, [p + m.id for p in prefixes], path)
    parts = []
    for p in prefixes:
        cols = {f: pl.col(p + getattr(m, f)) if getattr(m, f) else pl.lit(None, pl.String)
                for f in ("id", "name", "synonyms", "type", "source")}
        parts.append(df.select(**cols).with_row_index("row"))
    nodes = pl.concat(parts).sort("row", maintain_order=True).drop("row")
    if m.source:
        nodes = nodes.with_columns(id=pl.concat_str("source", pl.lit(":"), "id"))
    return nodes


def _concepts_and_names(nodes: pl.DataFrame, sep: str, kg: str,
                        stats: dict) -> tuple[pl.DataFrame, pl.DataFrame]:
    first = nodes.unique("id", keep="first", maintain_order=True)
    stats["nodes_without_name"] = first["name"].null_count()
    concepts = (
        nodes.filter(pl.col("type").is_not_null())
        .group_by("id").agg(pl.col("type").unique().sort().alias("semantic_types"))
        .join(first.select("id", pl.coalesce("name", "id").alias("preferred_name")),
              on="id", how="right")
        .select(pl.col("id").alias("cui"), "preferred_name",
                pl.col("semantic_types").fill_null(pl.lit([], pl.List(pl.String))))
    )
    synonyms = (
        nodes.select("id", pl.col("synonyms").str.split(sep).alias("name"))
        .explode("name").with_columns(pl.col("name").str.strip_chars())
        .with_columns(term_type=pl.lit("synonym"))
    )
    names = (
        pl.concat([nodes.select("id", "name", term_type=pl.lit("name")), synonyms])
        .filter(pl.col("name").is_not_null() & (pl.col("name") != ""))
        .unique(["id", "name"], keep="first", maintain_order=True)
        .join(concepts.select(pl.col("cui").alias("id"), "preferred_name"), on="id")
        .select(pl.col("id").alias("cui"), "name", source=pl.lit(kg), term_type="term_type",
                is_preferred=pl.col("name") == pl.col("preferred_name"))
    )
    return concepts, names


def _edge_columns(m: ColumnMapping) -> list[str]:
    cols = [m.head, m.relation, m.tail, *([m.relation_attr] if m.relation_attr else [])]
    return cols + ([p + m.source for p in m.node_prefixes] if m.source else [])


def _edges(df: pl.DataFrame, path: Path, m: ColumnMapping, node_ids: pl.Series, kg: str,
           verbs: dict[str, str] | None, stats: dict) -> pl.DataFrame:
    """Edges with node-id ends; unknown ends, self-loops and duplicates dropped, counted."""
    _check_present(df, [m.head, m.relation, m.tail], path)
    head, tail = pl.col(m.head), pl.col(m.tail)
    if m.source:
        x, y = m.node_prefixes
        head = pl.concat_str(pl.col(x + m.source), pl.lit(":"), head)
        tail = pl.concat_str(pl.col(y + m.source), pl.lit(":"), tail)
    attr = pl.col(m.relation_attr) if m.relation_attr else pl.lit(None, pl.String)
    if verbs:
        attr = pl.col(m.relation).replace_strict(verbs, default=None, return_dtype=pl.String)
    edges = df.select(head=head, relation=pl.col(m.relation), relation_attr=attr, tail=tail,
                      source=pl.lit(kg))
    known = pl.col("head").is_in(node_ids.implode()) & pl.col("tail").is_in(node_ids.implode())
    stats["edges_unknown_end_dropped"] = edges.filter(~known).height
    edges = edges.filter(known)
    stats["self_loops_dropped"] = edges.filter(pl.col("head") == pl.col("tail")).height
    edges = edges.filter(pl.col("head") != pl.col("tail"))
    unique = edges.unique(["head", "relation", "relation_attr", "tail"], keep="first",
                          maintain_order=True)
    stats["duplicate_edges_merged"] = edges.height - unique.height
    return unique


def _xrefs(concepts: pl.DataFrame, nodes: pl.DataFrame, mapping: str) -> pl.DataFrame:
    """The node id split as a CURIE, plus the canonical ids of the ready mappings."""
    rows = []
    kinds = dict(nodes.select("id", "type").unique("id", keep="first").iter_rows())
    for node in concepts["cui"]:
        split = split_curie(node) if "::" not in node else None
        if split:
            rows.append((*split, node))
        local = node.split("::", 1)[1] if "::" in node else node.partition(":")[2]
        if mapping == "primekg":
            source, prefix = PRIMEKG_XREFS.get(node.partition(":")[0], (None, None))
            if source and prefix and local.isdigit():
                rows.append((source, f"{prefix}:{int(local):07d}", node))
            elif source:
                rows.append((source, local, node))
        elif mapping == "hetionet" and local:
            source = HETIONET_XREFS.get(kinds.get(node) or "")
            split = (source, local) if source else split_curie(local)
            if split:
                rows.append((*split, node))
    return pl.DataFrame(rows, schema=XREFS, orient="row").unique()


def build_tables(edges_file: str | Path, out_dir: str | Path, opts: TablesOptions,
                 nodes_file: str | Path | None = None) -> dict[str, int]:
    """Build the KG tables from node and edge tables; returns row counts per table plus the
    counters of dropped/merged rows."""
    m = column_mapping(opts)
    edges_path = Path(edges_file)
    if not m.node_prefixes and nodes_file is None:
        raise BaliInputError("<args>", f"mapping {opts.mapping!r} needs a nodes file (--nodes)")
    kg = opts.kg_name or opts.mapping.upper()
    stats: dict[str, int] = {}
    node_columns = _node_fields(m)
    if m.node_prefixes:  # one read of the edges file for both
        edge_df = read_columns(edges_path, _edge_columns(m) + [
            p + getattr(m, f) for p in m.node_prefixes for f in node_columns])
        nodes = _node_rows(edge_df, m, m.node_prefixes, edges_path)
    else:
        nodes_path = Path(nodes_file)
        nodes = _node_rows(read_columns(nodes_path, [getattr(m, f) for f in node_columns]),
                           m, ("",), nodes_path)
        edge_df = read_columns(edges_path, _edge_columns(m))
    concepts, names = _concepts_and_names(nodes, opts.synonym_separator, kg, stats)
    if concepts.height == 0:
        raise BaliInputError(nodes_file or edges_path, "no node found")
    verbs = HETIONET_VERBS if opts.mapping == "hetionet" else None
    edges = _edges(edge_df, edges_path, m, concepts["cui"], kg, verbs, stats)
    counts = write_kg({"concepts": concepts.select(list(CONCEPTS)),
                       "names": names.select(list(NAMES)), "edges": edges.select(list(EDGES)),
                       "xrefs": _xrefs(concepts, nodes, opts.mapping)}, out_dir)
    log.info("KG written to %s: %s; %s", out_dir, counts, stats)
    return counts | stats
