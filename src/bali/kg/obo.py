"""OBO 1.2/1.4 ontologies (HPO, Disease Ontology, any OBO) -> KG tables.

Semantics:

- Each non-obsolete ``[Term]`` becomes a concept. Its node id is its first ``UMLS:`` /
  ``UMLS_CUI:`` xref when ``prefer_umls_cui`` (terms sharing a CUI merge into one concept),
  else the term id. The first term of a concept (ids sorted) gives ``preferred_name``;
  ``semantic_types`` are the terms' namespaces (the id prefix when none is given).
- names: ``name:`` (term_type ``name``) and ``synonym:`` lines whose scope is in
  ``synonym_scopes`` and whose type is not in ``skip_synonym_types`` (term_type = scope).
- edges: ``is_a: X`` -> (term, is_a, X); ``relationship: R X`` -> (term, R, X); mapped to node
  ids, self-loops and targets outside the KG dropped (counted in the stats).
- xrefs: the term id, its ``alt_id``s and its ``xref:`` ids, split by
  :func:`bali.kg.prefixes.split_curie`.
- HPO annotations (optional): ``phenotype.hpoa`` adds disease nodes (``OMIM:…``, ``ORPHA:…``,
  ``DECIPHER:…``) and (disease, has_phenotype, <aspect>, phenotype) edges, rows with
  qualifier ``NOT`` skipped; ``genes_to_phenotype.txt`` adds gene nodes (``NCBIGene:<id>``,
  named by symbol), (gene, has_phenotype, phenotype) and (gene, associated_with, disease) edges.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from bali.io import BaliInputError, check_input_file, first_non_utf8_line
from bali.kg.options import OboOptions
from bali.kg.prefixes import split_curie
from bali.kg.schema import write_kg

log = logging.getLogger(__name__)

HPOA_ASPECTS = {
    "P": "phenotypic_abnormality",
    "I": "inheritance",
    "C": "clinical_course",
    "M": "clinical_modifier",
    "H": "past_medical_history",
}
_SYNONYM = re.compile(r'^"((?:[^"\\]|\\.)*)"\s*(EXACT|RELATED|BROAD|NARROW)?\s*([^\s\[]+)?')
_UNESCAPE = re.compile(r"\\(.)")
_QUOTED = re.compile(r'^"((?:[^"\\]|\\.)*)"')


@dataclass
class OboTerm:
    """One ``[Term]`` stanza; ``line`` is where it starts."""

    id: str
    line: int
    name: str | None = None
    definition: str | None = None
    namespace: str | None = None
    obsolete: bool = False
    synonyms: list[tuple[str, str, str | None]] = field(default_factory=list)
    xrefs: list[str] = field(default_factory=list)
    alt_ids: list[str] = field(default_factory=list)
    parents: list[tuple[str, str]] = field(default_factory=list)  # (relation, target id)


def _unescape(text: str) -> str:
    return _UNESCAPE.sub(r"\1", text)


def _strip_value(value: str) -> str:
    """Drop a trailing ``! comment`` and ``{qualifiers}`` from a tag value."""
    value = value.split(" !", 1)[0]
    return re.sub(r"\s*\{[^}]*\}\s*$", "", value).strip()


def parse_obo(path: str | Path) -> Iterator[OboTerm]:
    """Stream the ``[Term]`` stanzas of an OBO file (other stanzas are skipped).

    Raises BaliInputError (file:line) for an empty file, non-UTF-8 bytes, a line that is
    neither ``[Stanza]``, ``tag: value``, a ``!`` comment nor blank, a stanza without ``id:``,
    a ``def:``/``synonym:`` whose text is not a closed quoted string, a file with no stanza
    at all, and a file without a final newline (cut mid-line: a cut inside a plain value
    such as ``name: angios`` cannot be told from a whole line, and every OBO writer,
    OWLAPI/ROBOT, fastobo, OBO-Edit, ends the file with a newline).
    """
    p = check_input_file(path)
    stanzas = 0
    default_namespace: str | None = None

    def finish(kind: str | None, start: int, tags: list[tuple[str, str, int]]) -> OboTerm | None:
        if kind is None:
            return None
        ids = [v for t, v, _ in tags if t == "id"]
        if not ids or not _strip_value(ids[0]):
            raise BaliInputError(p, f"{kind} stanza without id", start)
        if kind != "[Term]":
            return None
        term = OboTerm(id=_strip_value(ids[0]), line=start, namespace=default_namespace)
        for tag, value, lineno in tags:
            _add_tag(p, term, tag, value, lineno)
        return term

    try:
        with open(p, encoding="utf-8") as fh:
            kind: str | None = None
            start, tags, raw, lineno = 0, [], "", 0
            for lineno, raw in enumerate(fh, start=1):
                line = raw.strip()
                if not line or line.startswith("!"):
                    continue
                if line.startswith("["):
                    if not line.endswith("]"):
                        raise BaliInputError(p, f"unterminated stanza header {line!r}", lineno)
                    if (term := finish(kind, start, tags)) is not None:
                        yield term
                    kind, start, tags = line, lineno, []
                    stanzas += 1
                    continue
                tag, sep, value = line.partition(":")
                if not sep:
                    raise BaliInputError(p, f"expected 'tag: value', found {line[:40]!r}", lineno)
                if kind is not None:
                    tags.append((tag, value.strip(), lineno))
                elif tag == "default-namespace":
                    default_namespace = value.strip()
            if raw and not raw.endswith("\n"):  # every OBO writer ends with a newline
                raise BaliInputError(p, "file ends mid-line (no final newline): truncated? "
                                     "If the file is whole, add the final newline", lineno)
            if (term := finish(kind, start, tags)) is not None:
                yield term
    except UnicodeDecodeError as err:
        raise BaliInputError(p, "bytes that are not UTF-8", first_non_utf8_line(p)) from err
    if stanzas == 0:
        raise BaliInputError(p, "no stanza found: not an OBO file?")


def _quoted(path: Path, tag: str, value: str, lineno: int) -> re.Match:
    """The match of ``_SYNONYM``/``_QUOTED`` on a ``def:``/``synonym:`` value, else raise."""
    m = (_SYNONYM if tag == "synonym" else _QUOTED).match(value)
    if m is None:
        what = "unclosed quote" if value.startswith('"') else "text is not a quoted string"
        raise BaliInputError(path, f"{tag}: {what}: {value[:60]!r}", lineno)
    return m


def _add_tag(path: Path, term: OboTerm, tag: str, value: str, lineno: int) -> None:
    if tag == "name":
        term.name = _unescape(_strip_value(value))
    elif tag == "def":
        term.definition = _unescape(_quoted(path, tag, value, lineno).group(1))
    elif tag == "namespace":
        term.namespace = value
    elif tag == "is_obsolete":
        term.obsolete = value.lower() == "true"
    elif tag == "synonym":
        m = _quoted(path, tag, value, lineno)
        term.synonyms.append((_unescape(m.group(1)), m.group(2) or "RELATED", m.group(3)))
    elif tag == "xref":
        term.xrefs.append(value.split()[0])
    elif tag == "alt_id":
        term.alt_ids.append(_strip_value(value))
    elif tag == "is_a":
        term.parents.append(("is_a", _strip_value(value).split()[0]))
    elif tag == "relationship":
        parts = _strip_value(value).split()
        if len(parts) >= 2:
            term.parents.append((parts[0], parts[1]))


def _umls_cui(term: OboTerm) -> str | None:
    for x in term.xrefs:
        prefix, _, local = x.partition(":")
        if prefix.upper() in ("UMLS", "UMLS_CUI") and re.fullmatch(r"C\d{7}", local):
            return local
    return None


@dataclass
class OboKg:
    """Rows collected from OBO files before they become tables; ``node_of`` maps every
    term id and alt_id to its node id."""

    concepts: dict[str, dict] = field(default_factory=dict)
    names: list[dict] = field(default_factory=list)
    edges: list[dict] = field(default_factory=list)
    xrefs: list[dict] = field(default_factory=list)
    node_of: dict[str, str] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)

    def count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n

    def add_concept(self, node: str, name: str, semantic_type: str, source: str) -> None:
        c = self.concepts.setdefault(node, {"cui": node, "preferred_name": name,
                                            "semantic_types": set()})
        c["semantic_types"].add(semantic_type)
        self.names.append({"cui": node, "name": name, "source": source, "term_type": "name"})

    def add_xref(self, curie: str, node: str) -> None:
        split = split_curie(curie)
        if split is not None:
            self.xrefs.append({"source": split[0], "code": split[1], "cui": node})

    def add_edge(self, head: str, relation: str, attr: str | None, tail: str, source: str) -> None:
        self.edges.append({"head": head, "relation": relation, "relation_attr": attr,
                           "tail": tail, "source": source})


def read_obo_terms(files: list[Path], opts: OboOptions, kg: OboKg) -> None:
    """Add the terms of ``files`` to ``kg`` (edges are added with term ids; see
    :func:`_resolve_edges`)."""
    terms: list[tuple[OboTerm, str]] = []
    for path in files:
        n = 0
        for term in parse_obo(path):
            if term.obsolete:
                kg.count("obsolete_terms_skipped")
                continue
            source = (split_curie(term.id) or (term.id.split(":")[0],))[0]
            terms.append((term, source))
            n += 1
        log.info("%s: %d terms", path, n)
    terms.sort(key=lambda ts: ts[0].id)
    for term, _ in terms:
        cui = _umls_cui(term) if opts.prefer_umls_cui else None
        node = cui or term.id
        kg.node_of[term.id] = node
        for alt in term.alt_ids:
            kg.node_of.setdefault(alt, node)
    for term, source in terms:
        node = kg.node_of[term.id]
        sem = term.namespace or term.id.split(":")[0]
        kg.add_concept(node, term.name or term.id, sem, source)
        for text, scope, syn_type in term.synonyms:
            if scope in opts.synonym_scopes and syn_type not in opts.skip_synonym_types:
                kg.names.append({"cui": node, "name": text, "source": source,
                                 "term_type": scope})
        for curie in [term.id, *term.alt_ids, *term.xrefs]:
            kg.add_xref(curie, node)
        for relation, target in term.parents:
            if relation != "is_a" and not opts.relationships:
                continue
            kg.add_edge(term.id, relation, None, target, source)


def read_hpo_annotations(
    hpoa: Path | None, genes_to_phenotype: Path | None, kg: OboKg
) -> None:
    """Add disease and gene nodes and their edges from HPO annotation files."""
    if hpoa is not None:
        rows = _read_tsv(hpoa, ["database_id", "disease_name", "qualifier", "hpo_id", "aspect"])
        rows = rows.filter(pl.col("qualifier").fill_null("") != "NOT")
        diseases = rows.select("database_id", "disease_name").unique().sort(pl.all())
        for disease, name in diseases.iter_rows():
            kg.node_of[disease] = disease
            kg.add_concept(disease, name, "disease", (split_curie(disease) or ("",))[0])
            kg.add_xref(disease, disease)
        for disease, hpo, aspect in rows.select("database_id", "hpo_id", "aspect").iter_rows():
            kg.add_edge(disease, "has_phenotype", HPOA_ASPECTS.get(aspect, aspect), hpo, "HPO")
    if genes_to_phenotype is not None:
        rows = _read_tsv(genes_to_phenotype, ["ncbi_gene_id", "gene_symbol", "hpo_id",
                                              "disease_id"])
        genes = rows.select("ncbi_gene_id", "gene_symbol").unique().sort(pl.all())
        for gene_id, symbol in genes.iter_rows():
            node = f"NCBIGene:{gene_id}"
            kg.node_of[node] = node
            kg.add_concept(node, symbol, "gene", "NCBIGENE")
            kg.add_xref(node, node)
        for gene_id, hpo, disease in rows.select("ncbi_gene_id", "hpo_id",
                                                 "disease_id").iter_rows():
            kg.add_edge(f"NCBIGene:{gene_id}", "has_phenotype", None, hpo, "HPO")
            if disease:
                kg.add_edge(f"NCBIGene:{gene_id}", "associated_with", None, disease, "HPO")


def _read_tsv(path: Path, required: list[str]) -> pl.DataFrame:
    """Read a tab-separated annotation file with ``#`` comment lines and a header row."""
    p = check_input_file(path)
    try:
        df = pl.read_csv(p, separator="\t", comment_prefix="#", quote_char=None,
                         infer_schema=False, encoding="utf8")
    except pl.exceptions.ComputeError as err:
        line = first_non_utf8_line(p)
        what = "bytes that are not UTF-8" if line else str(err).splitlines()[0]
        raise BaliInputError(p, what, line) from err
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise BaliInputError(p, f"missing column(s) {', '.join(missing)} in the header "
                             f"(found {', '.join(df.columns[:8])})")
    return df.select(required)


