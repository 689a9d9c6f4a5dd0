"""The exported BALI model keeps every weight of its base checkpoint (issue 22): a base saved
as a bare encoder with a pooler (as all-MiniLM-L6-v2 is) is pretrained for 2 steps and
exported; every base tensor is in the export, the pooler unchanged, and the fine-tuning heads
load with no missing encoder weight."""

from __future__ import annotations

import polars as pl
import pytest
import torch
from conftest import mention_corpus
from safetensors.torch import load_file

from bali.model.config import ModelConfig
from bali.sample.schema import NODES, SUBGRAPHS
from bali.sample.tokenize import TokenizeOptions, tokenize_sample
from bali.train.config import TrainConfig
from bali.train.export import base_only_tensors, export_run, read_checkpoint
from bali.train.loop import pretrain

CONCEPTS = {"C1": ["alpha fever"], "C2": ["beta syndrome"], "C3": ["gamma cells"],
            "C4": ["delta protein"]}
EDGES = [("C1", "is_a", "C2"), ("C3", "part_of", "C4"), ("C4", "is_a", "C2")]
FILLER = "the patient showed signs of and improved after treatment".split()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(base dir, export dir) of a 2-step BALI run from a bare BertModel base with a pooler."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    root = tmp_path_factory.mktemp("export")
    sample = mention_corpus(CONCEPTS, FILLER, 32, lambda rnd: 2)
    wp = BertWordPieceTokenizer(lowercase=True)
    wp.train_from_iterator(sample["text"].to_list() + ["is a part of"], vocab_size=99,
                           min_frequency=1, show_progress=False)
    base = root / "base"
    tok = BertTokenizerFast(tokenizer_object=wp._tokenizer, unk_token="[UNK]",
                            pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
                            mask_token="[MASK]", do_lower_case=True)
    assert tok.vocab_size <= 99
    tok.save_pretrained(str(base))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg, add_pooling_layer=True).save_pretrained(str(base))  # keys without "bert."
    subgraphs = pl.DataFrame(
        [{"cui": c, "degree": 1, "neighbors": [
            {"cui": t if h == c else h, "relation": r, "direction": "out" if h == c else "in"}
            for h, r, t in EDGES if c in (h, t)]} for c in sorted(CONCEPTS)], schema=SUBGRAPHS)
    nodes = pl.DataFrame([{"cui": c, "names": n} for c, n in sorted(CONCEPTS.items())],
                         schema=NODES)
    shards = root / "shards"
    tokenize_sample(sample, subgraphs, nodes, base, shards, TokenizeOptions(max_length=32))
    mcfg = ModelConfig(model=str(base), gnn_layers=2)
    tcfg = TrainConfig(steps=2, batch_size=8, lr_lm=3e-3, lr_other=3e-3, warmup_ratio=0.0,
                       checkpoint_every=1000, seed=0)
    pretrain(shards, root / "run", mcfg, tcfg, progress=False)
    summary = export_run(root / "run", root / "hf")
    assert summary["base_tensors_copied"] == ["bert.pooler.dense.bias",
                                              "bert.pooler.dense.weight"]
    return base, root / "hf"


def test_every_base_tensor_is_exported(exported):
    base_dir, out = exported
    base = read_checkpoint(base_dir)
    saved = load_file(str(out / "model.safetensors"))
    assert {"pooler.dense.weight", "pooler.dense.bias"} <= set(base)
    missing = [k for k in base if f"bert.{k}" not in saved]
    assert not missing, missing
    for key in ("pooler.dense.weight", "pooler.dense.bias"):
        assert torch.equal(saved[f"bert.{key}"], base[key])
    # BALI trained the encoder: its other tensors are not the base's
    assert not torch.equal(saved["bert.embeddings.word_embeddings.weight"],
                           base["embeddings.word_embeddings.weight"])


def test_heads_load_without_missing_encoder_weights(exported):
    from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification

    base_dir, out = exported
    pooler = read_checkpoint(base_dir)["pooler.dense.weight"]
    model, info = AutoModel.from_pretrained(out, output_loading_info=True)
    assert info["missing_keys"] == set() or not info["missing_keys"]
    assert torch.equal(model.pooler.dense.weight, pooler)
    clf, info = AutoModelForSequenceClassification.from_pretrained(
        out, num_labels=3, output_loading_info=True)
    assert all(k.startswith("classifier.") for k in info["missing_keys"]), info["missing_keys"]
    assert torch.equal(clf.bert.pooler.dense.weight, pooler)
    mlm, info = AutoModelForMaskedLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"], info["missing_keys"]  # the MLM head BALI trained
    trained = load_file(str(out / "model.safetensors"))
    assert torch.equal(mlm.cls.predictions.transform.dense.weight,
                       trained["cls.predictions.transform.dense.weight"])


def test_base_only_tensors_names():
    """A bare-encoder base gets the LM's prefix; a base with heads keeps its names; tensors
    the LM has (tied decoder included) are never copied."""
    from transformers import BertConfig, BertForMaskedLM

    cfg = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    lm = BertForMaskedLM(cfg)
    t = torch.zeros(2)
    bare = {"pooler.dense.bias": t, "embeddings.word_embeddings.weight": torch.zeros(99, 32)}
    assert list(base_only_tensors(bare, lm)) == ["bert.pooler.dense.bias"]
    heads = {"bert.pooler.dense.bias": t, "cls.seq_relationship.bias": t,
             "cls.predictions.decoder.weight": torch.zeros(99, 32)}
    assert sorted(base_only_tensors(heads, lm)) == ["bert.pooler.dense.bias",
                                                    "cls.seq_relationship.bias"]
