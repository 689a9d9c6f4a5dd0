"""Cross-modal InfoNCE alignment loss, L_align of BALI (paper §4.2; van den Oord et al. 2018).

With s_ij = cos(e_i, g_j) and temperature τ, the text->graph direction is, per entity i,

    -log( exp(s_i,t(i) / τ) / Σ_c exp(s_ic / τ) )

(cross-entropy over the C concept rows of the batch with target t(i)). The paper prints the
denominator as Σ_j exp(cos(e_j, g_j)/τ); we read that as the usual Σ_j exp(cos(e_i, g_j)/τ).
A batch holds each concept once (``graph [C, d]``), so the entities of a repeated concept share
one graph row: each of them is a positive of that row and never a negative of it.

The graph->text direction (``symmetric=True``) treats each concept c as an anchor over the E
entities, with the multi-positive set P(c) = {i : t(i) = c}:

    -log( Σ_{i∈P(c)} exp(s_ic / τ) / Σ_i exp(s_ic / τ) )

averaged over the concepts that have at least one entity. The loss is the mean of the two
directions. Optional hard negatives ``negatives [K, d]`` (e.g. the name vectors of the batch's
graph neighbours) join the text->graph denominator, each where ``allowed [E, K]`` is true
(never a row of the entity's own concept). The authors' code used τ = 0.07 and the
symmetric loss; both are the defaults here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DEFAULT_TEMPERATURE = 0.07


def cosine_logits(text: Tensor, graph: Tensor, temperature: float) -> Tensor:
    """``[E, C]`` matrix of cos(text_i, graph_j) / τ, computed in float32."""
    return F.normalize(text.float(), dim=-1) @ F.normalize(graph.float(), dim=-1).T / temperature


def multi_positive_nll(logits: Tensor, positive: Tensor) -> Tensor:
    """Per-row ``-log(Σ_{j∈P} exp(l_j) / Σ_j exp(l_j))`` for a boolean positive mask [R, K]."""
    pos = logits.masked_fill(~positive, float("-inf"))
    return torch.logsumexp(logits, dim=-1) - torch.logsumexp(pos, dim=-1)


def info_nce(
    text: Tensor,
    graph: Tensor,
    target: Tensor,
    temperature: float = DEFAULT_TEMPERATURE,
    symmetric: bool = True,
    negatives: Tensor | None = None,
    allowed: Tensor | None = None,
) -> Tensor:
    """InfoNCE between entities ``text [E, d]`` and concept rows ``graph [C, d]``.

    ``target`` is ``[E]``, the concept row of each entity, or a bool ``[E, C]`` positive mask
    (a concept may then own several rows, e.g. rows gathered from several data-parallel
    ranks: each is a positive, the text->graph term becomes multi-positive);
    ``negatives``/``allowed``: extra text->graph negatives (module docstring). Returns a
    scalar.
    """
    logits = cosine_logits(text, graph, temperature)  # [E, C]
    positive = target if target.dtype == torch.bool else F.one_hot(
        target, graph.shape[0]).bool()
    rows, row_positive = logits, positive
    if negatives is not None and negatives.shape[0]:
        extra = cosine_logits(text, negatives, temperature).masked_fill(~allowed, float("-inf"))
        rows = torch.cat([logits, extra], dim=1)
        row_positive = torch.cat([positive, torch.zeros_like(allowed)], dim=1)
    t2g = multi_positive_nll(rows, row_positive).mean()
    if not symmetric:
        return t2g
    present = positive.any(dim=0)  # concept rows with at least one entity
    g2t = multi_positive_nll(logits.T[present], positive.T[present]).mean()
    return (t2g + g2t) / 2


class InfoNCELoss(nn.Module):
    """:func:`info_nce` as a module: ``forward(text [E, d], graph [C, d], target [E])``."""

    def __init__(self, temperature: float = DEFAULT_TEMPERATURE, symmetric: bool = True) -> None:
        super().__init__()
        self.temperature = temperature
        self.symmetric = symmetric

    def forward(self, text: Tensor, graph: Tensor, target: Tensor,
                negatives: Tensor | None = None, allowed: Tensor | None = None) -> Tensor:
        return info_nce(text, graph, target, self.temperature, self.symmetric, negatives,
                        allowed)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, symmetric={self.symmetric}"