def _resolve_edges(kg: OboKg) -> pl.DataFrame:
    """Map edge ends to node ids; drop unknown targets and self-loops; dedupe."""
    if not kg.edges:
        return pl.DataFrame(schema={"head": pl.String, "relation": pl.String,
                                    "relation_attr": pl.String, "tail": pl.String,
                                    "source": pl.String})
    node_of = pl.DataFrame({"id": list(kg.node_of), "node": list(kg.node_of.values())})
    edges = pl.DataFrame(kg.edges, schema={"head": pl.String, "relation": pl.String,
                                           "relation_attr": pl.String, "tail": pl.String,
                                           "source": pl.String})
    mapped = (
        edges.join(node_of, left_on="head", right_on="id", how="left")
        .join(node_of, left_on="tail", right_on="id", how="left", suffix="_tail")
    )
    unknown = mapped.filter(pl.col("node").is_null() | pl.col("node_tail").is_null()).height
    kg.count("edges_unknown_end_dropped", unknown)
    mapped = mapped.drop_nulls(["node", "node_tail"])
    loops = mapped.filter(pl.col("node") == pl.col("node_tail")).height
    kg.count("self_loops_dropped", loops)
    return (
        mapped.filter(pl.col("node") != pl.col("node_tail"))
        .select(pl.col("node").alias("head"), "relation", "relation_attr",
                pl.col("node_tail").alias("tail"), "source")
        .group_by("head", "relation", "relation_attr", "tail")
        .agg(pl.col("source").min())
    )


