"""Validation during pretraining: dev metrics in metrics.jsonl, held-out sentences, best-dev
weights and their export, resume, and that validation itself never changes training."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import test_pretrain
import torch
from safetensors.torch import load_file
from test_pretrain import CONCEPTS, _configs

from bali.train.data import BatchDataset
from bali.train.export import export_run
from bali.train.loop import pretrain


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(shards dir, tiny model dir) of test_pretrain's KG."""
    return test_pretrain.setup.__wrapped__(tmp_path_factory)


def _rows(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def dev_files(tmp_path):
    """A BioSyn dictionary of the test KG and dev mentions (second names, first for C2/C3)."""
    dictionary = tmp_path / "dict.txt"
    dictionary.write_text("".join(f"{c}||{'|'.join(n)}\n" for c, n in CONCEPTS.items()))
    mentions = tmp_path / "dev.concept"
    mentions.write_text("".join(f"d||0|0||T||{n[-1]}||{c}\n" for c, n in CONCEPTS.items()))
    return dictionary, mentions


def _validating(tcfg, dev_files, **kw):
    dictionary, mentions = dev_files
    return replace(tcfg, validate_every=4, validate_dictionary=str(dictionary),
                   validate_mentions=str(mentions), validate_max_names=2, **kw)


def test_dev_metrics_logged_and_training_unchanged(setup, tmp_path, dev_files):
    shards, model_dir = setup
    mcfg, tcfg = _configs(model_dir, steps=10)
    pretrain(shards, tmp_path / "plain", mcfg, tcfg, progress=False)
    pretrain(shards, tmp_path / "val", mcfg, _validating(tcfg, dev_files, validate_sentences=0),
             progress=False)
    rows = _rows(tmp_path / "val")
    dev = [r for r in rows if "dev_acc1" in r]
    assert [r["step"] for r in dev] == [0, 4, 8, 10]  # base model, every 4 steps, the last
    assert all(0 <= r["dev_acc1"] <= r["dev_acc5"] <= 1 for r in dev)
    assert "dev_align_acc" not in dev[1]  # no held-out sentences
    # validation draws no random numbers and trains nothing: the same losses and weights
    assert [r["loss"] for r in rows if "loss" in r] == [r["loss"] for r in _rows(
        tmp_path / "plain")]
    assert (tmp_path / "val" / "model.safetensors").read_bytes() == (
        tmp_path / "plain" / "model.safetensors").read_bytes()
    best = json.loads((tmp_path / "val" / "best.json").read_text())
    assert best["dev_acc1"] == max(r["dev_acc1"] for r in dev[1:])
    assert best["step"] == min(r["step"] for r in dev[1:] if r["dev_acc1"] == best["dev_acc1"])


def test_held_out_sentences_are_disjoint_from_training(setup):
    shards, _ = setup
    split = BatchDataset.split_indices(64, 16, seed=0)
    assert len(split["dev"]) == 16 and len(split["train"]) == 48
    assert not set(split["dev"]) & set(split["train"])
    assert np.array_equal(split["dev"], BatchDataset.split_indices(64, 16, seed=0)["dev"])
    assert np.array_equal(BatchDataset.split_indices(64, 0, 0)["train"], np.arange(64))
    from bali.train.data import SpecialIds

    special = SpecialIds(0, 2, 3, 4, 100)
    kw = dict(special=special, batch_size=8, seed=0, max_neighbors=2, mlm_probability=0.15,
              dev_sentences=16)
    train, dev = BatchDataset(shards, **kw), BatchDataset(shards, **kw, split="dev")
    assert len(dev) == 2 and train.per_epoch == 6
    seen = {int(i) for n in range(train.per_epoch) for i in train.indices(n)}
    held = {int(i) for n in range(len(dev)) for i in dev.indices(n)}
    assert held == set(split["dev"].tolist()) and not seen & held


def test_validation_with_held_out_sentences_and_best_dev_export(setup, tmp_path, dev_files):
    shards, model_dir = setup
    mcfg, tcfg = _configs(model_dir, steps=8)
    run = tmp_path / "run"
    pretrain(shards, run, mcfg, _validating(tcfg, dev_files, validate_sentences=16),
             progress=False)
    dev = [r for r in _rows(run) if "dev_acc1" in r]
    assert all(0 <= r["dev_align_acc"] <= 1 for r in dev)
    best = json.loads((run / "best.json").read_text())
    export_run(run, tmp_path / "hf", select="best-dev")
    exported = load_file(str(tmp_path / "hf" / "model.safetensors"))
    best_weights = load_file(str(run / "best.safetensors"))
    key = next(k for k in exported if k.endswith("word_embeddings.weight"))
    torch.testing.assert_close(exported[key], best_weights[next(
        k for k in best_weights if k.endswith(key))])
    assert json.loads((tmp_path / "hf" / "bali_export.json").read_text())["step"] == best["step"]


def test_best_dev_needs_validation_and_resume_forgets_later_best(setup, tmp_path, dev_files):
    from bali.io import BaliInputError
    from bali.train.checkpoint import forget_best_after

    shards, model_dir = setup
    mcfg, tcfg = _configs(model_dir, steps=3)
    pretrain(shards, tmp_path / "plain", mcfg, tcfg, progress=False)
    with pytest.raises(BaliInputError, match="best-dev"):
        export_run(tmp_path / "plain", tmp_path / "hf", select="best-dev")
    run = tmp_path / "plain"
    (run / "best.json").write_text(json.dumps({"step": 3, "dev_acc1": 0.5}))
    (run / "best.safetensors").write_bytes(b"x")
    forget_best_after(run, 3)
    assert (run / "best.json").exists()
    forget_best_after(run, 2)  # resumed from step 2: a best of step 3 is gone
    assert not (run / "best.json").exists() and not (run / "best.safetensors").exists()


def test_mention_tokens_are_never_masked_unless_asked(setup):
    from bali.model.pooling import entity_tokens
    from bali.train.data import SpecialIds

    shards, _ = setup
    special = SpecialIds(0, 2, 3, 4, 100)
    kw = dict(special=special, batch_size=8, seed=0, max_neighbors=2, mlm_probability=0.5)
    masked = {True: 0, False: 0}
    for flag in (True, False):
        data = BatchDataset(shards, **kw, mask_mentions=flag)
        for n in range(4):
            b = data[n]
            tb, tp, _ = entity_tokens(b["mention_batch"], b["mention_start"], b["mention_end"],
                                      b["mention_entity"])
            masked[flag] += int((b["mlm_labels"][tb, tp] != -100).sum())
            assert (b["mlm_labels"] != -100).any()  # the other tokens are still masked
    assert masked[False] == 0 and masked[True] > 0


def test_dev_dictionary_keeps_gold_hard_and_random_names(setup, tmp_path):
    from transformers import AutoTokenizer

    from bali.train.validate import DevLinking

    _, model_dir = setup
    names = ["alpha fever", "alpha fevers", "beta syndrome", "gamma cells", "delta protein",
             "epsilon gene", "zeta disease", "eta fever"]
    (tmp_path / "d.txt").write_text("".join(f"C{i}||{n}\n" for i, n in enumerate(names)))
    (tmp_path / "m.concept").write_text("d||0|0||T||alpha feverish||C0\n")
    tok = AutoTokenizer.from_pretrained(model_dir)
    plain = DevLinking(tmp_path / "d.txt", tmp_path / "m.concept", tok, 0, 10, 0)
    assert plain.dictionary["name"].to_list() == ["alpha fever"]  # the gold names only
    hard = DevLinking(tmp_path / "d.txt", tmp_path / "m.concept", tok, 0, 10, 0, hard_names=2)
    # the 2 nearest by character 1-2-gram TF-IDF: the gold name and its plural
    assert hard.dictionary["name"].to_list() == ["alpha fever", "alpha fevers"]
    both = DevLinking(tmp_path / "d.txt", tmp_path / "m.concept", tok, 3, 10, 0, hard_names=2)
    assert both.dictionary.height == 5 and set(hard.dictionary["name"]) <= set(
        both.dictionary["name"])


def test_dev_mentions_are_refined_as_the_test_when_asked(setup, tmp_path):
    """validate_seen / validate_filter_dictionary: the dev rows a train mention or a dictionary
    name spells are dropped, then duplicates, and each removal is counted."""
    from transformers import AutoTokenizer

    from bali.train.validate import DevLinking

    _, model_dir = setup
    (tmp_path / "d.txt").write_text("C0||alpha fever|alpha fevers\nC1||beta syndrome\n"
                                    "C2||gamma cells\n")
    rows = [("alpha fever", "C0"),        # a dictionary name
            ("Alpha feverish", "C0"),     # kept
            ("Alpha feverish", "C0"),     # duplicate of the row above
            ("beta syndromes", "C1"),     # a train mention: seen
            ("Beta syndromes", "C1"),     # seen under casefold only
            ("gamma cell", "-1"),         # no id
            ("the gamma cells", "C2")]    # kept
    (tmp_path / "dev.concept").write_text(
        "".join(f"d||0|0||T||{m}||{i}\n" for m, i in rows))
    (tmp_path / "train.concept").write_text("t||0|0||T||beta syndromes||C1\n")
    tok = AutoTokenizer.from_pretrained(model_dir)

    def mentions(**kw) -> tuple[list[str], dict]:
        d = DevLinking(tmp_path / "d.txt", tmp_path / "dev.concept", tok, 0, 10, 0, **kw)
        return d.mentions["mention"].to_list(), d.counts

    plain, counts = mentions()
    assert len(plain) == 6 and counts == {"dev_mentions": 6}
    got, counts = mentions(seen=(tmp_path / "train.concept",), filter_dictionary=True)
    assert got == ["Alpha feverish", "Beta syndromes", "the gamma cells"]
    assert counts == {"dev_without_id": 1, "dev_seen": 1, "dev_in_dictionary": 1,
                      "dev_duplicates": 1, "dev_mentions": 3}
    got, _ = mentions(seen=(tmp_path / "train.concept",), match="casefold")
    assert got == ["alpha fever", "Alpha feverish", "the gamma cells"]
