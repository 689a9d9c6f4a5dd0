"""Graph encoders over concept star subgraphs (paper §4.1, §5.4).

Every encoder maps node-slot inputs to one vector per concept centre::

    forward(x [N, d], edge_index [2, M], edge_type [M], centre [C]) -> g [C, d]

``x`` holds the LM-encoded names of all node slots (each concept's star has its own slots, so
stars never share nodes), ``edge_index[0]`` is a neighbour slot and ``edge_index[1]`` its centre
slot, ``edge_type`` the relation id and ``centre`` the slot of each concept's centre. All
aggregation is restricted to a centre's own incoming edges, so stars do not leak into each other.

Variants (``GRAPH_ENCODERS``): ``gat`` (paper default), ``sage`` (GraphSAGE), ``distmult``,
``transe``, ``textual`` and ``linear`` (linearised graph, encoded by the LM itself; see
:func:`linearize`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATv2Conv, SAGEConv
from torch_geometric.utils import scatter

from bali.errors import OptionError

__all__ = [
    "GRAPH_ENCODERS",
    "DistMultEncoder",
    "GATEncoder",
    "GraphEncoder",
    "LinearizedGraph",
    "SAGEEncoder",
    "SkipEncoder",
    "TextualEncoder",
    "TransEEncoder",
    "linearize",
    "make_graph_encoder",
]


class GraphEncoder(nn.Module):
    """Base class: ``forward(x, edge_index, edge_type, centre) -> g [C, d_out]``."""

    #: True only for the linearised graph, which the LM encodes as a token sequence.
    is_linearized: bool = False

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, centre: Tensor) -> Tensor:
        raise NotImplementedError


class GATEncoder(GraphEncoder):
    r"""L layers of GATv2 (Brody et al., 2022) over the 1-hop star (paper §4.1).

    Layer l (heads h = 1..H concatenated, each of size ``hidden // H``)::

        g_v^l = W_o g_v^{l-1} + b + ||_h sum_{u in N(v) ∪ {v}} α_uv^h W^h g_u^{l-1}
        α_uv^h = softmax_u( a_h^T LeakyReLU(W^h g_u + W_t^h g_v + W_e^h r_uv) )

    ``W_o`` is the paper's centre term (GATv2Conv ``residual=True``); a self-loop lets the
    centre also attend to itself, so a centre without neighbours keeps its own input.
    LeakyReLU is applied between layers (not after the last, whose output feeds the cosine
    alignment loss), feature dropout before every layer and attention dropout inside it (both
    ``dropout``); the output is projected ``hidden -> dim`` when they differ.

    Relations: when ``num_relations > 0`` the relation embedding ``r_uv = R[edge_type]`` enters
    the attention score as ``edge_attr`` (``edge_dim = hidden``); self-loops use an extra
    learned "self" relation ``R[num_relations]``. The authors' code ignored relation types;
    ``num_relations=0`` (factory: ``use_relations=False``) reproduces that.
    """

    def __init__(
        self,
        dim: int,
        hidden: int | None = None,
        layers: int = 5,
        heads: int = 2,
        num_relations: int = 0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        hidden = hidden or dim
        if hidden % heads:
            raise OptionError(f"hidden size {hidden} is not divisible by {heads} heads")
        if layers < 1:
            raise OptionError("layers must be >= 1")
        self.num_relations = num_relations
        self.dropout = dropout
        edge_dim = hidden if num_relations > 0 else None
        self.rel = nn.Embedding(num_relations + 1, hidden) if num_relations > 0 else None
        self.convs = nn.ModuleList(
            GATv2Conv(
                dim if i == 0 else hidden,
                hidden // heads,
                heads=heads,
                concat=True,
                dropout=dropout,
                add_self_loops=False,  # added in forward, with their own relation id
                edge_dim=edge_dim,
                residual=True,
            )
            for i in range(layers)
        )
        self.out = nn.Linear(hidden, dim) if hidden != dim else nn.Identity()

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, centre: Tensor) -> Tensor:
        loop = torch.arange(x.size(0), device=x.device)
        edge_index = torch.cat([edge_index, loop.expand(2, -1)], dim=1)
        edge_attr = None
        if self.rel is not None:
            loop_type = loop.new_full(loop.shape, self.num_relations)
            edge_attr = self.rel(torch.cat([edge_type, loop_type]))
        for i, conv in enumerate(self.convs):
            if i > 0:
                x = F.leaky_relu(x)
            x = F.dropout(x, p=self.dropout, training=self.training)
            x = conv(x, edge_index, edge_attr)
        return self.out(x[centre])


class SAGEEncoder(GraphEncoder):
    r"""L layers of GraphSAGE with mean aggregation (Hamilton et al., 2017; paper §5.4).

    Layer l: ``g_v^l = W_1 g_v^{l-1} + W_2 mean_{u in N(v)} g_u^{l-1}`` (0 when v has no
    neighbours), LeakyReLU and dropout between layers, output projected ``hidden -> dim`` when
    they differ. Relation types are ignored (plain GraphSAGE).
    """

    def __init__(
        self, dim: int, hidden: int | None = None, layers: int = 5, dropout: float = 0.1
    ) -> None:
        super().__init__()
        hidden = hidden or dim
        if layers < 1:
            raise OptionError("layers must be >= 1")
        self.dropout = dropout
        self.convs = nn.ModuleList(
            SAGEConv(dim if i == 0 else hidden, hidden, aggr="mean") for i in range(layers)
        )
        self.out = nn.Linear(hidden, dim) if hidden != dim else nn.Identity()

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, centre: Tensor) -> Tensor:
        for i, conv in enumerate(self.convs):
            if i > 0:
                x = F.leaky_relu(x)
            x = F.dropout(x, p=self.dropout, training=self.training)
            x = conv(x, edge_index)
        return self.out(x[centre])


class _RelationalEncoder(GraphEncoder):
    r"""Shared aggregation of the translation-based encoders (paper §5.4)::

        a_v = mean_{(u,r,v)} m_u,r        (a_v = x_v when v has no neighbours)
        g_v = W [x_v ; a_v] + b,          W in R^{d x 2d}

    ``W`` starts as ``[I/2, I/2]`` with ``b = 0`` (``g_v`` = mean of the centre and its
    aggregated messages), so at initialisation the encoder is parameter-free name averaging
    and only the relation vectors ``w_r`` are "knowledge" parameters, as in the paper.
    With ``num_relations == 0`` all edges share one relation vector.
    """

    def __init__(self, dim: int, num_relations: int = 0, dropout: float = 0.1) -> None:
        super().__init__()
        self.shared = num_relations == 0
        self.rel = nn.Parameter(torch.empty(max(num_relations, 1), dim))
        self.lin = nn.Linear(2 * dim, dim)
        self.dropout = dropout
        self.reset_parameters()

    def reset_parameters(self) -> None:
        eye = torch.eye(self.lin.out_features) / 2
        with torch.no_grad():
            self.lin.weight.copy_(torch.cat([eye, eye], dim=1))
            self.lin.bias.zero_()

    def message(self, x_u: Tensor, w_r: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, centre: Tensor) -> Tensor:
        src, dst = edge_index
        w_r = self.rel[torch.zeros_like(edge_type) if self.shared else edge_type]
        msg = self.message(x[src], w_r)
        agg = scatter(msg, dst, dim=0, dim_size=x.size(0), reduce="mean")
        deg = torch.bincount(dst, minlength=x.size(0))
        agg = torch.where((deg > 0).unsqueeze(-1), agg, x)
        h = torch.cat([x[centre], agg[centre]], dim=-1)
        return self.lin(F.dropout(h, p=self.dropout, training=self.training))


class DistMultEncoder(_RelationalEncoder):
    r"""DistMult-style (Yang et al., 2015) diagonal relation transform: ``m_u,r = x_u ⊙ w_r``
    (``w_r`` initialised to ones), aggregated as in :class:`_RelationalEncoder`."""

    def reset_parameters(self) -> None:
        super().reset_parameters()
        nn.init.ones_(self.rel)

    def message(self, x_u: Tensor, w_r: Tensor) -> Tensor:
        return x_u * w_r


class TransEEncoder(_RelationalEncoder):
    r"""TransE-style (Bordes et al., 2013) translation: ``m_u,r = x_u + w_r`` (``w_r``
    initialised to zeros), aggregated as in :class:`_RelationalEncoder`."""

    def reset_parameters(self) -> None:
        super().reset_parameters()
        nn.init.zeros_(self.rel)

    def message(self, x_u: Tensor, w_r: Tensor) -> Tensor:
        return x_u + w_r


class TextualEncoder(GraphEncoder):
    r"""Textual-only ablation (paper §5.4): ``g_v = x_v``, the LM-encoded centre name.

    Parameter-free by default, as in the paper (all learning happens in the LM); with
    ``project=True`` it is ``g_v = W x_v + b`` (``W`` initialised to ``I``, ``b`` to 0).
    Neighbours and relations are ignored.
    """

    def __init__(self, dim: int, project: bool = False) -> None:
        super().__init__()
        self.lin: nn.Module = nn.Linear(dim, dim) if project else nn.Identity()
        if isinstance(self.lin, nn.Linear):
            nn.init.eye_(self.lin.weight)
            nn.init.zeros_(self.lin.bias)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, centre: Tensor) -> Tensor:
        return self.lin(x[centre])


class LinearizedGraph(GraphEncoder):
    """Marker for the linearised-graph variant (paper §4.1): the LM encodes the token sequence
    built by :func:`linearize`, so this module has no parameters and no ``forward``."""

    is_linearized = True

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, centre: Tensor) -> Tensor:
        raise RuntimeError(
            "the linearised graph is encoded by the LM; build inputs with linearize()"
        )


def linearize(
    centre_name_ids: list[int],
    neighbors: list[tuple[list[int], list[int]]],
    cls_id: int,
    sep_id: int,
    max_length: int,
) -> list[int]:
    """Token ids of the linearised star graph (paper §4.1)::

        [CLS] s_v [SEP] s_u1 r_1 s_v [SEP] s_u2 r_2 s_v [SEP] ...

    ``centre_name_ids`` is the centre name ``s_v`` and ``neighbors`` holds
    ``(s_u name ids, r relation-name ids)`` per edge ``(u, r, v)``, all without their own
    special tokens. Truncation is at whole-edge granularity: edges are appended in order while
    the sequence still fits ``max_length``; the first edge that does not fit ends the sequence.
    If ``[CLS] s_v [SEP]`` alone is too long, ``s_v`` is cut to ``max_length - 2`` tokens.
    """
    if max_length < 2:
        raise OptionError("max_length must be >= 2 to hold [CLS] and [SEP]")
    ids = [cls_id, *centre_name_ids[: max_length - 2], sep_id]
    for name_ids, rel_ids in neighbors:
        edge = [*name_ids, *rel_ids, *centre_name_ids, sep_id]
        if len(ids) + len(edge) > max_length:
            break
        ids += edge
    return ids


GRAPH_ENCODERS: dict[str, type[GraphEncoder]] = {
    "gat": GATEncoder,
    "sage": SAGEEncoder,
    "distmult": DistMultEncoder,
    "transe": TransEEncoder,
    "textual": TextualEncoder,
    "linear": LinearizedGraph,
}


class SkipEncoder(GraphEncoder):
    r"""``g_v = x_v + Z(inner(x, ...)_v)`` with ``Z`` a linear map initialised to zero.

    At step 0 ``g_v`` is the centre's own (LM-encoded name) input, as for ``textual``, so
    alignment starts from a meaningful target instead of a random GNN's output; ``Z`` then
    learns how much of what the neighbours add to pass (a zero-initialised residual branch,
    as ReZero / zero convolutions).
    """

    def __init__(self, inner: GraphEncoder, dim: int) -> None:
        super().__init__()
        self.inner = inner
        self.gate = nn.Linear(dim, dim)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor, centre: Tensor) -> Tensor:
        return x[centre] + self.gate(self.inner(x, edge_index, edge_type, centre))


def make_graph_encoder(
    name: str,
    dim: int,
    hidden: int | None = None,
    layers: int = 5,
    heads: int = 2,
    num_relations: int = 0,
    dropout: float = 0.1,
    use_relations: bool = True,
    skip: bool = False,
) -> GraphEncoder:
    """Build the encoder ``name`` from ``GRAPH_ENCODERS``; arguments it does not use are ignored.

    ``use_relations=False`` (or ``num_relations=0``) makes ``gat`` relation-blind and makes
    ``distmult``/``transe`` share a single relation vector. ``skip=True`` wraps ``gat`` or
    ``sage`` in :class:`SkipEncoder`.
    """
    if name not in GRAPH_ENCODERS:
        raise OptionError(f"unknown graph encoder {name!r}; choose from {sorted(GRAPH_ENCODERS)}")
    rels = num_relations if use_relations else 0
    if name in ("gat", "sage"):
        inner = GATEncoder(dim, hidden, layers, heads, rels, dropout) if name == "gat" else \
            SAGEEncoder(dim, hidden, layers, dropout)
        return SkipEncoder(inner, dim) if skip else inner
    if name == "distmult":
        return DistMultEncoder(dim, rels, dropout)
    if name == "transe":
        return TransEEncoder(dim, rels, dropout)
    if name == "textual":
        return TextualEncoder(dim)
    return LinearizedGraph(dim)
