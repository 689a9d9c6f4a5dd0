"""`bali text annotate --annotator dictionary`: the command's output is the annotator's rows
normalised, byte-identical on a rerun, and its log has one progress line."""

from __future__ import annotations

import logging

import polars as pl

from bali.cli import main
from bali.io import read_table
from bali.kg.schema import write_kg
from bali.text.dictionary import DictionaryOptions, annotate_dictionary, build_dictionary
from bali.text.normalize import NormalizeOptions, normalize_mentions
from bali.text.schema import DOCUMENTS, MENTIONS


def _kg(path):
    names = pl.DataFrame({"cui": ["C1", "C1", "C2", "C3", "C3", "HP:0001"],
                          "name": ["Fever", "pyrexia", "renal failure", "acute renal failure",
                                   "ARF", "Gout"],
                          "source": "GEN", "term_type": "SY", "is_preferred": False})
    concepts = pl.DataFrame({"cui": ["C1", "C2", "C3", "HP:0001"],
                             "preferred_name": ["Fever", "renal failure",
                                                "acute renal failure", "Gout"],
                             "semantic_types": [["T184"]] * 4})
    xrefs = pl.DataFrame({"source": ["MSH"], "code": ["D005334"], "cui": ["C1"]})
    edges = pl.DataFrame(schema={"head": pl.String, "relation": pl.String,
                                 "relation_attr": pl.String, "tail": pl.String,
                                 "source": pl.String})
    write_kg({"concepts": concepts, "names": names, "edges": edges, "xrefs": xrefs}, path)
    return names, concepts, xrefs


def test_annotate_command_reruns_byte_identical(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("BALI_PROGRESS", "0")
    names, concepts, xrefs = _kg(tmp_path / "kg")
    texts = ["Fever and acute renal failure (ARF) with pyrexia.", "Gout; no fever.",
             "Straße naïve ΣΟΦΙΑΣ: renal failure, feverish, pre-fever, ARF-like.", ""]
    docs = pl.DataFrame([{"doc_id": f"{i}", "title": "", "text": t} for i, t in enumerate(texts)],
                        schema=DOCUMENTS)
    docs.write_parquet(tmp_path / "documents.parquet")
    args = ["text", "annotate", "--annotator", "dictionary", "--documents",
            str(tmp_path / "documents.parquet"), "--kg-dir", str(tmp_path / "kg")]
    with caplog.at_level(logging.INFO, logger="bali"):
        assert main([*args, "--out", str(tmp_path / "a.parquet")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.parquet")]) == 0
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()

    got = read_table(tmp_path / "a.parquet", MENTIONS)
    raw = annotate_dictionary(docs, build_dictionary(names, DictionaryOptions()))
    want, _ = normalize_mentions(raw, xrefs, concepts, NormalizeOptions())
    assert got.equals(want)
    assert got.select("doc_id", "mention", "cui").rows() == [
        ("0", "Fever", "C1"), ("0", "acute renal failure", "C3"), ("0", "ARF", "C3"),
        ("0", "pyrexia", "C1"), ("1", "Gout", "HP:0001"), ("1", "fever", "C1"),
        ("2", "renal failure", "C2"), ("2", "fever", "C1"), ("2", "ARF", "C3")]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("annotate:")]
    assert len(lines) == 1 and lines[0].startswith("annotate: 4 doc in ")
    assert lines[0].endswith(f"mentions {raw.height}")
