"""Token -> entity pooling (paper §4.1, ablations §5.5.2).

Every pooling maps last-layer LM states to one vector per entity::

    forward(hidden [B, T, d], tok_batch [K], tok_pos [K], tok_entity [K], num_entities E)
        -> e [E, d]

token ``hidden[tok_batch[k], tok_pos[k]]`` belongs to entity ``tok_entity[k]``; build the
membership with :func:`entity_tokens`. An entity without tokens pools to zeros (``mean``,
``weighted``, ``transformer``) or to the GAT bias (``gat``).

Variants (``POOLINGS``): ``mean`` (paper default), ``weighted``, ``gat``, ``transformer``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATv2Conv
from torch_geometric.utils import scatter, softmax

from bali.errors import OptionError

__all__ = [
    "POOLINGS",
    "EntityPooling",
    "GATPooling",
    "MeanPooling",
    "TransformerPooling",
    "WeightedPooling",
    "entity_tokens",
    "make_pooling",
]


def entity_tokens(
    mention_batch: Tensor, mention_start: Tensor, mention_end: Tensor, mention_entity: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Expand mention token spans ``[start, end)`` into the flattened membership
    ``(tok_batch, tok_pos, tok_entity)``.

    Duplicate ``(entity, batch, pos)`` triples (overlapping mentions of one entity) are kept
    once, so every token counts once per entity; the result is sorted by
    ``(entity, batch, pos)``. Empty spans (``end <= start``) contribute nothing.
    """
    lengths = (mention_end - mention_start).clamp(min=0)
    mention = torch.repeat_interleave(torch.arange(lengths.numel(), device=lengths.device), lengths)
    first = torch.cumsum(lengths, 0) - lengths  # flat index of each mention's first token
    pos = mention_start[mention] + torch.arange(mention.numel(), device=lengths.device)
    pos = pos - first[mention]
    triples = torch.stack([mention_entity[mention], mention_batch[mention], pos], dim=1)
    triples = torch.unique(triples, dim=0) if triples.numel() else triples
    return triples[:, 1], triples[:, 2], triples[:, 0]


class EntityPooling(nn.Module):
    """Base class: ``forward(hidden, tok_batch, tok_pos, tok_entity, num_entities) -> [E, d]``."""

    def forward(
        self,
        hidden: Tensor,
        tok_batch: Tensor,
        tok_pos: Tensor,
        tok_entity: Tensor,
        num_entities: int,
    ) -> Tensor:
        raise NotImplementedError


class MeanPooling(EntityPooling):
    r"""Paper default: ``e = 1/|H_e| sum_{k in H_e} h_k`` over the entity's (deduplicated)
    tokens; parameter-free."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()

    def forward(
        self,
        hidden: Tensor,
        tok_batch: Tensor,
        tok_pos: Tensor,
        tok_entity: Tensor,
        num_entities: int,
    ) -> Tensor:
        h = hidden[tok_batch, tok_pos]
        return scatter(h, tok_entity, dim=0, dim_size=num_entities, reduce="mean")


class WeightedPooling(EntityPooling):
    r"""Attention-weighted sum (ablation (i)), no other transformation::

        a_k = softmax_{k in H_e}(w^T h_k),    e = sum_{k in H_e} a_k h_k

    ``w`` is initialised to 0, so pooling starts as the mean.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(dim))

    def forward(
        self,
        hidden: Tensor,
        tok_batch: Tensor,
        tok_pos: Tensor,
        tok_entity: Tensor,
        num_entities: int,
    ) -> Tensor:
        h = hidden[tok_batch, tok_pos]
        a = softmax(h @ self.w, tok_entity, num_nodes=num_entities)
        return scatter(a.unsqueeze(-1) * h, tok_entity, dim=0, dim_size=num_entities, reduce="sum")


