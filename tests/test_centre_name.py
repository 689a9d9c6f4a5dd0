"""``centre_name="unlike-mention"``: a concept's centre node takes a name that spells none of
its mentions in the batch whenever the concept has one; everything else of the batch stays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_bucketing import _batches

from bali.errors import OptionError
from bali.shards import NAMES_SCHEMA, NODES_SCHEMA, SENTENCES_SCHEMA, write_ipc
from bali.train.data import BatchDataset, SpecialIds

SP = SpecialIds(pad=0, cls=1, sep=2, mask=3, vocab_size=100)
N_NODES, N_SENT = 30, 200


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """Nodes with 1-3 names of random tokens; each sentence mentions 1-2 concepts by one of
    their names, spelled token for token inside random filler."""
    rng = np.random.default_rng(1)
    out = tmp_path_factory.mktemp("centre") / "shards"
    out.mkdir()
    per = rng.integers(1, 4, N_NODES)
    names = [rng.integers(5, SP.vocab_size, int(rng.integers(1, 4))).tolist()
             for _ in range(int(per.sum()))]
    node_names = np.split(np.arange(len(names)), np.cumsum(per)[:-1])
    ids, starts, ends, concepts = [], [], [], []
    for _ in range(N_SENT):
        toks, s, e, c = [SP.cls], [], [], []
        for node in rng.choice(N_NODES, int(rng.integers(1, 3)), replace=False).tolist():
            toks += rng.integers(5, SP.vocab_size, 2).tolist()
            name = names[int(rng.choice(node_names[node]))]
            s.append(len(toks))
            toks += name
            e.append(len(toks))
            c.append(node)
        ids.append([*toks, SP.sep])
        starts.append(s)
        ends.append(e)
        concepts.append(c)
    write_ipc(out / "sentences.arrow", SENTENCES_SCHEMA, _batches(SENTENCES_SCHEMA, [
        [f"d{i}" for i in range(N_SENT)], [0] * N_SENT, ids, starts, ends, concepts]))
    pools = [rng.choice(N_NODES, 2, replace=False) for _ in range(N_NODES)]
    write_ipc(out / "nodes.arrow", NODES_SCHEMA, _batches(NODES_SCHEMA, [
        [f"C{i}" for i in range(N_NODES)], node_names, pools,
        [np.zeros(2, dtype=np.int64) for _ in pools]]))
    write_ipc(out / "names.arrow", NAMES_SCHEMA, _batches(NAMES_SCHEMA, [
        list(range(len(names))), [[SP.cls, *n, SP.sep] for n in names]]))
    (out / "relations.json").write_text(json.dumps(["in:a"]))
    (out / "meta.json").write_text(json.dumps({"format": "bali-shards/1"}))
    return out


def _spelled(batch: dict) -> tuple[int, int, int]:
    """(centres spelling a mention, of them avoidable, centres) over the batch's concepts."""
    ids = batch["name_input_ids"]
    names = [tuple(t for t in row.tolist() if t > SP.mask) for row in ids]
    mentions = BatchDataset._mention_strings(batch["unmasked"], batch)
    spelled = avoidable = 0
    for c, slot in enumerate(batch["centre"].tolist()):
        if names[int(batch["slot_name"][slot])] in mentions[c]:
            spelled += 1
            avoidable += bool(batch["other_names"][c] - mentions[c])
    return spelled, avoidable, len(mentions)


def _batch(ds: BatchDataset, n: int) -> dict:
    batch = ds[n]
    rows = ds._rows["sentences"].rows("input_ids", ds.indices(n))
    batch["unmasked"] = torch.nn.utils.rnn.pad_sequence(
        [torch.from_numpy(np.array(r)) for r in rows], batch_first=True, padding_value=SP.pad)
    names = ds._rows["names"]
    batch["other_names"] = [
        {tuple(names.list_row("input_ids", int(i)).tolist()[1:-1])
         for i in ds._rows["nodes"].list_row("name_ids", node)}
        for node in batch["concept_nodes"].tolist()]
    return batch


def test_unlike_mention_avoids_every_avoidable_centre_name(shards):
    kw = dict(special=SP, batch_size=8, seed=0, max_neighbors=2, mlm_probability=0.15,
              mask_mentions=False, num_batches=20)
    paper, unlike = (BatchDataset(shards, centre_name=m, **kw)
                     for m in ("random", "unlike-mention"))
    totals = {"random": [0, 0, 0], "unlike-mention": [0, 0, 0]}
    for n in range(20):
        a, b = _batch(paper, n), _batch(unlike, n)
        for key in ("input_ids", "mlm_labels", "slot_node", "edge_index", "centre"):
            assert torch.equal(a[key], b[key]), key  # only centre names may differ
        for mode, batch in (("random", a), ("unlike-mention", b)):
            totals[mode] = [x + y for x, y in zip(totals[mode], _spelled(batch), strict=True)]
    assert totals["unlike-mention"][1] == 0  # no avoidable centre name spells a mention
    assert totals["random"][1] > 10  # ... which the paper's random draw often does
    assert totals["unlike-mention"][0] < totals["random"][0]


def test_unknown_centre_name_is_an_option_error(shards):
    with pytest.raises(OptionError, match="centre_name"):
        BatchDataset(shards, SP, 8, 0, 2, 0.15, centre_name="preferred")
