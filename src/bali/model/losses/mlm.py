"""Masked language modelling, L_MLM of BALI (paper §4.2; Devlin et al. 2019, BERT).

    L_MLM = -1/|M| Σ_{t_i ∈ M} log p(t_i | H_T)

M is drawn as in BERT (paper §5, implementation details): each ordinary token is selected with
probability 0.15 (special tokens and padding never); a selected token becomes [MASK] with
probability 0.8, a uniformly random vocabulary token with 0.1, and stays unchanged with 0.1. The
loss is the mean cross-entropy over the selected tokens (the paper writes the sum; the mean is
BERT's and Hugging Face's reduction).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE_INDEX = -100


def mask_tokens(
    input_ids: Tensor,
    special_mask: Tensor,
    vocab_size: int,
    mask_token_id: int,
    probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """BERT masking of ``input_ids [B, T]``; returns ``(masked_ids, labels)``.

    ``special_mask [B, T]`` is True at special tokens and padding, which are never selected.
    ``labels`` holds the original id at selected positions and -100 elsewhere. All randomness is
    drawn from ``generator`` (on its own device), so a seeded generator reproduces the output.
    """
    device = generator.device if generator is not None else input_ids.device
    shape = input_ids.shape

    def uniform() -> Tensor:
        return torch.rand(shape, generator=generator, device=device).to(input_ids.device)

    selected = (uniform() < probability) & ~special_mask
    replaced = selected & (uniform() < 0.8)
    randomised = selected & ~replaced & (uniform() < 0.5)
    random_ids = torch.randint(vocab_size, shape, generator=generator, device=device)

    labels = torch.where(selected, input_ids, IGNORE_INDEX)
    masked = torch.where(replaced, mask_token_id, input_ids)
    masked = torch.where(randomised, random_ids.to(input_ids), masked)
    return masked, labels


def mlm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of ``logits [B, T, V]`` over positions with ``labels != -100``.

    Returns 0 (still attached to ``logits``' graph) when no position is selected.
    """
    total = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
        ignore_index=IGNORE_INDEX, reduction="sum",
    )
    return total / (labels != IGNORE_INDEX).sum().clamp(min=1)
