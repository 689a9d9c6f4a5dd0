"""Pair-classification alignment loss, the BCE ablation of L_align (paper §5.5.1).

A fully connected 1-layer classifier reads the concatenation [e_i ; g_j] and predicts whether the
entity and the graph node are the same concept (label 1) or not (label 0):

    z_ij = w · [e_i ; g_j] + b = w_e · e_i + w_g · g_j + b
    L = mean over labelled pairs (i, j) of BCE(σ(z_ij), y_ij)

Positives are (i, t(i)); the negatives of entity i are the other concept rows of the batch: all
of them, or ``negatives`` of them drawn uniformly without replacement (from ``generator`` when
given, so the draw is reproducible). The split form of the linear layer gives all E x C logits
without building the concatenated [E·C, 2d] input.

Note: as in the paper, the classifier is linear, so z_ij splits into a per-entity plus a
per-concept score. It cannot express whether e_i and g_j *match* (every entity ranks the concepts
in the same order), which is the paper's "lacks explicit information exchange"; this ablation
does not pull aligned pairs together the way the contrastive losses do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def pair_mask(
    target: Tensor,
    num_concepts: int,
    negatives: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """``(labelled [E, C] bool, positive [E, C] bool)``: the pairs that enter the loss."""
    cols = torch.arange(num_concepts, device=target.device)
    positive = target[:, None] == cols[None, :]
    if negatives is None or negatives >= num_concepts - 1:
        return torch.ones_like(positive), positive
    device = generator.device if generator is not None else target.device
    scores = torch.rand(positive.shape, generator=generator, device=device).to(target.device)
    scores = scores.masked_fill(positive, -1.0)  # never drawn as a negative
    chosen = torch.zeros_like(positive)
    if negatives > 0:
        chosen.scatter_(1, scores.topk(negatives, dim=1).indices, True)
    return chosen | positive, positive


def pair_logits(text: Tensor, graph: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``[E, C]`` logits ``w · [text_i ; graph_j] + b`` of a ``Linear(2d, 1)`` on every pair."""
    w = weight.reshape(-1)
    d = text.shape[-1]
    logits = text @ w[:d, None] + (graph @ w[d:, None]).T
    return logits if bias is None else logits + bias


def pair_classification(
    text: Tensor,
    graph: Tensor,
    target: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    negatives: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """BCE of a linear classifier ``weight [1, 2d]``, ``bias [1]`` on [text_i ; graph_j] pairs."""
    logits = pair_logits(text.float(), graph.float(), weight.float(),
                         None if bias is None else bias.float())
    labelled, positive = pair_mask(target, graph.shape[0], negatives, generator)
    return F.binary_cross_entropy_with_logits(logits[labelled], positive[labelled].float())


class PairClassificationLoss(nn.Module):
    """:func:`pair_classification` with its ``Linear(2d, 1)``; ``forward(text, graph, target)``."""

    def __init__(
        self,
        dim: int,
        negatives: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.classifier = nn.Linear(2 * dim, 1)
        self.negatives = negatives
        self.generator = generator

    def forward(self, text: Tensor, graph: Tensor, target: Tensor) -> Tensor:
        return pair_classification(
            text, graph, target, self.classifier.weight, self.classifier.bias,
            self.negatives, self.generator,
        )

    def logits(self, text: Tensor, graph: Tensor) -> Tensor:
        """``[E, C]`` same-concept logits (e.g. for accuracy), the classifier on every pair."""
        return pair_logits(text, graph, self.classifier.weight, self.classifier.bias)

    def extra_repr(self) -> str:
        return f"negatives={self.negatives}"