def build_obo(
    obo_files: list[str | Path],
    out_dir: str | Path,
    opts: OboOptions,
    hpoa: str | Path | None = None,
    genes_to_phenotype: str | Path | None = None,
) -> dict[str, int]:
    """Build the KG tables from OBO files (and optional HPO annotations); returns row counts
    per table plus the counters of skipped/dropped rows."""
    if not obo_files:
        raise BaliInputError("<config>", "no OBO file given")
    kg = OboKg()
    read_obo_terms([Path(f) for f in obo_files], opts, kg)
    read_hpo_annotations(Path(hpoa) if hpoa else None,
                         Path(genes_to_phenotype) if genes_to_phenotype else None, kg)
    concepts = pl.DataFrame(
        [{**c, "semantic_types": sorted(c["semantic_types"])} for c in kg.concepts.values()],
        schema={"cui": pl.String, "preferred_name": pl.String,
                "semantic_types": pl.List(pl.String)},
    )
    names = (
        pl.DataFrame(kg.names, schema={"cui": pl.String, "name": pl.String,
                                       "source": pl.String, "term_type": pl.String})
        .filter(pl.col("name").str.strip_chars() != "")
        .unique(["cui", "name"], keep="first", maintain_order=True)
        .join(concepts.select("cui", "preferred_name"), on="cui")
        .with_columns(is_preferred=pl.col("name") == pl.col("preferred_name"))
    )
    xrefs = pl.DataFrame(kg.xrefs, schema={"source": pl.String, "code": pl.String,
                                           "cui": pl.String}).unique()
    counts = write_kg(
        {"concepts": concepts, "names": names, "edges": _resolve_edges(kg), "xrefs": xrefs},
        out_dir,
    )
    log.info("KG written to %s: %s; %s", out_dir, counts, kg.stats)
    return counts | kg.stats