class GATPooling(EntityPooling):
    r"""One GATv2 layer on the bipartite token -> entity graph (ablation (ii), the layer of
    paper §4.1). A virtual entity node starts at the mean ``ē`` of its tokens and receives
    attention-weighted messages from them (H heads of size ``d // H``, concatenated)::

        e = LeakyReLU( W_o ē + b + ||_h sum_{k in H_e} α_k^h W^h h_k )
        α_k^h = softmax_{k in H_e}( a_h^T LeakyReLU(W^h h_k + W_t^h ē) )
    """

    def __init__(self, dim: int, heads: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        heads = heads if dim % heads == 0 else 1
        self.conv = GATv2Conv(
            (dim, dim),
            dim // heads,
            heads=heads,
            dropout=dropout,
            add_self_loops=False,
            residual=True,
        )

    def forward(
        self,
        hidden: Tensor,
        tok_batch: Tensor,
        tok_pos: Tensor,
        tok_entity: Tensor,
        num_entities: int,
    ) -> Tensor:
        h = hidden[tok_batch, tok_pos]
        e0 = scatter(h, tok_entity, dim=0, dim_size=num_entities, reduce="mean")
        edge_index = torch.stack([torch.arange(h.size(0), device=h.device), tok_entity])
        return F.leaky_relu(self.conv((h, e0), edge_index))


class TransformerPooling(EntityPooling):
    r"""One ``nn.TransformerEncoderLayer`` over each entity's own tokens (ablation (iii)),
    then the mean over them::

        e = mean_{k in H_e} TransformerLayer(H_e)_k

    Tokens are padded per entity into ``[E, max|H_e|, d]`` with a key padding mask, so
    attention never crosses entities. The layer is BERT-like: post-LN, GELU, FFN size ``4d``,
    ``nhead`` = the first of 12, 8, 4, 2, 1 dividing ``d`` unless given.
    """

    def __init__(self, dim: int, nhead: int | None = None, dropout: float = 0.1) -> None:
        super().__init__()
        nhead = nhead or next(n for n in (12, 8, 4, 2, 1) if dim % n == 0)
        self.layer = nn.TransformerEncoderLayer(
            dim,
            nhead,
            dim_feedforward=4 * dim,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
        )

    def forward(
        self,
        hidden: Tensor,
        tok_batch: Tensor,
        tok_pos: Tensor,
        tok_entity: Tensor,
        num_entities: int,
    ) -> Tensor:
        order = torch.argsort(tok_entity, stable=True)
        ent = tok_entity[order]
        counts = torch.bincount(tok_entity, minlength=num_entities)
        first = torch.cumsum(counts, 0) - counts
        rank = torch.arange(ent.numel(), device=ent.device) - first[ent]
        width = max(int(counts.max()), 1) if num_entities else 1
        padded = hidden.new_zeros(num_entities, width, hidden.size(-1))
        padded[ent, rank] = hidden[tok_batch[order], tok_pos[order]]
        pad = torch.ones(num_entities, width, dtype=torch.bool, device=hidden.device)
        pad[ent, rank] = False
        pad[:, 0] &= counts > 0  # an empty entity attends to one zero slot instead of nothing
        out = self.layer(padded, src_key_padding_mask=pad)
        keep = (~pad & (counts > 0).unsqueeze(-1)).unsqueeze(-1)
        return (out * keep).sum(1) / counts.clamp(min=1).unsqueeze(-1)


POOLINGS: dict[str, type[EntityPooling]] = {
    "mean": MeanPooling,
    "weighted": WeightedPooling,
    "gat": GATPooling,
    "transformer": TransformerPooling,
}


def make_pooling(name: str, dim: int, dropout: float = 0.1) -> EntityPooling:
    """Build the pooling ``name`` from ``POOLINGS`` for LM hidden size ``dim``."""
    if name not in POOLINGS:
        raise OptionError(f"unknown pooling {name!r}; choose from {sorted(POOLINGS)}")
    if name == "gat":
        return GATPooling(dim, dropout=dropout)
    if name == "transformer":
        return TransformerPooling(dim, dropout=dropout)
    return POOLINGS[name](dim)
