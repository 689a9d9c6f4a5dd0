"""Length-bucketed training batches (``BatchDataset(bucket=k)``), ``from_configs``, and the
vectorised collation against a straightforward per-item reference."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from bali.model.config import ModelConfig
from bali.shards import (
    NAMES_SCHEMA,
    NODES_SCHEMA,
    SENTENCES_SCHEMA,
    NodeTable,
    ShardDataset,
    list_array,
    sentence_lengths,
    write_ipc,
)
from bali.train.config import TrainConfig
from bali.train.data import BatchDataset, SpecialIds

SP = SpecialIds(pad=0, cls=1, sep=2, mask=3, vocab_size=100)
N_SENT, N_NODES, N_CONCEPTS, ROWS_PER_BATCH = 600, 90, 40, 128
KW = dict(batch_size=16, seed=0, max_neighbors=3, mlm_probability=0.15)


def _lists(rows) -> pa.ListArray:
    counts = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    flat = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows]) if rows else []
    return list_array(offsets, np.asarray(flat, dtype=np.int32))


def _batches(schema: pa.Schema, columns: list[list], rows: int = ROWS_PER_BATCH):
    """Record batches of ``rows`` rows (several per file: the readers must cross them)."""
    for a in range(0, len(columns[0]), rows):
        cols = []
        for field, col in zip(schema, columns, strict=True):
            part = col[a:a + rows]
            cols.append(_lists(part) if pa.types.is_list(field.type)
                        else pa.array(part, field.type))
        yield pa.record_batch(cols, schema=schema)


def write_shards(out: Path, seed: int = 0) -> Path:
    """A synthetic shard directory in the real format (:mod:`bali.shards`, its IPC writer):
    sentences of 4..60 tokens with 1-3 mentions of 40 concepts, 90 nodes with 0-6 pool
    neighbours and 1-3 names each."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    ids, starts, ends, concepts = [], [], [], []
    for _ in range(N_SENT):
        n = int(rng.integers(4, 61))
        ids.append([SP.cls, *rng.integers(5, SP.vocab_size, n - 2).tolist(), SP.sep])
        k = int(rng.integers(1, 4))
        s = rng.integers(1, n - 2, k)
        starts.append(s.tolist())
        ends.append(np.minimum(s + rng.integers(1, 4, k), n - 1).tolist())
        concepts.append(rng.integers(0, N_CONCEPTS, k).tolist())
    write_ipc(out / "sentences.arrow", SENTENCES_SCHEMA, _batches(SENTENCES_SCHEMA, [
        [f"d{i}" for i in range(N_SENT)], [0] * N_SENT, ids, starts, ends, concepts]))
    names_per = rng.integers(1, 4, N_NODES)
    n_names = int(names_per.sum())
    name_ids = np.split(np.arange(n_names), np.cumsum(names_per)[:-1])
    pools = [rng.choice(N_NODES, int(rng.integers(0, 7)), replace=False) for _ in range(N_NODES)]
    write_ipc(out / "nodes.arrow", NODES_SCHEMA, _batches(NODES_SCHEMA, [
        [f"C{i}" for i in range(N_NODES)], name_ids, pools,
        [rng.integers(0, 4, len(p)) for p in pools]], rows=32))
    names = [[SP.cls, *rng.integers(5, SP.vocab_size, int(rng.integers(1, 9))).tolist(), SP.sep]
             for _ in range(n_names)]
    write_ipc(out / "names.arrow", NAMES_SCHEMA,
               _batches(NAMES_SCHEMA, [list(range(n_names)), names], rows=64))
    (out / "relations.json").write_text(json.dumps(["in:a", "in:b", "out:a", "out:b"]))
    (out / "meta.json").write_text(json.dumps({
        "format": "bali-shards/1", "pad_token_id": SP.pad, "cls_token_id": SP.cls,
        "sep_token_id": SP.sep, "mask_token_id": SP.mask, "vocab_size": SP.vocab_size}))
    return out


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return write_shards(tmp_path_factory.mktemp("bucket") / "shards")


