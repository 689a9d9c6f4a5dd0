"""The torch conventions every stage shares: one seed, bf16 autocast, the weight-decay rule."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed ``random``, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on CUDA when ``bf16``; a no-op elsewhere."""
    if device.type == "cuda" and bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def decay_groups(params, weight_decay: float, **group) -> list[dict]:
    """AdamW groups: matrices decay by ``weight_decay``; vectors (biases, LayerNorm
    weights) do not; empty groups dropped; ``group`` keys (e.g. ``lr``) join both."""
    params = [p for p in params if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    return [g | group for g in groups if g["params"]]
