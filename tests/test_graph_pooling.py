"""Graph encoders (bali.model.graph) and entity poolings (bali.model.pooling)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_geometric")

from bali.model.graph import (  # noqa: E402
    GRAPH_ENCODERS,
    GATEncoder,
    TextualEncoder,
    linearize,
    make_graph_encoder,
)
from bali.model.pooling import POOLINGS, entity_tokens, make_pooling  # noqa: E402

D = 16
NUM_RELATIONS = 3
ENCODERS = ["gat", "gat_norel", "sage", "distmult", "transe", "textual", "textual_proj"]
MESSAGE_PASSING = ["gat", "gat_norel", "sage", "distmult", "transe"]


def build_encoder(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "gat_norel":
        return make_graph_encoder(
            "gat", D, layers=2, num_relations=NUM_RELATIONS, dropout=0.0, use_relations=False
        )
    if name == "textual_proj":
        return TextualEncoder(D, project=True)
    return make_graph_encoder(name, D, layers=2, num_relations=NUM_RELATIONS, dropout=0.0)


def stars() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Three stars: centre 0 alone; centre 1 <- 2, 3, 4; centre 5 <- 6."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, D, generator=g)
    edge_index = torch.tensor([[2, 3, 4, 6], [1, 1, 1, 5]])
    edge_type = torch.tensor([0, 1, 2, 1])
    centre = torch.tensor([0, 1, 5])
    return x, edge_index, edge_type, centre


def assert_grads(params: list[torch.Tensor]) -> None:
    for p in params:
        assert p.grad is not None
        assert torch.isfinite(p.grad).all()
        assert p.grad.abs().sum() > 0


# --- graph encoders ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_shape_and_gradients(name: str) -> None:
    enc = build_encoder(name)
    x, edge_index, edge_type, centre = stars()
    x.requires_grad_(True)
    g = enc(x, edge_index, edge_type, centre)
    assert g.shape == (3, D)
    assert torch.isfinite(g).all()
    (g * torch.randn_like(g)).sum().backward()
    assert_grads([x, *enc.parameters()])
    if name in MESSAGE_PASSING:  # neighbours reach their centre
        assert x.grad[[2, 3, 4, 6]].abs().sum(-1).gt(0).all()


@pytest.mark.parametrize("name", ENCODERS)
def test_stars_do_not_leak(name: str) -> None:
    enc = build_encoder(name).eval()
    x, edge_index, edge_type, centre = stars()
    base = enc(x, edge_index, edge_type, centre)
    for slot, star in [(0, 0), (3, 1), (6, 2)]:  # perturb one slot of each star in turn
        x2 = x.clone()
        x2[slot] += 1.0
        out = enc(x2, edge_index, edge_type, centre)
        others = [s for s in range(3) if s != star]
        torch.testing.assert_close(out[others], base[others], atol=1e-6, rtol=0)
        if slot == 0 or name in MESSAGE_PASSING:
            assert not torch.allclose(out[star], base[star])


@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_overfits(name: str) -> None:
    enc = build_encoder(name)
    x, edge_index, edge_type, centre = stars()
    target = torch.randn(3, D, generator=torch.Generator().manual_seed(2))
    params = list(enc.parameters()) or [x.requires_grad_(True)]  # textual: train the "LM"
    opt = torch.optim.Adam(params, lr=1e-2 if params[0] is not x else 1e-1)
    losses = []
    for _ in range(50):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(enc(x, edge_index, edge_type, centre), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_encoder_options_and_registry() -> None:
    x, edge_index, edge_type, centre = stars()
    enc = make_graph_encoder("gat", D, hidden=8, layers=2, num_relations=NUM_RELATIONS)
    assert isinstance(enc, GATEncoder)
    assert enc(x, edge_index, edge_type, centre).shape == (3, D)
    with pytest.raises(ValueError):
        make_graph_encoder("gat", D, hidden=9, heads=2)
    with pytest.raises(ValueError):
        make_graph_encoder("nope", D)
    assert set(GRAPH_ENCODERS) == {"gat", "sage", "distmult", "transe", "textual", "linear"}
    lin = make_graph_encoder("linear", D)
    assert lin.is_linearized and not list(lin.parameters())
    assert not any(make_graph_encoder(n, D).is_linearized for n in GRAPH_ENCODERS if n != "linear")
    with pytest.raises(RuntimeError):
        lin(x, edge_index, edge_type, centre)
    # the textual ablation is the centre's own name vector
    torch.testing.assert_close(
        make_graph_encoder("textual", D)(x, edge_index, edge_type, centre), x[centre]
    )
    # translation encoders start as the mean of the centre and its (identity) messages
    for name in ("distmult", "transe"):
        g = make_graph_encoder(name, D, num_relations=NUM_RELATIONS).eval()(
            x, edge_index, edge_type, centre
        )
        expected = torch.stack([x[0], (x[1] + x[2:5].mean(0)) / 2, (x[5] + x[6]) / 2])
        torch.testing.assert_close(g, expected)


@pytest.mark.parametrize("name", ["gat", "sage"])
def test_skip_encoder_starts_at_the_centre_input_and_learns(name: str) -> None:
    torch.manual_seed(0)
    enc = make_graph_encoder(name, D, layers=2, num_relations=NUM_RELATIONS, dropout=0.0,
                             skip=True)
    x, edge_index, edge_type, centre = stars()
    out = enc(x, edge_index, edge_type, centre)
    torch.testing.assert_close(out, x[centre])  # g = x_v at step 0 (zero-initialised branch)
    out.pow(2).sum().backward()
    assert enc.gate.weight.grad.abs().sum() > 0  # the branch's gate learns first


def test_linearize() -> None:
    cls, sep = 1, 2
    centre = [5, 6]
    neighbors = [([7], [100, 101]), ([8, 9], [102])]
    full = [1, 5, 6, 2, 7, 100, 101, 5, 6, 2, 8, 9, 102, 5, 6, 2]
    assert linearize(centre, neighbors, cls, sep, 512) == full
    assert linearize(centre, neighbors, cls, sep, len(full)) == full
    assert linearize(centre, neighbors, cls, sep, len(full) - 1) == full[:10]
    assert linearize(centre, neighbors, cls, sep, 10) == full[:10]
    assert linearize(centre, neighbors, cls, sep, 9) == [1, 5, 6, 2]
    assert linearize(centre, [], cls, sep, 9) == [1, 5, 6, 2]
    assert linearize(centre, neighbors, cls, sep, 3) == [1, 5, 2]
    # a long edge that does not fit ends the sequence even if a later one would fit
    assert linearize(centre, [([7, 7, 7, 7], [100]), ([8], [100])], cls, sep, 10) == [1, 5, 6, 2]
    with pytest.raises(ValueError):
        linearize(centre, neighbors, cls, sep, 1)


# --- poolings ------------------------------------------------------------------------------

# entity 0: batch 0 spans [1,3) and [2,4) (token 2 shared); 1: batch 0 [4,5);
# 2: batch 1 [0,3); 3: batch 1 [3,5) and [5,6); entity 4 has no tokens.
MENTIONS = dict(
    mention_batch=torch.tensor([0, 0, 0, 1, 1, 1]),
    mention_start=torch.tensor([1, 2, 4, 0, 3, 5]),
    mention_end=torch.tensor([3, 4, 5, 3, 5, 6]),
    mention_entity=torch.tensor([0, 0, 1, 2, 3, 3]),
)
NUM_ENTITIES = 5


def batch() -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    hidden = torch.randn(2, 7, D, generator=torch.Generator().manual_seed(3))
    return hidden, entity_tokens(**MENTIONS)


def build_pooling(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return make_pooling(name, D, dropout=0.0)


def test_entity_tokens_dedupes() -> None:
    tok_batch, tok_pos, tok_entity = entity_tokens(**MENTIONS)
    got = list(zip(tok_entity.tolist(), tok_batch.tolist(), tok_pos.tolist(), strict=True))
    assert got == [
        (0, 0, 1),
        (0, 0, 2),
        (0, 0, 3),
        (1, 0, 4),
        (2, 1, 0),
        (2, 1, 1),
        (2, 1, 2),
        (3, 1, 3),
        (3, 1, 4),
        (3, 1, 5),
    ]


def test_entity_tokens_matches_brute_force() -> None:
    g = torch.Generator().manual_seed(4)
    m = 200
    batch_ = torch.randint(0, 4, (m,), generator=g)
    start = torch.randint(0, 30, (m,), generator=g)
    end = start + torch.randint(-1, 5, (m,), generator=g)  # includes empty spans
    ent = torch.randint(0, 20, (m,), generator=g)
    expected = sorted(
        {
            (e, b, p)
            for b, s, t, e in zip(
                batch_.tolist(), start.tolist(), end.tolist(), ent.tolist(), strict=True
            )
            for p in range(s, t)
        }
    )
    tok_batch, tok_pos, tok_entity = entity_tokens(batch_, start, end, ent)
    got = list(zip(tok_entity.tolist(), tok_batch.tolist(), tok_pos.tolist(), strict=True))
    assert got == expected
    empty = entity_tokens(*(torch.zeros(0, dtype=torch.long) for _ in range(4)))
    assert all(t.shape == (0,) for t in empty)


@pytest.mark.parametrize("name", sorted(POOLINGS))
def test_pooling_shape_and_gradients(name: str) -> None:
    pool = build_pooling(name)
    hidden, toks = batch()
    hidden.requires_grad_(True)
    e = pool(hidden, *toks, NUM_ENTITIES)
    assert e.shape == (NUM_ENTITIES, D)
    assert torch.isfinite(e).all()
    if name != "gat":  # an entity without tokens pools to zeros (gat: to its bias)
        assert e[4].eq(0).all()
    (e * torch.randn_like(e)).sum().backward()
    assert_grads([hidden, *pool.parameters()])
    used = torch.zeros(2, 7, dtype=torch.bool)
    used[toks[0], toks[1]] = True
    assert hidden.grad[used].abs().sum(-1).gt(0).all()
    assert hidden.grad[~used].eq(0).all()


def test_mean_pooling_by_hand() -> None:
    hidden, toks = batch()
    e = make_pooling("mean", D)(hidden, *toks, NUM_ENTITIES)
    expected = torch.stack(
        [
            hidden[0, 1:4].mean(0),
            hidden[0, 4],
            hidden[1, 0:3].mean(0),
            hidden[1, 3:6].mean(0),
            torch.zeros(D),
        ]
    )
    torch.testing.assert_close(e, expected)
    # weighted pooling starts as the mean
    torch.testing.assert_close(make_pooling("weighted", D)(hidden, *toks, NUM_ENTITIES), expected)


@pytest.mark.parametrize("name", sorted(POOLINGS))
def test_pooling_entities_do_not_leak(name: str) -> None:
    pool = build_pooling(name).eval()
    hidden, toks = batch()
    base = pool(hidden, *toks, NUM_ENTITIES)
    hidden2 = hidden.clone()
    hidden2[1, 1] += 1.0  # a token of entity 2
    out = pool(hidden2, *toks, NUM_ENTITIES)
    torch.testing.assert_close(out[[0, 1, 3, 4]], base[[0, 1, 3, 4]], atol=1e-6, rtol=0)
    assert not torch.allclose(out[2], base[2])


@pytest.mark.parametrize("name", sorted(POOLINGS))
def test_pooling_overfits(name: str) -> None:
    pool = build_pooling(name)
    hidden, toks = batch()
    target = hidden[toks[0], toks[1]][torch.tensor([0, 3, 4, 7])]  # first token of entities 0-3
    params = list(pool.parameters()) or [hidden.requires_grad_(True)]  # mean: train the "LM"
    opt = torch.optim.Adam(params, lr=1e-2 if params[0] is not hidden else 1e-1)
    losses = []
    for _ in range(50):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(pool(hidden, *toks, 4), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