def _epoch(ds: BatchDataset, epoch: int) -> list[np.ndarray]:
    return [ds.indices(epoch * ds.per_epoch + j) for j in range(ds.per_epoch)]


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def _pad_share(ds: BatchDataset, n: int) -> float:
    masks = [ds[i]["attention_mask"] for i in range(n)]
    return sum(int((~m).sum()) for m in masks) / sum(m.numel() for m in masks)


def test_sentence_lengths_from_offsets(shards):
    data = ShardDataset(shards)
    assert sentence_lengths(shards).tolist() == [len(data[i]["input_ids"])
                                                 for i in range(len(data))]


def test_bucket_zero_is_the_plain_shuffle(shards):
    ds = BatchDataset(shards, SP, **KW, num_batches=100, bucket=0)
    for epoch in (0, 1, 3):
        perm = ds.pool[np.random.default_rng([0, epoch]).permutation(len(ds.pool))]
        for j, got in enumerate(_epoch(ds, epoch)):
            assert np.array_equal(got, perm[j * 16:(j + 1) * 16])


@pytest.mark.parametrize("bucket", [1, 4, 100])
def test_bucketed_epoch_has_every_sentence_once(shards, bucket):
    plain = BatchDataset(shards, SP, **KW, dev_sentences=50)
    ds = BatchDataset(shards, SP, **KW, dev_sentences=50, bucket=bucket)
    assert ds.per_epoch == plain.per_epoch == 550 // 16
    lengths = sentence_lengths(shards)
    for epoch in (0, 1):
        got = np.concatenate(_epoch(ds, epoch))
        kept = np.concatenate(_epoch(plain, epoch))  # the same remainder is dropped
        assert len(got) == len(np.unique(got)) == 34 * 16
        assert np.array_equal(np.sort(got), np.sort(kept))
        assert not np.isin(got, ds.split_indices(N_SENT, 50, 0)["dev"]).any()
        # each window of bucket x B shuffled sentences, sorted by length, cut into batches
        window, expected = bucket * 16, set()
        for w0 in range(0, len(kept), window):
            members = kept[w0:w0 + window]
            members = members[np.argsort(lengths[members], kind="stable")]
            expected |= {tuple(b) for b in members.reshape(-1, 16).tolist()}
        assert {tuple(b) for b in _epoch(ds, epoch)} == expected
        spans = [np.ptp(lengths[b]) for b in _epoch(ds, epoch)]
        if bucket > 1:  # bucket 1 sorts within a batch: the same batches, reordered
            assert np.mean(spans) < np.mean([np.ptp(lengths[b]) for b in _epoch(plain, epoch)])
    # the batch order is shuffled, not sorted by length
    first = [int(lengths[b].min()) for b in _epoch(ds, 0)]
    assert first != sorted(first)


def test_bucketing_is_deterministic_and_seeded(shards):
    a = BatchDataset(shards, SP, **KW, num_batches=80, bucket=4)
    b = BatchDataset(shards, SP, **KW, num_batches=80, bucket=4)
    c = BatchDataset(shards, SP, **(KW | {"seed": 1}), num_batches=80, bucket=4)
    assert all(np.array_equal(a.indices(n), b.indices(n)) for n in range(80))
    assert not all(np.array_equal(a.indices(n), c.indices(n)) for n in range(80))
    assert _equal(a[5], b[5]) and not _equal(a[5], c[5])
    # resume by index: a fresh dataset's batch 70 (epoch 1) = after walking batches 0..69
    for n in range(70):
        a.indices(n)
    fresh = BatchDataset(shards, SP, **KW, num_batches=80, bucket=4)
    assert _equal(fresh[70], a[70]) and _equal(fresh[3], b[3])


def test_the_same_batches_from_dataloader_workers(shards):
    ds = BatchDataset(shards, SP, **KW, num_batches=6, bucket=4)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    assert all(_equal(got, ds[n]) for n, got in enumerate(loader))


