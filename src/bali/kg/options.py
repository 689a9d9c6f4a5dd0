"""The KG stage's options, one typed dataclass per builder (their fields are the ``kg``
config keys and the ``bali kg`` flags; the builders: :mod:`bali.kg.umls`, :mod:`bali.kg.obo`,
:mod:`bali.kg.tables`, :mod:`bali.kg.holdout`). Imports nothing heavy, so ``bali kg --help``
is fast."""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass(frozen=True)
class OboOptions:
    """Options of :func:`build_obo`."""

    prefer_umls_cui: bool = field(
        default=True, metadata={"help": "use a term's UMLS xref as its node id"})
    synonym_scopes: tuple[str, ...] = field(
        default=("EXACT", "RELATED", "BROAD", "NARROW"),
        metadata={"help": "synonym scopes that become names"})
    skip_synonym_types: tuple[str, ...] = field(
        default=("obsolete_synonym",), metadata={"help": "synonym types never used as names"})
    relationships: bool = field(
        default=True, metadata={"help": "add edges from relationship: lines (is_a always)"})


@dataclass(frozen=True)
class TablesOptions:
    """Options of :func:`build_tables`; the ``*_column`` options apply to ``custom``."""

    mapping: str = field(default="custom", metadata={
        "help": "column mapping (bali.kg.tables.MAPPINGS) or custom (the columns below)",
        "choices": ("custom", "primekg", "hetionet")})
    id_column: str = field(default="id", metadata={"help": "nodes: id column"})
    name_column: str = field(default="name", metadata={"help": "nodes: name column"})
    synonyms_column: str = field(default="", metadata={"help": "nodes: synonyms column"})
    type_column: str = field(default="", metadata={"help": "nodes: type column"})
    head_column: str = field(default="head", metadata={"help": "edges: head node column"})
    relation_column: str = field(default="relation", metadata={"help": "edges: relation"})
    tail_column: str = field(default="tail", metadata={"help": "edges: tail node column"})
    synonym_separator: str = field(default="|", metadata={"help": "synonyms: separator"})
    kg_name: str = field(default="", metadata={
        "help": "names/edges source value (default: the mapping's name, upper-cased)"})


@dataclass(frozen=True)
class HoldoutOptions:
    """Options of :func:`hold_out_synonyms` (``holdout_share = 0``: nothing held out)."""

    holdout_share: float = field(default=0.0, metadata={
        "help": "share of eligible concepts that lose one synonym to the EL test set"})
    holdout_seed: int = field(default=0, metadata={"help": "seed of the draw"})
    holdout_sources: tuple[str, ...] = field(default=(), metadata={
        "help": "only names of these sources (e.g. HPO); empty = any"})
    holdout_term_types: tuple[str, ...] = field(default=(), metadata={
        "help": "only names of these term types (e.g. EXACT); empty = any"})
