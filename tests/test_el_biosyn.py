"""BioSyn: the marginal loss, candidate union, training that must help, the CLI on real
BC5CDR-disease with MEDIC; the PubTator and KG-names inputs of the EL evaluators."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import polars as pl
import pytest
import torch

from bali.cli import main
from bali.evaluate.el_biosyn import (
    BiosynOptions,
    cap_dictionary,
    evaluate_biosyn,
    fit_sparse,
    marginal_nll,
    pair_scores,
    sparse_top_k,
    training_queries,
    union_candidates,
)
from bali.evaluate.el_zeroshot import read_dictionary, read_mentions
from bali.io import BaliInputError


def test_marginal_nll_by_hand():
    """Row 1: softmax(0, ln 2, 0) = (1/4, 1/2, 1/4), positives 1 and 2 -> -log(3/4).
    Row 2 has no positive candidate: it adds nothing (BioSyn)."""
    scores = torch.tensor([[0.0, math.log(2.0), 0.0], [5.0, 0.0, 1.0]], requires_grad=True)
    labels = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    loss = marginal_nll(scores, labels)
    assert loss.item() == pytest.approx(-math.log(0.75))
    loss.backward()
    assert torch.equal(scores.grad[1], torch.zeros(3))  # the positive-less row gets no gradient
    none = marginal_nll(scores, torch.zeros(2, 3))
    assert none.item() == 0.0 and none.requires_grad


def test_union_of_sparse_and_dense_halves():
    sparse = np.array([[0, 1, 2, 3], [5, 6, 7, 8]])
    dense = np.array([[1, 4, 0, 9], [6, 5, 8, 7]])  # row 2: dense adds nothing new
    out = union_candidates(sparse, dense, k=4, n_sparse=2)
    assert out.tolist() == [[0, 1, 4, 9], [5, 6, 8, 7]]
    assert all(len(set(row)) == 4 for row in out.tolist())
    assert union_candidates(sparse, dense, k=4, n_sparse=0).tolist()[0] == [1, 4, 0, 9]


def test_chunked_sparse_scores_equal_dense():
    names = ["renal failure", "heart failure", "asthma", "fever", "renal cyst", "cardiac arrest"]
    vec = fit_sparse(names)
    q, d = vec.transform(["renal failur", "astma", "hart failure"]), vec.transform(names)
    full = (q @ d.T).toarray()
    top = sparse_top_k(q, d, 3, chunk=2)
    assert top.tolist() == np.argsort(-full, axis=1, kind="stable")[:, :3].tolist()
    np.testing.assert_allclose(pair_scores(q, d, top), np.take_along_axis(full, top, 1),
                               rtol=1e-6)


def test_caps_keep_gold_ids():
    dictionary = pl.DataFrame({"name": [f"n{i}" for i in range(50)],
                               "ids": [[f"D{i % 10}"] for i in range(50)]})
    capped = cap_dictionary(dictionary, {"D3", "D7"}, 12, seed=0)
    assert capped.height == 12
    assert sum(ids[0] in ("D3", "D7") for ids in capped["ids"]) == 10  # all 10 gold names
    train = pl.DataFrame({"mention": ["a", "a", "b", "c"],
                          "ids": [["D1"], ["D1"], ["D1", "D2"], ["D3"]]})
    assert training_queries(train, 0, 0)["mention"].to_list() == ["a", "c"]  # no composites


def _variant(rng: random.Random, name: str) -> str:
    """One character dropped or doubled."""
    i = rng.randrange(1, len(name) - 1)
    return name[:i] + name[i + 1:] if rng.random() < 0.5 else name[:i] + name[i] + name[i:]


def test_training_beats_the_untrained_model(tmp_path, tiny_bert):
    """Typo'd mentions of pseudo-word names (KG names.parquet dictionary, PubTator test file):
    the TF-IDF term must be learned (its weight starts at 0), so Acc@1 has to rise."""
    rng = random.Random(0)

    def word() -> str:
        return "".join(rng.choice("abcdefghiklmnoprstuvy") for _ in range(rng.randint(5, 8)))

    names = []
    for c in range(40):
        a, b = word(), word()
        names += [(f"C{c:03d}", f"{a} {b}"), (f"C{c:03d}", f"{b} {a}itis")]
    pl.DataFrame({"cui": [c for c, _ in names], "name": [n for _, n in names], "source": "T",
                  "term_type": "PT", "is_preferred": True}
                 ).write_parquet(tmp_path / "names.parquet")
    (tmp_path / "train.concept").write_text("".join(
        f"{i}||0|1||Disease||{_variant(rng, n)}||{c}\n" for i, (c, n) in enumerate(names * 2)))
    lines = []
    for i, (c, n) in enumerate(names):
        m = _variant(rng, _variant(rng, n))
        lines += [f"{i}|t|{m}", f"{i}|a|", f"{i}\t0\t{len(m)}\t{m}\tDisease\tUMLS:{c}", ""]
    (tmp_path / "test.pubtator").write_text("\n".join(lines) + "\n")
    model = tiny_bert([n for _, n in names])
    args = (model, tmp_path / "names.parquet", tmp_path / "train.concept", None,
            tmp_path / "test.pubtator")
    before = evaluate_biosyn(*args, BiosynOptions(epochs=0))
    after = evaluate_biosyn(*args, BiosynOptions(epochs=3, lr=1e-4, sparse_lr=0.1,
                                                 batch_size=8, topk=8))
    assert before["counts"]["dictionary_names"] == 80 and after["counts"]["train_queries"] > 100
    assert after["task"] == "el_supervised"
    assert after["metrics"]["acc@1"] >= before["metrics"]["acc@1"] + 0.2
    assert after["metrics"]["acc@1"] >= 0.9


def test_cli_on_bc5cdr_disease_with_medic(tmp_path, shared_data, tiny_bert, capsys):
    el = shared_data("el")
    medic, data = el / "medic_06Jul2012.txt", el / "bc5cdr-disease"
    texts = read_dictionary(medic)["name"].to_list()[:2000]
    model = tiny_bert(texts + read_mentions(data / "train.concept")["mention"].to_list())
    out = tmp_path / "biosyn.json"
    assert main(["evaluate", "el-biosyn", "--model", str(model), "--dictionary", str(medic),
                 "--train", str(data / "train.concept"), "--dev", str(data / "dev.concept"),
                 "--test", str(data / "test.concept"), "--out", str(out), "--seed", "3",
                 "--benchmark", "bc5cdr-disease", "--label", "model=tiny", "--epochs", "1",
                 "--max-train", "64", "--max-dictionary", "300", "--match", "casefold",
                 "--filter-dictionary"]) == 0
    rec = json.loads(out.read_text())
    assert rec["task"] == "el_supervised" and rec["benchmark"] == "bc5cdr-disease"
    assert rec["seed"] == 3 and rec["labels"] == {"model": "tiny"}
    assert rec["counts"]["train_queries"] == 64
    # as el_zeroshot with the same refinement (tests/test_el_zeroshot.py: 456)
    assert rec["counts"]["refined_test_mentions"] == 456
    assert rec["counts"]["test_in_dictionary"] == 424
    assert rec["counts"]["dictionary_names_given"] == 76237  # MEDIC names, not its lines
    assert 300 <= rec["counts"]["dictionary_names"] < 76237
    assert rec["options"]["match"] == "casefold" and rec["options"]["filter_dictionary"]
    assert all(math.isfinite(v) and 0 <= v <= 1 for v in rec["metrics"].values())
    assert rec["metrics"]["acc@5"] >= rec["metrics"]["acc@1"]
    assert rec["options"]["topk"] == 20 and str(medic) in rec["data"]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["train_queries"] == 64


def test_pubtator_mentions_from_the_real_sample(shared_data):
    path = shared_data("pubtator/bc5cdr_sample.pubtator")
    fields = [line.split("\t") for line in path.read_text().splitlines() if "\t" in line]
    annotated = [f for f in fields if f[1].isdigit()]
    mentions = read_mentions(path)
    assert mentions.height == len(annotated) == 925
    with_ids = mentions.filter(pl.col("ids").list.len() > 0)
    assert with_ids.height == sum(f[5] != "-1" for f in annotated) == 923
    first = mentions.row(0, named=True)
    assert (first["doc_id"], first["mention"], first["ids"]) == ("26094", "depression",
                                                                  ["D003866"])
    composite = mentions.filter(pl.col("mention") == "renal and/or hepatic dysfunction")
    assert composite["ids"].to_list() == [["D007674", "D008107"]]


def test_pubtator_span_mismatch_and_ids(tmp_path):
    good = tmp_path / "ok.pubtator"
    good.write_text("1|t|Fever and gout.\n1|a|Renal failure.\n"
                    "1\t0\t5\tFever\tDisease\tMESH:D005334\n"
                    "1\t10\t14\tgout\tDisease\tD006073+OMIM:138900\n"
                    "1\t16\t29\tRenal failure\tDisease\t-1\n")
    assert read_mentions(good)["ids"].to_list() == [["D005334"], ["D006073", "138900"], []]
    bad = tmp_path / "bad.pubtator"
    bad.write_text("1|t|Fever and gout.\n1|a|\n1\t0\t5\tFever\tDisease\tD1\n"
                   "1\t11\t15\tgout\tDisease\tD2\n")  # 'out.' (' gout' would pass, padded)
    with pytest.raises(BaliInputError, match=r"bad.pubtator:4: mention 'gout' does not match"):
        read_mentions(bad)


def test_kg_names_dictionary(tmp_path):
    path = tmp_path / "names.parquet"
    pl.DataFrame({"cui": ["C1", "C1", "C2"], "name": ["fever", "pyrexia", " "],
                  "source": "MSH", "term_type": "PT", "is_preferred": True}).write_parquet(path)
    assert read_dictionary(path).to_dicts() == [{"name": "fever", "ids": ["C1"]},
                                                {"name": "pyrexia", "ids": ["C1"]}]
    pl.DataFrame({"cui": ["C1"], "name": [" "]}).write_parquet(path)
    with pytest.raises(BaliInputError, match=r"names.parquet: the dictionary is empty"):
        read_dictionary(path)
    pl.DataFrame({"cui": ["C1"]}).write_parquet(path)
    with pytest.raises(BaliInputError, match="missing column"):
        read_dictionary(path)
