"""Cross-modal Multi-Similarity loss, L_ms-align of the BALI ablation (paper §5.5.1, Eq. 1).

Multi-Similarity loss: Wang et al., "Multi-Similarity Loss With General Pair Weighting for Deep
Metric Learning", CVPR 2019. Anchors are the text entities e_i, candidates the graph rows g_c;
S_ic = cos(e_i, g_c). The positive set of entity i is its concept row, P_i = {t(i)}; the negative
set N_i is every other concept row of the batch (a concept occurs once per batch). Per anchor

    1/α · log(1 + Σ_{p∈P_i} exp(-α (S_ip - λ))) + 1/β · log(1 + Σ_{n∈N_i} exp(β (S_in - λ)))

averaged over all E anchors, as in Eq. 1 and Wang et al. (an anchor left with no mined pair
contributes 0 and still counts in the mean).

Hard-pair mining (Wang et al. §3.3) with margin m, applied before the loss and not
differentiated through: a negative n is kept if S_in + m > min_{p∈P_i} S_ip, a positive p is kept
if S_ip - m < max_{n∈N_i} S_in. ``mining_margin=None`` disables mining (all pairs are used).

Hyper-parameters. The paper adopts the values of SapBERT [35] and GEBERT [58], quoted as "α=2,
β=50, ε=0.5". In the paper's Eq. 1, ε is the similarity offset subtracted inside both exponentials,
i.e. Wang et al.'s λ (pytorch-metric-learning's ``base``), so ε=0.5 is read as ``base=0.5``, not as
a mining margin. Eq. 1 also swaps α and β relative to Wang et al.; the cited work's values come from
pytorch-metric-learning's ``MultiSimilarityLoss(alpha=2, beta=50, base=0.5)``, whose α scales the
positives, so we follow Wang et al.: α=2 on positives, β=50 on negatives. The paper gives no mining
margin; the default ``mining_margin=0.1`` is Wang et al.'s ε (also pytorch-metric-learning's
``MultiSimilarityMiner`` default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _log1p_sum_exp(x: Tensor, keep: Tensor) -> Tensor:
    """Row-wise ``log(1 + Σ_{keep} exp(x))``, stable; rows with nothing kept give 0."""
    x = x.masked_fill(~keep, float("-inf"))
    return torch.logsumexp(torch.cat([torch.zeros_like(x[:, :1]), x], dim=1), dim=1)


def multi_similarity(
    text: Tensor,
    graph: Tensor,
    target: Tensor,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    mining_margin: float | None = 0.1,
) -> Tensor:
    """MS loss of entities ``text [E, d]`` against concept rows ``graph [C, d]`` (module doc)."""
    sim = F.normalize(text.float(), dim=-1) @ F.normalize(graph.float(), dim=-1).T  # [E, C]
    pos = target[:, None] == torch.arange(graph.shape[0], device=target.device)[None, :]
    neg = ~pos
    if mining_margin is not None:
        with torch.no_grad():
            min_pos = sim.masked_fill(neg, float("inf")).amin(dim=1, keepdim=True)
            max_neg = sim.masked_fill(pos, float("-inf")).amax(dim=1, keepdim=True)
            neg = neg & (sim + mining_margin > min_pos)
            pos = pos & (sim - mining_margin < max_neg)
    pos_term = _log1p_sum_exp(-alpha * (sim - base), pos) / alpha
    neg_term = _log1p_sum_exp(beta * (sim - base), neg) / beta
    return (pos_term + neg_term).mean()


class MultiSimilarityLoss(nn.Module):
    """:func:`multi_similarity` as a module: ``forward(text [E, d], graph [C, d], target [E])``."""

    def __init__(
        self,
        alpha: float = 2.0,
        beta: float = 50.0,
        base: float = 0.5,
        mining_margin: float | None = 0.1,
    ) -> None:
        super().__init__()
        self.alpha, self.beta, self.base, self.mining_margin = alpha, beta, base, mining_margin

    def forward(self, text: Tensor, graph: Tensor, target: Tensor) -> Tensor:
        return multi_similarity(
            text, graph, target, self.alpha, self.beta, self.base, self.mining_margin
        )

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, beta={self.beta}, base={self.base}, "
            f"mining_margin={self.mining_margin}"
        )
