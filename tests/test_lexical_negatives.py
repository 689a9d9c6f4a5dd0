"""Lexical hard negatives (``lexical_negatives``): the mining of :mod:`bali.train.negatives`
against a brute-force reading, the extra slots of the batches, and the model's use of them."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from test_centre_name import SP, shards  # noqa: F401  (the fixture)

from bali.model.bali import BaliModel
from bali.model.config import ModelConfig
from bali.train.data import BatchDataset
from bali.train.negatives import lexical_confusers, name_owners

TEXTS = ["renal tubular acidosis", "renal tubular acidosis type i", "lactic acidosis",
         "acidosis", "headache", "acidosis of the kidney", "tubular acidosis, renal"]
#: node -> name ids; name 5 belongs to nodes 2 and 3, name 6 to no node
NODE_NAMES = [[0], [1], [2, 5], [3, 5], [4]]


def _csr(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    return ptr, np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])


def test_name_owners_marks_shared_and_unowned_names():
    ptr, flat = _csr(NODE_NAMES)
    assert name_owners(ptr, flat, len(TEXTS)).tolist() == [0, 1, 2, 3, 4, -1, -1]


def _reference(nodes: list[int], k: int) -> dict[int, list[int]]:
    """Dense cosine of char_wb 3-gram TF-IDF, max over the node's names, names of one other
    node only, best first (ties by name id)."""
    t = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3)).fit_transform(TEXTS).toarray()
    owner = {n: v for v, names in enumerate(NODE_NAMES) for n in names
             if sum(n in r for r in NODE_NAMES) == 1}
    out = {}
    for v in nodes:
        score = (t[NODE_NAMES[v]] @ t.T).max(0)
        ok = [n for n in range(len(TEXTS)) if owner.get(n, v) != v]
        out[v] = sorted(ok, key=lambda n: (-round(float(score[n]), 5), n))[:k]
    return out


@pytest.mark.parametrize("k", [1, 2, 3])
def test_lexical_confusers_equal_a_brute_force_reading(k):
    ptr, flat = _csr(NODE_NAMES)
    out_ptr, names, owners = lexical_confusers(TEXTS, ptr, flat, np.array([3, 0, 0]), k)
    got = {v: names[out_ptr[v]:out_ptr[v + 1]].tolist() for v in range(len(NODE_NAMES))}
    want = _reference([0, 3], k)
    assert got[0] == want[0] and got[3] == want[3]
    assert got[1] == got[2] == got[4] == []  # not asked for
    assert got[0][0] == 1  # "renal tubular acidosis type i" reads most like node 0's name
    assert 5 not in names and 6 not in names and 0 not in got[0]  # shared, unowned, own
    assert owners.tolist() == [name_owners(ptr, flat, len(TEXTS))[n] for n in names]
    assert len(got[0]) == len(got[3]) == k


def test_lexical_slots_extend_the_batch_without_touching_the_stars(shards):  # noqa: F811
    ds = BatchDataset(shards, SP, 8, 0, 2, 0.15, num_batches=10)
    nodes, names = ds._rows["nodes"], ds._rows["names"]
    count, flat = nodes.gather("name_ids", np.arange(len(nodes)))
    ptr = np.concatenate([[0], np.cumsum(count)])
    tokens = [tuple(names.list_row("input_ids", i).tolist()) for i in range(len(names))]
    texts = [" ".join(f"w{t}" for t in row) for row in tokens]
    ptr_l, names_l, owners_l = lexical_confusers(texts, ptr, flat, np.arange(len(nodes)), 3)
    # keep the confusers whose tokens no other name has, so tokens identify them below
    unique = np.array([tokens.count(t) == 1 for t in tokens])[names_l]
    node_of = np.repeat(np.arange(len(nodes)), np.diff(ptr_l))[unique]
    lexical = (np.concatenate([[0], np.cumsum(np.bincount(node_of, minlength=len(nodes)))]),
               names_l[unique], owners_l[unique])
    lex = BatchDataset(shards, SP, 8, 0, 2, 0.15, num_batches=10, lexical=lexical)
    owner = name_owners(ptr, flat, len(names))

    def spelled(batch: dict, slots) -> list[tuple]:
        return [(SP.cls, *(t for t in r.tolist() if t not in (SP.pad, SP.cls, SP.sep)), SP.sep)
                for r in batch["name_input_ids"][batch["slot_name"][slots]]]

    added = 0
    for n in range(10):
        a, b = ds[n], lex[n]
        stars = len(a["slot_node"])
        for key in ("input_ids", "mlm_labels", "centre", "edge_index", "edge_type"):
            assert torch.equal(a[key], b[key]), key  # no random draw changes
        assert torch.equal(a["slot_node"], b["slot_node"][:stars])
        star_names = spelled(a, torch.arange(stars))
        assert spelled(b, torch.arange(stars)) == star_names  # the stars' names stay
        assert "lexical_slot" not in a and not b["lexical_slot"][:stars].any()
        extra = np.flatnonzero(b["lexical_slot"].numpy())
        assert extra.tolist() == list(range(stars, len(b["slot_node"])))
        assert not np.isin(extra, b["edge_index"].numpy()).any()  # outside every star
        # the extra slots: the concepts' confusers, each name once, owned by their slot node
        want = {tokens[m] for v in a["concept_nodes"].tolist()
                for m in lexical[1][lexical[0][v]:lexical[0][v + 1]]}
        got = spelled(b, torch.from_numpy(extra))
        assert len(set(got)) == len(got)
        assert set(got) == want - set(star_names)
        assert b["slot_node"][extra].tolist() == [int(owner[tokens.index(t)]) for t in got]
        added += len(got)
    assert added > 10


def _stub(**cfg) -> types.SimpleNamespace:
    return types.SimpleNamespace(cfg=ModelConfig(**cfg))


def test_hard_negatives_take_lexical_slots_with_or_without_the_neighbours():
    batch = {"centre": torch.tensor([0, 3]), "slot_node": torch.tensor([10, 11, 12, 13, 14, 15]),
             "lexical_slot": torch.tensor([False, False, False, False, True, True])}
    x = torch.arange(6, dtype=torch.float32)[:, None]
    vec, node = BaliModel.hard_negatives(_stub(neighbor_negatives=False, lexical_negatives=2),
                                         batch, x)
    assert node.tolist() == [14, 15] and vec.ravel().tolist() == [4.0, 5.0]
    _, node = BaliModel.hard_negatives(_stub(lexical_negatives=2), batch, x)
    assert node.tolist() == [11, 12, 14, 15]


def test_lexical_negatives_enter_the_infonce_denominator():
    """Same batch, one lexical slot close to the entity: the loss rises only when it is used
    (and never for the entity of the slot's own node)."""
    from bali.model.losses import InfoNCELoss

    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    graph = torch.tensor([[1.0, 0.1], [0.1, 1.0]])
    x = torch.tensor([[1.0, 0.1], [0.1, 1.0], [1.0, 0.05]])  # centres, then a lexical slot
    batch = {"entity_target": torch.tensor([0, 1]), "concept_nodes": torch.tensor([7, 8]),
             "centre": torch.tensor([0, 1]), "slot_node": torch.tensor([7, 8, 8]),
             "lexical_slot": torch.tensor([False, False, True])}

    def loss(**cfg):
        stub = _stub(neighbor_negatives=False, **cfg)
        stub.alignment, stub.training = InfoNCELoss(), True
        stub.hard_negatives = lambda b, v: BaliModel.hard_negatives(stub, b, v)
        return float(BaliModel.align_loss(stub, text, graph, batch, x))

    without, with_lexical = loss(lexical_negatives=0), loss(lexical_negatives=1)
    assert with_lexical > without + 0.1
    batch["slot_node"] = torch.tensor([7, 8, 7])  # now the slot is entity 0's own node
    assert loss(lexical_negatives=1) == pytest.approx(without, abs=1e-4)  # far from entity 1