def test_bucketing_cuts_padding(shards):
    plain = BatchDataset(shards, SP, **KW, bucket=0)
    bucketed = BatchDataset(shards, SP, **KW, bucket=8)
    before, after = _pad_share(plain, plain.per_epoch), _pad_share(bucketed, plain.per_epoch)
    assert before > 0.3 and after < 0.5 * before


def test_ranks_split_the_world_one_batches(shards):
    kw = KW | {"bucket": 4, "dev_sentences": 24}  # 576 train sentences: 36 batches an epoch
    one = BatchDataset(shards, SP, **kw, num_batches=72)
    ranks = [BatchDataset(shards, SP, **kw, num_batches=36, rank=r, world=2) for r in (0, 1)]
    assert one.per_epoch == 36
    for epoch in (0, 1):  # 18 global pairs of batches an epoch
        own = [np.concatenate([ranks[r].indices(n * 2 + r) for n in range(epoch * 18,
                                                                          epoch * 18 + 18)])
               for r in (0, 1)]
        assert not np.intersect1d(own[0], own[1]).size
        assert np.array_equal(np.sort(np.concatenate(own)), np.sort(np.concatenate(
            _epoch(one, epoch))))
    for n in (0, 1, 7, 30):
        assert _equal(ranks[0][n], one[2 * n]) and _equal(ranks[1][n], one[2 * n + 1])


def test_dev_split_stays_in_order(shards):
    dev = BatchDataset(shards, SP, **KW, dev_sentences=64, split="dev", bucket=8)
    held = BatchDataset.split_indices(N_SENT, 64, 0)["dev"]
    assert dev.bucket == 0 and np.array_equal(np.concatenate(_epoch(dev, 0)), held)


def test_from_configs_equals_the_hand_built_dataset(shards):
    mcfg = ModelConfig(max_neighbors=2, mlm_probability=0.3, mask_mentions=True,
                       linear_max_length=20)
    tcfg = TrainConfig(batch_size=8, seed=3, steps=7, grad_accum=2, bucket=4,
                       validate_every=5, validate_sentences=40)
    hand = dict(batch_size=8, seed=3, max_neighbors=2, mlm_probability=0.3, mask_tokens=True,
                mask_mentions=True, linear_max_length=20, dev_sentences=40, bucket=4)
    for split, num in (("train", 14), ("dev", None)):
        got = BatchDataset.from_configs(shards, mcfg, tcfg, SP, split=split, rank=1, world=2)
        want = BatchDataset(shards, SP, **hand, num_batches=num, split=split, rank=1, world=2)
        assert len(got) == len(want) == (14 if split == "train" else 5)
        assert all(_equal(got[n], want[n]) for n in range(len(got)))
        assert vars(got).keys() == vars(want).keys()
    # and each field reaches the dataset
    base = BatchDataset.from_configs(shards, mcfg, tcfg, SP)
    assert base.max_neighbors == 2 and base.mlm_probability == 0.3 and base.bucket == 4
    assert BatchDataset.from_configs(shards, replace(mcfg, mlm_weight=0.0), tcfg,
                                     SP).mask_tokens is False
    no_val = BatchDataset.from_configs(shards, mcfg, replace(tcfg, validate_every=0), SP)
    assert len(no_val.pool) == N_SENT and len(base.pool) == N_SENT - 40


# -- the collation against a straightforward per-item reference (the original loops) --------


def _ref_pad(rows, pad):
    width = max((len(r) for r in rows), default=1) or 1
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.as_tensor(np.asarray(r, dtype=np.int64))
        mask[i, : len(r)] = True
    return ids, mask


