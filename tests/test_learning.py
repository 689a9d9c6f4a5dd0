"""A learning test: alignment training must actually align (issue: measure that training helps).

A synthetic KG of 24 concepts whose names are distinct single tokens, a ring of edges, and
sentences that each mention one concept among filler words. Alignment only (no MLM), the paper's
randomly initialised GAT: in-batch text->graph accuracy starts at chance (~1/16) and must reach
>= 0.8. The same run with the loss sign flipped, or with the graph output detached (then only
the text side learns, towards the near-constant outputs of a random GAT; measured: it stays at
0.04-0.12), must stay near chance: both mutants run as controls, so the test proves it can fail.
"""

from __future__ import annotations

import json
import random

import polars as pl
import pytest
from conftest import make_tiny_bert

from bali.model.bali import BaliModel
from bali.model.config import ModelConfig
from bali.sample.schema import NODES, SUBGRAPHS
from bali.sample.tokenize import TokenizeOptions, tokenize_sample
from bali.text.schema import SENTENCES
from bali.train.config import TrainConfig
from bali.train.loop import pretrain

NAMES = [f"{a}{b}x" for a in "bdfgkmpt" for b in "aeo"]  # 24 distinct words: bax, bex, ...
FILLER = "we saw the case of a patient with this in our clinic today".split()
STEPS, BATCH = 150, 16


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("learn")
    rnd = random.Random(0)
    rows = []
    for i in range(384):
        cui = f"C{i % len(NAMES):02d}"
        words = rnd.sample(FILLER, 4)
        start = len(" ".join(words)) + 1
        name = NAMES[int(cui[1:])]
        text = " ".join([*words, name, *rnd.sample(FILLER, 3)])
        rows.append({"doc_id": f"d{i}", "sentence_id": 0, "start": 0, "end": len(text),
                     "text": text,
                     "mentions": [{"start": start, "end": start + len(name), "cui": cui}]})
    sample = pl.DataFrame(rows, schema=SENTENCES)
    model_dir = make_tiny_bert(root / "bert", [*sample["text"].to_list(), *NAMES] * 4, 400)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    assert all(len(tok.tokenize(n)) == 1 for n in NAMES), "names must be single tokens"
    cuis = [f"C{i:02d}" for i in range(len(NAMES))]
    subgraphs = pl.DataFrame(
        [{"cui": c, "degree": 2, "neighbors": [
            {"cui": cuis[(i + d) % len(cuis)], "relation": "next", "direction": "out"}
            for d in (1, -1)]} for i, c in enumerate(cuis)], schema=SUBGRAPHS)
    nodes = pl.DataFrame([{"cui": c, "names": [n]} for c, n in zip(cuis, NAMES, strict=True)],
                         schema=NODES)
    out = root / "shards"
    tokenize_sample(sample, subgraphs, nodes, model_dir, out, TokenizeOptions(max_length=32))
    return out, model_dir


def _final_accuracy(shards, run_dir) -> float:
    shards_dir, model_dir = shards
    mcfg = ModelConfig(model=str(model_dir), graph_encoder="gat", gnn_layers=2,
                       mlm_weight=0.0, max_neighbors=2, gnn_skip=False,
                       neighbor_negatives=False)
    tcfg = TrainConfig(steps=STEPS, batch_size=BATCH, lr_lm=3e-3, lr_other=3e-3,
                       warmup_ratio=0.0, checkpoint_every=1000, seed=0)
    pretrain(shards_dir, run_dir, mcfg, tcfg, progress=False)
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return sum(r["align_acc"] for r in rows[-10:]) / 10, rows[0]["align_acc"]


def test_alignment_learns_and_its_mutants_do_not(shards, tmp_path, monkeypatch):
    final, first = _final_accuracy(shards, tmp_path / "ok")
    assert first < 0.3, first  # starts near chance (1/16 of the batch's concepts)
    assert final >= 0.8, final

    flipped = BaliModel.forward

    def sign_flipped(self, batch):
        out = flipped(self, batch)
        out["loss"] = -out["loss"]
        return out

    monkeypatch.setattr(BaliModel, "forward", sign_flipped)
    assert _final_accuracy(shards, tmp_path / "flipped")[0] < 0.3
    monkeypatch.undo()

    node_vectors = BaliModel.node_vectors

    def detached(self, batch):
        graph, names = node_vectors(self, batch)
        return graph.detach(), names

    monkeypatch.setattr(BaliModel, "node_vectors", detached)
    assert _final_accuracy(shards, tmp_path / "detached")[0] < 0.3
