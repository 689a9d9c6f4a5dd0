"""Pretraining on CPU with a tiny random BERT built in code: every variant trains, resume is
exact, DeepSpeed runs in one process, export loads with AutoModel."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
import torch
from conftest import mention_corpus

from bali.model.config import ModelConfig
from bali.sample.schema import NODES, SUBGRAPHS
from bali.sample.tokenize import TokenizeOptions, tokenize_sample
from bali.train.config import TrainConfig
from bali.train.loop import pretrain

CONCEPTS = {
    "C1": ["alpha fever", "fever alpha"], "C2": ["beta syndrome"], "C3": ["gamma cells"],
    "C4": ["delta protein", "protein delta"], "C5": ["epsilon gene"], "C6": ["zeta disease"],
}
EDGES = [("C1", "is_a", "C6"), ("C2", "is_a", "C6"), ("C3", "part_of", "C4"),
         ("C4", "is_a", "C5"), ("C5", "associated_with", "C2"), ("C6", "related", "C3")]
FILLER = "the patient showed signs of and improved after treatment with low doses".split()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(shards dir, tiny model dir)."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    root = tmp_path_factory.mktemp("pre")
    sample = mention_corpus(CONCEPTS, FILLER, 64)
    texts = sample["text"].to_list() + [n for ns in CONCEPTS.values() for n in ns] + [
        "is a part of associated with related"]
    wp = BertWordPieceTokenizer(lowercase=True)
    wp.train_from_iterator(texts, vocab_size=200, min_frequency=1)
    model_dir = root / "tiny-bert"
    tok = BertTokenizerFast(tokenizer_object=wp._tokenizer, unk_token="[UNK]",
                            pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
                            mask_token="[MASK]", do_lower_case=True)
    tok.save_pretrained(str(model_dir))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=128)
    BertForMaskedLM(cfg).save_pretrained(str(model_dir))
    edges = pl.DataFrame(EDGES, schema=["head", "relation", "tail"], orient="row")
    subgraphs = pl.DataFrame(
        [{"cui": c, "degree": 2, "neighbors": [
            {"cui": t if h == c else h, "relation": r, "direction": "out" if h == c else "in"}
            for h, r, t in edges.rows() if c in (h, t)]} for c in sorted(CONCEPTS)],
        schema=SUBGRAPHS)
    nodes = pl.DataFrame([{"cui": c, "names": n} for c, n in sorted(CONCEPTS.items())],
                         schema=NODES)
    shards = root / "shards"
    tokenize_sample(sample, subgraphs, nodes, model_dir, shards, TokenizeOptions(max_length=48))
    return shards, model_dir


def _configs(model_dir: Path, steps: int = 20, **model_kw) -> tuple[ModelConfig, TrainConfig]:
    mcfg = ModelConfig(**({"model": str(model_dir), "gnn_layers": 2} | model_kw))
    tcfg = TrainConfig(steps=steps, batch_size=8, lr_lm=3e-3, lr_other=3e-3, warmup_ratio=0.0,
                       checkpoint_every=1000, seed=0)
    return mcfg, tcfg


def _losses(run: Path, key: str = "loss") -> list[float]:
    return [json.loads(line)[key] for line in (run / "metrics.jsonl").read_text().splitlines()]


VARIANTS = [
    {"graph_encoder": g} for g in ("gat", "sage", "linear", "distmult", "transe", "textual")
] + [{"alignment": "ms"}, {"alignment": "cls"}, {"pooling": "weighted"}, {"pooling": "gat"},
     {"pooling": "transformer"}, {"mlm_weight": 0.0}, {"align_weight": 0.0},
     {"gnn_layers": 3, "use_relations": False}]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={x}"
                                                                      for k, x in v.items()))
def test_every_variant_trains(setup, tmp_path, variant):
    shards, model_dir = setup
    mcfg, tcfg = _configs(model_dir, **variant)
    pretrain(shards, tmp_path / "run", mcfg, tcfg, progress=False)
    losses = _losses(tmp_path / "run")
    assert len(losses) == 20 and all(map(lambda x: x == x, losses))  # no NaN
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    if variant.get("mlm_weight") == 0.0:
        assert all(r["mlm_loss"] == 0 for r in rows)
    if variant.get("align_weight") == 0.0:
        assert all(r["align_loss"] == 0 for r in rows) and "align_acc" not in rows[0]
    else:
        assert 0.0 <= rows[-1]["align_acc"] <= 1.0
    assert set(rows[0]) >= {"step", "loss", "mlm_loss", "align_loss", "lr", "samples_per_s"}
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000


def test_resume_is_exact(setup, tmp_path, monkeypatch):
    from bali.train import loop

    shards, model_dir = setup
    mcfg, tcfg = _configs(model_dir, steps=12)
    tcfg = replace(tcfg, checkpoint_every=4)
    pretrain(shards, tmp_path / "full", mcfg, tcfg, progress=False)
    monkeypatch.setattr(loop, "_HALT_AFTER", 7)
    halted = pretrain(shards, tmp_path / "crash", mcfg, tcfg, progress=False)
    monkeypatch.setattr(loop, "_HALT_AFTER", None)
    assert halted["halted_at"] == 7  # "killed" after step 7; the newest checkpoint is step 4
    assert (tmp_path / "crash" / "checkpoints" / "latest").read_text() == "step_4"
    summary = pretrain(shards, tmp_path / "crash", mcfg, tcfg, progress=False, resume=True)
    assert summary["resumed_from"] == 4
    full, resumed = _losses(tmp_path / "full"), _losses(tmp_path / "crash")
    assert len(resumed) == 12 and resumed == full
    assert (tmp_path / "full" / "model.safetensors").read_bytes() == (
        tmp_path / "crash" / "model.safetensors").read_bytes()


def test_export_loads_with_automodel(setup, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from bali.train.export import export_run

    shards, model_dir = setup
    mcfg, tcfg = _configs(model_dir, steps=3)
    pretrain(shards, tmp_path / "run", mcfg, tcfg, progress=False)
    export_run(tmp_path / "run", tmp_path / "hf")
    assert (tmp_path / "hf" / "model.safetensors").exists()
    assert (tmp_path / "hf" / "bali_graph.safetensors").exists()
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "BALI-pretrained" in card and "No evaluation results yet" in card
    meta = json.loads((shards / "meta.json").read_text())["counts"]
    assert f"| {meta['sentences']:,} | {meta['mentions']:,} | {meta['tokens']:,} |" in card
    assert "3 of 3 steps" in card
    assert json.loads((tmp_path / "run" / "config.json").read_text())["attention"] == "sdpa"
    _card_with_results(tmp_path / "run", tmp_path / "hf")
    encoder = AutoModel.from_pretrained(tmp_path / "hf")
    tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    original = AutoModel.from_pretrained(model_dir)
    batch = tok(["alpha fever and beta syndrome"], return_tensors="pt")
    with torch.no_grad():
        trained = encoder(**batch).last_hidden_state
        before = original(**batch).last_hidden_state
    assert trained.shape == before.shape and not torch.allclose(trained, before)


def _card_with_results(run: Path, hf: Path) -> None:
    """``bali card`` adds the evaluation results to the card (and its model-index)."""
    import yaml

    from bali.cli import main

    result = hf.parent / "seed0.json"
    result.write_text(json.dumps({
        "task": "el_zeroshot", "benchmark": "toy", "model": str(hf), "labels": {}, "seed": 0,
        "metrics": {"acc@1": 0.625, "acc@5": 0.75}, "primary": "acc@1", "options": {},
        "counts": {}, "data": {}, "notes": [], "seconds": 1.0, "bali_version": "0"}))
    assert main(["card", "--run-dir", str(run), "--model-dir", str(hf), "--results",
                 str(result), "--variant", "gat"]) == 0
    card = (hf / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["base_model"] and front["model-index"][0]["results"][0]["metrics"][0] == {
        "type": "acc@1", "value": 0.625}
    assert "| toy | el_zeroshot | 0 | acc@1 62.50, acc@5 75.00 |" in card


def test_deepspeed_backend_on_cpu(setup, tmp_path, monkeypatch):
    pytest.importorskip("deepspeed")
    from bali.distributed import free_port

    shards, model_dir = setup
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    monkeypatch.setenv("DS_ACCELERATOR", "cpu")
    mcfg, tcfg = _configs(model_dir, steps=6)
    root = Path(__file__).resolve().parents[1]
    tcfg = replace(tcfg, backend="deepspeed", checkpoint_every=3,
                   deepspeed_config=str(root / "config/deepspeed/zero2.json"))
    pretrain(shards, tmp_path / "ds", mcfg, tcfg, progress=False)
    losses = _losses(tmp_path / "ds")
    assert len(losses) == 6 and all(x == x for x in losses)
    assert (tmp_path / "ds" / "checkpoints" / "latest").read_text() == "step_6"
    assert (tmp_path / "ds" / "model.safetensors").exists()
