"""Training losses: hand-computed values, duplicate-concept positives, gradients, BERT masking."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bali.model.losses import (
    ALIGNMENT_LOSSES,
    IGNORE_INDEX,
    InfoNCELoss,
    MultiSimilarityLoss,
    PairClassificationLoss,
    info_nce,
    make_alignment_loss,
    mask_tokens,
    mlm_loss,
    multi_similarity,
    pair_classification,
    pair_logits,
    pair_mask,
    total_loss,
)

exp, log = math.exp, math.log


def t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def nll(pos: list[float], all_: list[float]) -> float:
    """-log(Σ_pos exp / Σ_all exp), written out."""
    return -log(sum(exp(x) for x in pos) / sum(exp(x) for x in all_))


# ---------------------------------------------------------------------------------------- InfoNCE

# Unit vectors against the standard basis, so cos(text_i, graph_c) = text[i][c].
GRAPH3 = t([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
TEXT3 = t([[1, 0, 0], [0.6, 0.8, 0], [0, 0.6, 0.8]])


def test_info_nce_3x3_by_hand():
    tau = 0.5  # S / τ: row 0 = [2, 0, 0], row 1 = [1.2, 1.6, 0], row 2 = [0, 1.2, 1.6]
    target = torch.tensor([0, 1, 2])
    t2g = (
        -log(exp(2) / (exp(2) + exp(0) + exp(0)))
        - log(exp(1.6) / (exp(1.2) + exp(1.6) + exp(0)))
        - log(exp(1.6) / (exp(0) + exp(1.2) + exp(1.6)))
    ) / 3
    g2t = (  # columns: concept c against the three entities
        -log(exp(2) / (exp(2) + exp(1.2) + exp(0)))
        - log(exp(1.6) / (exp(0) + exp(1.6) + exp(1.2)))
        - log(exp(1.6) / (exp(0) + exp(0) + exp(1.6)))
    ) / 3
    got = info_nce(TEXT3, GRAPH3, target, temperature=tau, symmetric=False)
    assert got.item() == pytest.approx(t2g, rel=1e-6)
    got = info_nce(TEXT3, GRAPH3, target, temperature=tau)
    assert got.item() == pytest.approx((t2g + g2t) / 2, rel=1e-6)
    # The defaults are the authors' τ = 0.07, symmetric; cosine makes the scale irrelevant.
    ref = (F.cross_entropy(TEXT3 / 0.07, target) + F.cross_entropy(TEXT3.T / 0.07, target)) / 2
    assert info_nce(3 * TEXT3, 2 * GRAPH3, target).item() == pytest.approx(ref.item(), rel=1e-5)
    # The same targets as a positive mask: the same loss.
    mask = target[:, None] == torch.arange(3)[None, :]
    assert info_nce(TEXT3, GRAPH3, mask, tau).item() == pytest.approx((t2g + g2t) / 2)


def test_info_nce_duplicate_concept_is_a_positive_by_hand():
    tau = 0.5
    graph = t([[1, 0, 0], [0, 1, 0]])
    text = t([[1, 0, 0], [0.8, 0.6, 0], [0.6, 0.8, 0]])  # entities 0 and 1 are concept 0
    target = torch.tensor([0, 0, 1])
    s = [[2, 0], [1.6, 1.2], [1.2, 1.6]]  # S / τ
    t2g = (nll([s[0][0]], s[0]) + nll([s[1][0]], s[1]) + nll([s[2][1]], s[2])) / 3
    g2t = (
        nll([s[0][0], s[1][0]], [s[0][0], s[1][0], s[2][0]])  # concept 0: both entities positive
        + nll([s[2][1]], [s[0][1], s[1][1], s[2][1]])
    ) / 2
    assert info_nce(text, graph, target, tau).item() == pytest.approx((t2g + g2t) / 2, rel=1e-6)


def test_info_nce_concept_without_entities_is_left_out_of_graph_to_text():
    target = torch.tensor([0, 1])
    both = info_nce(TEXT3[:2], GRAPH3, target, 0.5)
    t2g = info_nce(TEXT3[:2], GRAPH3, target, 0.5, symmetric=False)
    g2t = (nll([2], [2, 1.2]) + nll([1.6], [0, 1.6])) / 2  # concepts 0 and 1 only
    assert both.item() == pytest.approx((t2g.item() + g2t) / 2, rel=1e-6)


def test_info_nce_rewards_aligning_both_entities_of_a_shared_concept():
    graph = t([[1, 0, 0], [0, 1, 0]])
    target = torch.tensor([0, 0, 1])
    aligned = t([[1, 0, 0], [1, 0, 0], [0, 1, 0]])  # both entities equal to their graph row
    orthogonal = t([[0, 0, 1], [0, 0, 1], [0, 1, 0]])
    for symmetric in (False, True):
        assert info_nce(aligned, graph, target, symmetric=symmetric) < info_nce(
            orthogonal, graph, target, symmetric=symmetric
        )


def _same(ids: torch.Tensor) -> torch.Tensor:
    return ids[:, None] == ids[None, :]


def test_info_nce_duplicated_rows_are_positives_not_negatives():
    """A concept owning several rows (rows gathered from several ranks): a positive mask."""
    tau = 0.5
    text = t([[1, 0, 0], [0.8, 0.6, 0], [0.6, 0.8, 0]])
    graph = t([[1, 0, 0], [1, 0, 0], [0, 1, 0]])  # rows 0 and 1: the same concept, duplicated
    ids = torch.tensor([7, 7, 3])
    s = (text @ graph.T / tau).tolist()
    pos = [[0, 1], [0, 1], [2]]
    t2g = sum(nll([s[i][j] for j in pos[i]], s[i]) for i in range(3)) / 3
    col = [[s[i][j] for i in range(3)] for j in range(3)]
    g2t = sum(nll([col[j][i] for i in pos[j]], col[j]) for j in range(3)) / 3
    got = info_nce(text, graph, _same(ids), tau)
    assert got.item() == pytest.approx((t2g + g2t) / 2, rel=1e-6)
    assert info_nce(text, graph, _same(ids), tau, symmetric=False).item() == pytest.approx(t2g)

    # Naive CLIP InfoNCE treats row 1 as a negative of entity 0 (and row 0 of entity 1).
    logits = text @ graph.T / tau
    arange = torch.arange(3)
    naive = (F.cross_entropy(logits, arange) + F.cross_entropy(logits.T, arange)) / 2
    assert got.item() < naive.item() - 0.1
    assert info_nce(text, graph, _same(arange), tau).item() == pytest.approx(naive.item())
    assert info_nce(text, graph, _same(torch.tensor([5, 1, 9])), tau).item() == pytest.approx(
        naive.item()
    )


# ------------------------------------------------------------------------------ Multi-Similarity

MS_TEXT = t([[0.8, 0.6, 0], [0.8, 0.6, 0], [2 / 3, 1 / 3, 2 / 3]])
MS_TARGET = torch.tensor([0, 1, 2])


def test_multi_similarity_by_hand_with_mining():
    # Entity 0: S_p = 0.8, S_n = {0.6, 0}: easy, nothing mined (0.6 + 0.1 <= 0.8, 0.8 - 0.1 >= 0.6).
    # Entity 1: S_p = 0.6, S_n = {0.8, 0}: keeps the positive and the 0.8 negative.
    # Entity 2: S_p = 2/3, S_n = {2/3, 1/3}: keeps the positive and the 2/3 negative.
    ent1 = log(1 + exp(-2 * (0.6 - 0.5))) / 2 + log(1 + exp(50 * (0.8 - 0.5))) / 50
    ent2 = log(1 + exp(-2 * (2 / 3 - 0.5))) / 2 + log(1 + exp(50 * (2 / 3 - 0.5))) / 50
    got = multi_similarity(MS_TEXT, GRAPH3, MS_TARGET)
    assert got.item() == pytest.approx((0 + ent1 + ent2) / 3, rel=1e-6)
    assert MultiSimilarityLoss()(MS_TEXT, GRAPH3, MS_TARGET).item() == pytest.approx(got.item())


def test_multi_similarity_by_hand_without_mining():
    def anchor(sp: float, sn: list[float]) -> float:
        neg = sum(exp(50 * (x - 0.5)) for x in sn)
        return log(1 + exp(-2 * (sp - 0.5))) / 2 + log(1 + neg) / 50

    want = (anchor(0.8, [0.6, 0]) + anchor(0.6, [0.8, 0]) + anchor(2 / 3, [2 / 3, 1 / 3])) / 3
    got = multi_similarity(MS_TEXT, GRAPH3, MS_TARGET, mining_margin=None)
    assert got.item() == pytest.approx(want, rel=1e-6)


# -------------------------------------------------------------------------- pair classification


def test_pair_classification_by_hand():
    text = t([[1, 0], [0, 1]])
    graph = t([[1, 1], [0, -1]])
    weight, bias = t([[1, -1, 2, 0.5]]), torch.tensor([-0.5], dtype=torch.float64)
    # z = text @ [1, -1] + (graph @ [2, 0.5]).T - 0.5 = [[3, 0], [1, -2]]; positives on the diagonal
    want = (log(1 + exp(-3)) + log(1 + exp(2)) + log(1 + exp(0)) + log(1 + exp(1))) / 4
    got = pair_classification(text, graph, torch.tensor([0, 1]), weight, bias)
    assert got.item() == pytest.approx(want, rel=1e-6)
    # The split linear layer is the classifier on the concatenation.
    lin = torch.nn.Linear(4, 1).double()
    with torch.no_grad():
        lin.weight.copy_(weight)
        lin.bias.copy_(bias)
    concat = torch.cat([text[:, None].expand(2, 2, 2), graph[None].expand(2, 2, 2)], dim=-1)
    assert torch.allclose(lin(concat).squeeze(-1), pair_logits(text, graph, weight, bias))


def test_pair_classification_sampled_negatives_are_reproducible():
    target = torch.tensor([0, 3, 3, 5, 1, 2])
    gen = torch.Generator().manual_seed(1)
    labelled, positive = pair_mask(target, 8, negatives=3, generator=gen)
    assert positive.sum(1).eq(1).all() and (labelled & positive).equal(positive)
    assert (labelled & ~positive).sum(1).eq(3).all()
    again, _ = pair_mask(target, 8, negatives=3, generator=torch.Generator().manual_seed(1))
    assert again.equal(labelled)
    assert pair_mask(target, 8, negatives=7)[0].all()  # 7 = all other concepts
    loss = PairClassificationLoss(4, negatives=2, generator=torch.Generator().manual_seed(0))
    x, g = torch.randn(6, 4), torch.randn(8, 4)
    assert torch.isfinite(loss(x, g, target))


def test_linear_pair_classifier_ranks_concepts_the_same_for_every_entity():
    """The paper's 1-layer classifier cannot score a *match*: z_ij - z_ik is independent of i.

    So "aligned text beats random text" has no meaning for this loss, and is not tested.
    """
    z = PairClassificationLoss(8).logits(torch.randn(5, 8), torch.randn(4, 8))
    diff = z[:, :, None] - z[:, None, :]
    assert torch.allclose(diff, diff[:1].expand_as(diff), atol=1e-5)


# ------------------------------------------------------------------------------ all three losses


@pytest.mark.parametrize("name", sorted(ALIGNMENT_LOSSES))
def test_alignment_loss_shapes_and_gradients(name):
    torch.manual_seed(0)
    loss_fn = make_alignment_loss(name, 16)
    assert isinstance(loss_fn, ALIGNMENT_LOSSES[name])
    text = torch.randn(12, 16, requires_grad=True)
    graph = torch.randn(7, 16, requires_grad=True)
    target = torch.tensor([0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 2, 6])
    loss = loss_fn(text, graph, target)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    for grad in (text.grad, graph.grad, *(p.grad for p in loss_fn.parameters())):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize("fn", [info_nce, multi_similarity])
def test_perfect_alignment_beats_random(fn):
    gen = torch.Generator().manual_seed(0)
    graph = torch.randn(16, 32, generator=gen)
    target = torch.arange(32) % 16
    aligned = graph[target] + 0.01 * torch.randn(32, 32, generator=gen)
    random = torch.randn(32, 32, generator=gen)
    assert fn(aligned, graph, target) < fn(random, graph, target)


def test_make_alignment_loss():
    assert make_alignment_loss("infonce", 8, temperature=0.1).temperature == 0.1
    assert make_alignment_loss("ms", 8).mining_margin == 0.1
    cls = make_alignment_loss("cls", 8, negatives=4)
    assert cls.classifier.in_features == 16 and cls.negatives == 4
    assert isinstance(make_alignment_loss("infonce", 8), InfoNCELoss)
    with pytest.raises(ValueError, match="unknown alignment loss"):
        make_alignment_loss("triplet", 8)


# -------------------------------------------------------------------------------------------- MLM

VOCAB, MASK_ID = 30_000, 103


def mlm_batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """64 x 128 ids with [CLS] first, [SEP] at the end of each sentence and padding after it."""
    gen = torch.Generator().manual_seed(1000 + seed)
    ids = torch.randint(1000, VOCAB, (64, 128), generator=gen)
    lengths = torch.randint(20, 129, (64,), generator=gen)
    pos = torch.arange(128)[None]
    special = (pos == 0) | (pos >= lengths[:, None] - 1)  # CLS, SEP and padding
    ids[:, 0] = 101
    ids[pos == lengths[:, None] - 1] = 102
    ids[pos >= lengths[:, None]] = 0
    return ids, special


def test_mask_tokens_statistics():
    n_eligible = n_selected = n_mask = n_random = n_same = 0
    for seed in range(5):
        ids, special = mlm_batch(seed)
        masked, labels = mask_tokens(ids, special, VOCAB, MASK_ID,
                                     generator=torch.Generator().manual_seed(seed))
        selected = labels != IGNORE_INDEX
        assert not (selected & special).any()
        assert masked[special].equal(ids[special]) and masked[~selected].equal(ids[~selected])
        assert labels[selected].equal(ids[selected])
        frac = selected.sum().item() / (~special).sum().item()
        assert abs(frac - 0.15) < 0.02, frac
        n_eligible += (~special).sum().item()
        n_selected += selected.sum().item()
        n_mask += (selected & (masked == MASK_ID)).sum().item()
        n_same += (selected & (masked == ids)).sum().item()
        n_random += (selected & (masked != MASK_ID) & (masked != ids)).sum().item()
    assert abs(n_selected / n_eligible - 0.15) < 0.006
    assert abs(n_mask / n_selected - 0.8) < 0.025
    assert abs(n_random / n_selected - 0.1) < 0.02
    assert abs(n_same / n_selected - 0.1) < 0.02


def test_mask_tokens_reproducible():
    ids, special = mlm_batch(0)
    a = mask_tokens(ids, special, VOCAB, MASK_ID, generator=torch.Generator().manual_seed(3))
    b = mask_tokens(ids, special, VOCAB, MASK_ID, generator=torch.Generator().manual_seed(3))
    c = mask_tokens(ids, special, VOCAB, MASK_ID, generator=torch.Generator().manual_seed(4))
    assert a[0].equal(b[0]) and a[1].equal(b[1])
    assert not a[1].equal(c[1])


def test_mlm_loss():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 11, generator=gen, requires_grad=True)
    labels = torch.full((2, 5), IGNORE_INDEX)
    labels[0, 1], labels[1, 3] = 4, 7
    want = -(logits[0, 1].log_softmax(-1)[4] + logits[1, 3].log_softmax(-1)[7]) / 2
    assert mlm_loss(logits, labels).item() == pytest.approx(want.item(), rel=1e-6)
    none = mlm_loss(logits, torch.full((2, 5), IGNORE_INDEX))
    assert none.item() == 0.0
    none.backward()
    assert logits.grad is not None and logits.grad.abs().sum() == 0


# ------------------------------------------------------------------------------------- combined


def test_total_loss_weights_and_ablations():
    mlm, align = torch.tensor(2.0), torch.tensor(3.0)
    assert total_loss(mlm, align).item() == 5.0
    assert total_loss(mlm, align, mlm_weight=0.5, align_weight=2.0).item() == 7.0
    assert total_loss(None, align, mlm_weight=0).item() == 3.0  # -MLM
    assert total_loss(mlm, None, align_weight=0).item() == 2.0  # -align
    with pytest.raises(ValueError):
        total_loss(mlm, align, 0, 0)
    with pytest.raises(ValueError):
        total_loss(None, align)


def test_info_nce_hard_negatives_by_hand():
    from bali.model.losses.infonce import info_nce

    text = torch.tensor([[1.0, 0.0]])
    graph = torch.tensor([[1.0, 0.0]])  # cos 1 with the positive
    negs = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # cos 0, and a copy of the positive
    tau = 0.5
    allowed = torch.tensor([[True, False]])  # the second is the entity's own concept
    got = info_nce(text, graph, torch.tensor([0]), tau, symmetric=False, negatives=negs,
                   allowed=allowed)
    want = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(0)))
    assert float(got) == pytest.approx(want, rel=1e-6)
    none = info_nce(text, graph, torch.tensor([0]), tau, symmetric=False, negatives=negs,
                    allowed=torch.zeros(1, 2, dtype=torch.bool))
    assert float(none) == pytest.approx(0.0, abs=1e-6)
