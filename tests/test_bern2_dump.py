"""BERN2 dump reader: real layout, nested ids, CUI-less, mutations, bad spans, the CLI stages."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from bern2_standin import text_for_response
from conftest import ROOT

from bali.cli import main
from bali.io import BaliInputError, write_parquet
from bali.kg.schema import CONCEPTS, XREFS
from bali.text.bern2 import check_annotation, mentions_frame
from bali.text.bern2_dump import iter_bern2_dump, read_bern2_dump
from bali.text.normalize import id_key
from bali.text.schema import DOCUMENTS, MENTIONS

SAMPLES = "bern2/plain_response_samples.json"
TEXT = ("BRAF V600E in melanoma patients. Insulin lowers glucose in mice; "
        "palpitations were seen.")


def span(text: str, mention: str, start: int = 0) -> dict:
    b = text.index(mention, start)
    return {"begin": b, "end": b + len(mention)}


def ann(text: str, mention: str, obj: str, ids, **extra) -> dict:
    return {"id": ids, "is_neural_normalized": False, "mention": mention, "obj": obj,
            "prob": 0.99, "span": span(text, mention), **extra}


def dump_lines() -> list[dict]:
    """Three documents in the dump's layout: a mutation, a nested id list, CUI-less ids, a
    bad span (shifted by one) and a malformed annotation (no obj)."""
    t = TEXT
    doc1 = {"pmid": "111", "text": t, "timestamp": "Thu Mar 03 04:52:21 +0000 2022",
            "annotations": [
                ann(t, "BRAF", "gene", ["NCBIGene:673"]),
                ann(t, "V600E", "mutation", ["tmVar:p|SUB|V|600|E;HGVS:p.V600E;VariantGroup:0"],
                    mutationType="ProteinMutation", normalizedName="p.V600E", hgvs="p.V600E"),
                ann(t, "melanoma", "disease", [["mesh:D008545", "mim:155600"]]),  # nested
                ann(t, "patients", "species", ["NCBITaxon:9606"]),
                ann(t, "Insulin", "drug", ["mesh:D007328"]) | {
                    "span": {"begin": t.index("Insulin") + 1,
                             "end": t.index("Insulin") + 8}},  # bad span
                ann(t, "glucose", "drug", ["CUI-less"]),
                {"id": ["mesh:D1"], "mention": "mice", "span": span(t, "mice")},  # no obj
                ann(t, "palpitations", "disease", ["mim:115000", "mesh:D001145"]),
            ]}
    doc2 = {"pmid": "222", "text": "No entities here.", "annotations": []}
    doc3 = {"pmid": 333, "text": "Mice with diabetes.",
            "annotations": [ann("Mice with diabetes.", "diabetes", "disease", ["CUI-less"])]}
    return [doc1, doc2, doc3]


def write_dump(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def test_dump_to_documents_and_mentions(tmp_path, caplog):
    dump = write_dump(tmp_path / "pubmed22n0001.json", dump_lines())
    with caplog.at_level(logging.WARNING):
        docs, mentions, stats = read_bern2_dump(dump)
    assert docs.schema == pl.Schema(DOCUMENTS) and mentions.schema == pl.Schema(MENTIONS)
    assert docs["doc_id"].to_list() == ["111", "222", "333"]
    assert docs.row(0, named=True) == {"doc_id": "111", "title": "", "text": TEXT}
    assert stats | {"dropped_examples": None} == {
        "lines": 3, "documents": 3, "annotations": 9, "mentions": 7, "bad_spans": 1,
        "bad_annotations": 1, "cui_less": 2, "nested_ids": 1, "mutations": 1,
        "duplicate_ids_replaced": 0, "dropped_examples": None}
    # the bad span and the malformed annotation: dropped, logged with file:line
    logged = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f"{dump}:1: annotation 4 of 111 dropped: span") for m in logged)
    assert any(m.startswith(f"{dump}:1: annotation 6 of 111 dropped: annotation lacks")
               for m in logged)
    assert stats["dropped_examples"][0].startswith(f"{dump}:1: annotation 4 of 111: span")
    assert "Insulin" not in mentions["mention"].to_list()
    text = dict(zip(docs["doc_id"], docs["text"], strict=True))
    for row in mentions.iter_rows(named=True):  # every kept span fits the text
        assert text[row["doc_id"]][row["start"]:row["end"]] == row["mention"]
    by = {r["mention"]: r for r in mentions.iter_rows(named=True)}
    assert by["melanoma"]["source_ids"] == ["mesh:D008545", "mim:155600"]  # flattened
    assert by["glucose"]["source_ids"] == [] and by["diabetes"]["source_ids"] == []
    assert by["V600E"]["entity_type"] == "mutation"
    assert by["V600E"]["source_ids"] == ["tmVar:p|SUB|V|600|E;HGVS:p.V600E;VariantGroup:0"]
    assert set(mentions["annotator"]) == {"bern2-dump"} and mentions["cui"].null_count() == 7


def test_one_conversion_for_client_and_dump(tmp_path):
    """The dump reader's rows are the BERN2 client's conversion of the same annotations."""
    dump = write_dump(tmp_path / "pubmed22n0002.json", dump_lines()[2:])
    _, mentions, _ = read_bern2_dump(dump)
    line = dump_lines()[2]
    anns = [check_annotation(a, line["text"]) for a in line["annotations"]]
    assert mentions.equals(mentions_frame([("333", anns)], "bern2-dump"))
    mutation = check_annotation(dump_lines()[0]["annotations"][1], TEXT)
    assert mutation["mutationType"] == "ProteinMutation" and mutation["hgvs"] == "p.V600E"


def test_real_sample_response_as_a_dump_line(shared_data, tmp_path):
    sample = json.loads(shared_data(SAMPLES).read_text(encoding="utf-8"))
    text = text_for_response(sample)
    dump = write_dump(tmp_path / "pubmed22n0003.json",
                      [{"pmid": "1", "text": text, "annotations": sample["annotations"]}])
    _, mentions, stats = read_bern2_dump(dump)
    assert stats["bad_spans"] == 0 and mentions.height == len(sample["annotations"]) == 12
    row = mentions.filter(pl.col("mention") == "palpitations").row(0, named=True)
    assert row["source_ids"] == ["mim:115000", "mesh:D001145"]
    assert (row["start"], row["end"]) == (177, 189)


def test_title_duplicates_and_gzip(tmp_path):
    import gzip

    lines = [{"pmid": "1", "title": "A title.", "text": "A title. The abstract.",
              "annotations": []},
             {"pmid": "2", "title": "Not the start", "text": "Some text.", "annotations": []},
             {"_id": "1", "text": "Replaced.", "annotations": []}]
    path = tmp_path / "pubmed22n0004.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(x) + "\n" for x in lines))
    docs, _, stats = read_bern2_dump(path)
    assert docs.rows() == [("2", "", "Some text."), ("1", "", "Replaced.")]
    assert stats["duplicate_ids_replaced"] == 1 and stats["documents"] == 2
    first = next(iter_bern2_dump(path))[0]
    assert first == {"doc_id": "1", "title": "A title.", "text": "A title. The abstract."}


@pytest.mark.parametrize(("line", "what"), [
    ("not json", "invalid JSON line"), ('{"text": "x"}', "object has no pmid"),
    ('{"pmid": "1"}', "object has no text"),
    ('{"pmid": "1", "text": "x", "annotations": {}}', "'annotations' is not a list")])
def test_bad_line_names_file_and_line(tmp_path, line, what):
    path = tmp_path / "pubmed22n0005.json"
    path.write_text('{"pmid": "0", "text": "ok", "annotations": []}\n' + line + "\n")
    with pytest.raises(BaliInputError) as err:
        read_bern2_dump(path)
    assert str(err.value).startswith(f"{path}:2: {what}")


def test_empty_or_missing_dump_file_is_one_clear_error(tmp_path):
    from bali.cli import main

    empty = tmp_path / "pubmed22n0006.json"
    empty.write_text("")
    for path, what in ((empty, "file is empty"), (tmp_path / "gone.json", "not found")):
        with pytest.raises(BaliInputError, match=what) as err:
            read_bern2_dump(path)
        assert str(err.value).startswith(str(path))
    assert main(["text", "read", "--input", str(empty), "--format", "bern2-dump", "--out",
                 str(tmp_path / "d.parquet")]) != 0


def write_kg(kg: Path, mentions: pl.DataFrame) -> None:
    """A KG whose xrefs map every id of ``mentions`` that has a prefix to its own concept."""
    ids = sorted({i for ids in mentions["source_ids"] for i in ids})
    keys = sorted({k for k in map(id_key, ids) if k})
    cuis = [f"C{k:07d}" for k in range(len(keys))]
    write_parquet(pl.DataFrame({"source": [s for s, _ in keys], "code": [c for _, c in keys],
                                "cui": cuis}, schema=XREFS), kg / "xrefs.parquet")
    write_parquet(pl.DataFrame({"cui": cuis, "preferred_name": cuis,
                                "semantic_types": [[] for _ in cuis]}, schema=CONCEPTS),
                  kg / "concepts.parquet")


def test_cli_read_annotate_sentences(tmp_path, capsys):
    dump = write_dump(tmp_path / "pubmed22n0001.json", dump_lines())
    docs, out, kg = tmp_path / "documents.parquet", tmp_path / "mentions.parquet", tmp_path / "kg"
    assert main(["text", "read", "--input", str(dump), "--format", "bern2-dump",
                 "--out", str(docs)]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == 3
    write_kg(kg, read_bern2_dump(dump)[1])
    assert main(["text", "annotate", "--annotator", "bern2-dump", "--corpus", str(dump),
                 "--documents", str(docs), "--kg-dir", str(kg), "--out", str(out),
                 "--report", str(tmp_path / "annotate.json")]) == 0
    report = json.loads((tmp_path / "annotate.json").read_text())
    assert report["annotator"] == "bern2-dump" and report["documents"] == 3
    assert report["annotator_report"]["bad_spans"] == 1
    assert report["annotator_report"]["nested_ids"] == 1
    mentions = pl.read_parquet(out)
    mapped = mentions.filter(pl.col("cui").is_not_null())
    assert {"BRAF", "melanoma", "patients", "palpitations"} <= set(mapped["mention"])
    assert mentions.filter(pl.col("mention") == "melanoma").height == 2  # two ids, two nodes
    assert main(["text", "sentences", "--documents", str(docs), "--mentions", str(out),
                 "--out", str(tmp_path / "sentences.parquet")]) == 0
    sentences = pl.read_parquet(tmp_path / "sentences.parquet")
    assert sentences.filter(pl.col("doc_id") == "111").height == 2

    other = write_dump(tmp_path / "pubmed22n0009.json", dump_lines()[:2])  # not its dump
    assert main(["text", "annotate", "--annotator", "bern2-dump", "--corpus", str(other),
                 "--documents", str(docs), "--kg-dir", str(kg), "--out", str(out)]) == 2
    assert "1 documents differ from --documents" in capsys.readouterr().err


def test_generated_dump_reads_back(shared_data, tmp_path):
    shared_data("bern2/pubmed_abstracts_1k.jsonl")
    out = tmp_path / "pubmed22n0001.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "text" / "gen_bern2_dump.py"), "--docs", "1500",
         "--out", str(out), "--bad-spans", "0.01"],
        capture_output=True, text=True, check=True, timeout=120,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    made = json.loads(proc.stdout)
    docs, mentions, stats = read_bern2_dump(out)
    assert docs.height == made["documents"] == 1500
    assert stats["annotations"] == made["annotations"] > 3000
    # a shifted span almost never fits again by chance; every kept one fits
    assert made["bad_spans"] - 2 <= stats["bad_spans"] <= made["bad_spans"] > 10
    assert stats["nested_ids"] == made["nested_ids"] > 10
    assert made["mutations"] <= stats["mutations"] <= made["mutations"] + 2
    text = dict(zip(docs["doc_id"], docs["text"], strict=True))
    assert all(text[d][s:e] == m for d, s, e, m in
               mentions.select("doc_id", "start", "end", "mention").iter_rows())
