"""Two training backends behind one interface: plain torch and DeepSpeed ZeRO-2.

``Backend.micro_step(loss, boundary)`` back-propagates one micro-batch and, at an
accumulation boundary, clips, steps the optimizer and the LR schedule. ``save``/``load``
write and restore a checkpoint directory (every rank calls them) including the caller's
``client_state``; ``fp32_state_dict(directory)`` is the full-precision model of a checkpoint
(DeepSpeed: merged from the ZeRO partitions of the fp32 master weights, never the bf16
module copy). Both backends run under one launcher, ``torchrun`` (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` from the environment, :mod:`bali.distributed`); the torch backend wraps the
model in DDP when the world is larger than one. AdamW is fused on CUDA; bf16 autocast on
GPU. DeepSpeed is imported only in :class:`DeepSpeedBackend`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from bali import distributed as dist
from bali.torchutil import autocast, decay_groups
from bali.train.config import TrainConfig


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """AdamW groups: LM parameters at ``lr_lm``, the rest at ``lr_other``, each split by
    :func:`bali.torchutil.decay_groups`."""
    return [*decay_groups(model.lm_parameters(), cfg.weight_decay, lr=cfg.lr_lm),
            *decay_groups(model.other_parameters(), cfg.weight_decay, lr=cfg.lr_other)]


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device):
    """AdamW over :func:`param_groups`, the fused CUDA kernel on GPU."""
    return torch.optim.AdamW(param_groups(model, cfg), fused=device.type == "cuda")


def merged_state_dict(module: nn.Module, tensors: dict) -> dict:
    """``module.state_dict()`` with every tensor that ``tensors`` holds taken from there (as
    float32 when floating); buffers and tied names it lacks stay the module's."""
    out = {}
    for key, value in module.state_dict().items():
        v = tensors.get(key, value)
        out[key] = v.float() if v.is_floating_point() else v
    return out


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig):
    """Linear warm-up over ``warmup_ratio * steps``, then cosine decay to zero."""
    from transformers import get_cosine_schedule_with_warmup

    return get_cosine_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * cfg.steps),
                                           cfg.steps)


class TorchBackend:
    """Plain PyTorch: CPU, one GPU, or DDP under torchrun."""

    def __init__(self, model: nn.Module, cfg: TrainConfig):
        self.cfg = cfg
        self.world = dist.world()
        local = dist.local_rank()
        self.device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.model = model.to(self.device)
        self.optimizer = make_optimizer(model, cfg, self.device)
        self.scheduler = make_scheduler(self.optimizer, cfg)
        self.module = model
        if self.world > 1:
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            self.model = nn.parallel.DistributedDataParallel(
                model, device_ids=[local] if self.device.type == "cuda" else None,
                find_unused_parameters=True)
        self.is_main = dist.rank() == 0

    def forward(self, batch: dict) -> dict:
        with autocast(self.device, self.cfg.bf16):
            return self.model({k: v.to(self.device) for k, v in batch.items()})

    def micro_step(self, loss: torch.Tensor, boundary: bool) -> None:
        (loss / self.cfg.grad_accum).backward()
        if boundary:
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.cfg.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)

    def learning_rates(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def save(self, directory: Path, client_state: dict) -> None:
        from bali.io import atomic_paths

        if not self.is_main:  # replicas hold the same state
            return
        state = {"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "client": client_state}
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_paths(directory / "state.pt") as (tmp,):
            torch.save(state, tmp)

    def load(self, directory: Path) -> dict:
        state = torch.load(directory / "state.pt", map_location=self.device, weights_only=True)
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        return state["client"]

    def fp32_state_dict(self, directory: Path) -> dict:
        return merged_state_dict(self.module, {})


class DeepSpeedBackend:
    """DeepSpeed with the ZeRO-2 settings of ``cfg.deepspeed_config`` (bf16 on GPU)."""

    def __init__(self, model: nn.Module, cfg: TrainConfig):
        for key, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0"),
                           ("MASTER_ADDR", "127.0.0.1")):
            os.environ.setdefault(key, value)  # single process without a launcher
        if "MASTER_PORT" not in os.environ:  # never a fixed port: jobs may share a node
            os.environ["MASTER_PORT"] = str(dist.free_port())
        if not torch.cuda.is_available():
            os.environ.setdefault("DS_ACCELERATOR", "cpu")
        import deepspeed

        self.cfg = cfg
        ds_config = json.loads(Path(cfg.deepspeed_config).read_text())
        ds_config.update({
            "train_micro_batch_size_per_gpu": cfg.batch_size,
            "gradient_accumulation_steps": cfg.grad_accum,
            "gradient_clipping": cfg.max_grad_norm,
        })
        ds_config.pop("train_batch_size", None)
        ds_config["bf16"] = {"enabled": bool(cfg.bf16 and torch.cuda.is_available())}
        device = torch.device(f"cuda:{dist.local_rank()}" if torch.cuda.is_available() else "cpu")
        optimizer = make_optimizer(model, cfg, device)
        scheduler = make_scheduler(optimizer, cfg)
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config)
        self.module = model
        self.device = self.engine.device
        self.is_main = self.engine.global_rank == 0

    def forward(self, batch: dict) -> dict:
        batch = {k: v.to(self.device) for k, v in batch.items()}
        return self.engine(batch)

    def micro_step(self, loss: torch.Tensor, boundary: bool) -> None:
        self.engine.backward(loss)
        self.engine.step()  # steps optimizer and schedule only at the accumulation boundary

    def learning_rates(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def save(self, directory: Path, client_state: dict) -> None:
        self.engine.save_checkpoint(str(directory), tag="state", client_state=client_state)

    def load(self, directory: Path) -> dict:
        _, client_state = self.engine.load_checkpoint(str(directory), tag="state")
        return client_state

    def fp32_state_dict(self, directory: Path) -> dict:
        """The fp32 master weights of checkpoint ``directory`` (ZeRO partitions merged)."""
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        return merged_state_dict(self.module, get_fp32_state_dict_from_zero_checkpoint(
            str(directory), tag="state"))


BACKENDS = {"torch": TorchBackend, "deepspeed": DeepSpeedBackend}
