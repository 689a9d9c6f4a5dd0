"""Training objectives of BALI (paper §4.2) and the alignment-loss ablations (§5.5.1).

Every alignment loss is an ``nn.Module`` with ``forward(text [E, d], graph [C, d], target [E])``
-> scalar, where ``target`` is the concept row of each entity, and wraps a pure function on plain
tensors: :func:`info_nce` (the paper's L_align), :func:`multi_similarity` (L_ms-align) and
:func:`pair_classification` (the BCE classifier ablation). :mod:`.mlm` holds BERT masking and
L_MLM; :func:`total_loss` combines the two, a weight of 0 skipping its term.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from bali.errors import OptionError

from .cls import PairClassificationLoss, pair_classification, pair_logits, pair_mask
from .combined import total_loss
from .infonce import InfoNCELoss, info_nce
from .mlm import IGNORE_INDEX, mask_tokens, mlm_loss
from .ms import MultiSimilarityLoss, multi_similarity

ALIGNMENT_LOSSES: dict[str, type[nn.Module]] = {
    "infonce": InfoNCELoss,
    "ms": MultiSimilarityLoss,
    "cls": PairClassificationLoss,
}


def make_alignment_loss(name: str, dim: int, **kw: Any) -> nn.Module:
    """The alignment loss registered as ``name``; ``dim`` (d) sizes the ones with parameters."""
    try:
        cls = ALIGNMENT_LOSSES[name]
    except KeyError:
        known = sorted(ALIGNMENT_LOSSES)
        raise OptionError(f"unknown alignment loss {name!r}; one of {known}") from None
    return cls(dim, **kw) if cls is PairClassificationLoss else cls(**kw)


__all__ = [
    "ALIGNMENT_LOSSES",
    "IGNORE_INDEX",
    "InfoNCELoss",
    "MultiSimilarityLoss",
    "PairClassificationLoss",
    "info_nce",
    "make_alignment_loss",
    "mask_tokens",
    "mlm_loss",
    "multi_similarity",
    "pair_classification",
    "pair_logits",
    "pair_mask",
    "total_loss",
]