def reference_batch(ds: BatchDataset, n: int) -> dict:
    """``ds[n]`` computed item by item through ShardDataset / NodeTable."""
    from bali.model.losses.mlm import mask_tokens
    from bali.model.pooling import entity_tokens

    sentences, nodes = ShardDataset(ds.shards), NodeTable(ds.shards)
    g, stream = n * ds.world + ds.rank, 1_000_003
    if ds.split == "dev":
        g, stream = n, 2_000_003
    rng = np.random.default_rng([ds.seed, stream, g])
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    items = [sentences[int(i)] for i in ds.indices(g)]
    sp = ds.special
    input_ids, attention = _ref_pad([it["input_ids"].numpy() for it in items], sp.pad)
    batch = {"input_ids": input_ids, "attention_mask": attention}
    m_batch = torch.cat([torch.full_like(it["mention_node"], b) for b, it in enumerate(items)])
    m_node = torch.cat([it["mention_node"] for it in items])
    pairs, m_entity = torch.unique(torch.stack([m_batch, m_node]), dim=1, return_inverse=True)
    concepts, target = torch.unique(pairs[1], return_inverse=True)
    batch |= {"mention_batch": m_batch,
              "mention_start": torch.cat([it["mention_start"] for it in items]),
              "mention_end": torch.cat([it["mention_end"] for it in items]),
              "mention_entity": m_entity, "entity_target": target, "concept_nodes": concepts}
    if ds.mask_tokens:
        keep = ~attention | (input_ids == sp.cls) | (input_ids == sp.sep)
        if not ds.mask_mentions:
            tok_batch, tok_pos, _ = entity_tokens(m_batch, batch["mention_start"],
                                                  batch["mention_end"], m_entity)
            keep[tok_batch, tok_pos] = True
        batch["input_ids"], batch["mlm_labels"] = mask_tokens(
            input_ids, keep, sp.vocab_size, sp.mask, ds.mlm_probability, gen)
    slot_node, src, dst, etype, centre = [], [], [], [], []
    for node in concepts.tolist():
        c = len(slot_node)
        centre.append(c)
        slot_node.append(node)
        pool, rels = nodes.neighbors(node)
        k = min(ds.max_neighbors, len(pool))
        for j in (rng.choice(len(pool), size=k, replace=False) if k else ()):
            src.append(len(slot_node))
            dst.append(c)
            etype.append(int(rels[j]))
            slot_node.append(int(pool[j]))
    slot_name = [int(rng.choice(nodes.name_ids(x))) for x in slot_node]
    names, slot_name_idx = np.unique(np.asarray(slot_name, dtype=np.int64), return_inverse=True)
    name_ids, name_mask = _ref_pad([nodes.name_input_ids(int(i)) for i in names], sp.pad)
    batch |= {"name_input_ids": name_ids, "name_attention_mask": name_mask,
              "slot_name": torch.as_tensor(slot_name_idx, dtype=torch.long),
              "slot_node": torch.as_tensor(slot_node, dtype=torch.long),
              "edge_index": torch.tensor([src, dst], dtype=torch.long).reshape(2, -1),
              "edge_type": torch.tensor(etype, dtype=torch.long),
              "centre": torch.tensor(centre, dtype=torch.long)}
    if ds.linearize is not None:
        batch |= ds._linearized(slot_name, src, dst, etype, centre)
    return batch


@pytest.mark.parametrize("variant", [
    {}, {"bucket": 4}, {"mask_mentions": True, "max_neighbors": 5},
    {"mask_tokens": False, "batch_size": 64}, {"linear": True},
    {"dev_sentences": 48, "split": "dev"}, {"rank": 1, "world": 3, "bucket": 2}],
    ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) or "default")
def test_collation_equals_the_per_item_reference(shards, variant):
    kw = KW | {"num_batches": 40} | variant
    if kw.pop("linear", False):
        from bali.model.graph import linearize

        kw |= {"linearize": linearize, "linear_max_length": 24,
               "relation_ids": [np.array([50 + i, 60 + i]) for i in range(4)]}
    ds = BatchDataset(shards, SP, **kw)
    for n in sorted({0, 1, len(ds) // 2, len(ds) - 1}):
        got, want = ds[n], reference_batch(ds, n)
        assert _equal(got, want), [k for k in got if not torch.equal(got[k], want.get(k))]
