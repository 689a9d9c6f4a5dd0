"""Data parallelism: the process's place in the job and the one collective the loss needs.

Rank and world come from the launcher's environment (``torchrun`` sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``; the DeepSpeed launcher
passes ``--local_rank`` too, which ``bali pretrain`` accepts) or, once initialised, from the
process group. :func:`gather_rows` concatenates every rank's rows, in rank order, keeping
the gradient: as open_clip's ``gather_features``, each rank computes the loss of the whole
global batch, and the backward pass sums the gradients of all ranks' copies onto the rows
a rank owns; data-parallel averaging over the ``w`` ranks then gives exactly the gradient
of the single-process loss on the concatenated batch.
"""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist


def initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if initialized() else int(os.environ.get("RANK", "0"))


def world() -> int:
    return dist.get_world_size() if initialized() else int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def free_port() -> int:
    """A TCP port free on this host now (for a single process that needs a rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def barrier() -> None:
    if initialized():
        dist.barrier()


class _GatherRows(torch.autograd.Function):
    """``cat`` of every rank's rows; backward: the summed gradient of the caller's own rows."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        ctx.sizes, ctx.rank = sizes, dist.get_rank()
        return _all_gather(x, sizes)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every rank's copy of the loss contributes to every row
        start = sum(ctx.sizes[:ctx.rank])
        return grad[start:start + ctx.sizes[ctx.rank]], None


def _all_gather(x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    pad = x.new_zeros((max(sizes) - x.shape[0], *x.shape[1:]))
    padded = torch.cat([x, pad]).contiguous()
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)])


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """``[Σ_r n_r, ...]``: the rows ``x [n_r, ...]`` of every rank (sizes may differ), in rank
    order; with gradient for floating tensors (module docstring). One process: ``x``."""
    if not initialized() or dist.get_world_size() == 1:
        return x
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    sizes = [int(s) for s in sizes]
    if x.requires_grad:
        return _GatherRows.apply(x, sizes)
    return _all_gather(x, sizes)
