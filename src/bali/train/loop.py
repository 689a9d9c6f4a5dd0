"""The pretraining loop: one loop for both backends, checkpoint/resume, metrics, curves.

Run directory layout::

    config.json            model + train config, shards meta (written at start)
    metrics.jsonl          one JSON object per optimizer step: step, loss, mlm_loss,
                           align_loss, align_acc (in-batch text->graph retrieval accuracy),
                           lr (per parameter group), samples_per_s, elapsed_s
                           (+ dev_acc1, dev_acc5, dev_align_acc, validate_s every
                           validate_every steps; a step-0 line holds the base model's)
    checkpoints/step_N/    backend state (model, optimizer, scheduler) + client state
                           (step, torch RNG states); checkpoints/latest names the newest
    model.safetensors      final weights of the whole BaliModel (read by ``bali export``)
    best.safetensors       weights of the step with the best dev_acc1 (+ best.json: step,
                           metrics), when validating; ``bali export --select best-dev``
    curves.png             loss and alignment accuracy curves (+ dev metrics)

``resume=True`` restores the newest checkpoint and continues with exactly the batches and
RNG states an uninterrupted run would have had (batches are seeded by their index, see
:mod:`bali.train.data`), so on CPU the final loss equals the uninterrupted run's.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bali.io import atomic_paths
from bali.train.config import ModelConfig, TrainConfig
from bali.train.data import BatchDataset, SpecialIds

log = logging.getLogger(__name__)


def build_model(mcfg: ModelConfig, num_relations: int):
    """The BaliModel around the configured masked-LM checkpoint (offline)."""
    from transformers import AutoModelForMaskedLM

    from bali.model.bali import BaliModel
    from bali.paths import resolve_model

    lm, info = AutoModelForMaskedLM.from_pretrained(resolve_model(mcfg.model),
                                                    output_loading_info=True)
    model = BaliModel(lm, mcfg, num_relations)
    model.new_lm_parameters = sorted(f"lm.{k}" for k in info["missing_keys"])
    if model.new_lm_parameters:
        log.warning("%s: %d LM tensors are not in the checkpoint and start random (e.g. %s; a "
                    "checkpoint without an MLM head); new_lm_lr=%s", mcfg.model,
                    len(model.new_lm_parameters), model.new_lm_parameters[0], mcfg.new_lm_lr)
    return model


def _relation_token_ids(tokenizer_dir: str, relations: list[str]) -> list[np.ndarray]:
    """Token ids of each relation label (``out:is_a`` -> "is a") for linearised graphs."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    words = [r.split(":", 1)[-1].replace("_", " ") for r in relations]
    return [np.asarray(tok(w, add_special_tokens=False)["input_ids"]) for w in words]


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def _latest(run_dir: Path) -> Path | None:
    marker = run_dir / "checkpoints" / "latest"
    return run_dir / "checkpoints" / marker.read_text().strip() if marker.exists() else None


def _keep_metrics_until(path: Path, step: int) -> None:
    """Drop metric lines after ``step`` (a resumed run rewrites them)."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()
             and json.loads(ln)["step"] <= step]
    with atomic_paths(path) as (tmp,):
        tmp.write_text("".join(ln + "\n" for ln in lines))


def pretrain(shards: Path, run_dir: Path, mcfg: ModelConfig, tcfg: TrainConfig,
             resume: bool = False, progress: bool = True,
             halt_after: int | None = None) -> dict:
    """Train; return a summary. ``halt_after`` stops abruptly after that many steps of this
    run without a final checkpoint (simulates a crash, for tests)."""
    from bali.train.backends import BACKENDS

    if tcfg.backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, not {tcfg.backend!r}")
    random.seed(tcfg.seed)
    np.random.seed(tcfg.seed)
    torch.manual_seed(tcfg.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = json.loads((shards / "meta.json").read_text())
    relations = json.loads((shards / "relations.json").read_text())
    special = SpecialIds(meta["pad_token_id"], meta["cls_token_id"], meta["sep_token_id"],
                         meta["mask_token_id"], meta["vocab_size"])
    model = build_model(mcfg, len(relations))
    linearize = relation_ids = None
    if model.linearized:
        from bali.model.graph import linearize

        relation_ids = _relation_token_ids(meta["tokenizer_dir"], relations)
    data_kwargs = dict(
        special=special, batch_size=tcfg.batch_size, seed=tcfg.seed,
        max_neighbors=mcfg.max_neighbors, mlm_probability=mcfg.mlm_probability,
        mask_tokens=mcfg.mlm_weight > 0, mask_mentions=mcfg.mask_mentions,
        linearize=linearize, relation_ids=relation_ids,
        linear_max_length=mcfg.linear_max_length,
        dev_sentences=tcfg.validate_sentences if tcfg.validate_every else 0)
    data = BatchDataset(shards, **data_kwargs, num_batches=tcfg.steps * tcfg.grad_accum,
                        rank=int(os.environ.get("RANK", "0")),
                        world=int(os.environ.get("WORLD_SIZE", "1")))
    model.train()  # from_pretrained returns the LM in eval mode (dropout off)
    backend = BACKENDS[tcfg.backend](model, tcfg)
    check = _validation(shards, meta, tcfg, data_kwargs, backend) if backend.is_main else None
    start, client = 0, None
    metrics_path = run_dir / "metrics.jsonl"
    if resume and (ckpt := _latest(run_dir)) is not None:
        client = backend.load(ckpt)
        start = int(client["step"])
        _keep_metrics_until(metrics_path, start)
        _forget_best_after(run_dir, start)
        log.info("resumed from %s at step %d", ckpt, start)
    elif backend.is_main:
        metrics_path.unlink(missing_ok=True)
        _forget_best_after(run_dir, -1)
        (run_dir / "config.json").write_text(json.dumps(
            {"model": asdict(mcfg), "train": asdict(tcfg), "shards": str(shards),
             "shards_meta": meta}, indent=2))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(data, range(start * tcfg.grad_accum, len(data))),
        batch_size=None, num_workers=tcfg.num_workers)
    batches = iter(loader)  # draws a base seed from the global RNG: restore after this
    if client is not None:
        _set_rng_state(client["rng"])
    bar = tqdm(total=tcfg.steps, initial=start, disable=not (progress and backend.is_main),
               desc="pretrain", unit="step")
    t_run, last = time.perf_counter(), None
    with open(metrics_path, "a") as metrics:
        if check is not None and start == 0:  # the base model, for reference
            t_val = time.perf_counter()
            row = {"step": 0, **check()}
            metrics.write(json.dumps(row | {"validate_s": round(time.perf_counter() - t_val, 2)})
                          + "\n")
        for step in range(start + 1, tcfg.steps + 1):
            t0, sums = time.perf_counter(), {}
            for micro in range(tcfg.grad_accum):
                out = backend.forward(next(batches))
                backend.micro_step(out["loss"], boundary=micro == tcfg.grad_accum - 1)
                for key in ("loss", "mlm_loss", "align_loss", "align_acc"):
                    if key in out:
                        sums[key] = sums.get(key, 0.0) + float(out[key].detach()) / tcfg.grad_accum
            seconds = time.perf_counter() - t0
            last = {"step": step, **{k: round(v, 6) for k, v in sums.items()},
                    "lr": backend.learning_rates()[::2],
                    "samples_per_s": round(tcfg.batch_size * tcfg.grad_accum / seconds, 2),
                    "elapsed_s": round(time.perf_counter() - t_run, 2)}
            if check is not None and (step % tcfg.validate_every == 0 or step == tcfg.steps):
                t_val = time.perf_counter()
                last.update(check())
                last["validate_s"] = round(time.perf_counter() - t_val, 2)
                _keep_best(backend.module, run_dir, step, last)
            if backend.is_main:
                metrics.write(json.dumps(last) + "\n")
                metrics.flush()
            bar.update(1)
            bar.set_postfix(loss=f"{sums['loss']:.3f}", acc=f"{sums.get('align_acc', 0):.2f}")
            if halt_after is not None and step - start >= halt_after:
                bar.close()
                return {"halted_at": step, "last": last}
            if step % tcfg.checkpoint_every == 0 or step == tcfg.steps:
                _checkpoint(backend, run_dir, step)
    bar.close()
    if backend.is_main:
        save_weights(backend.module, run_dir / "model.safetensors")
        plot_curves(metrics_path, run_dir / "curves.png")
    return {"steps": tcfg.steps, "resumed_from": start, "last": last}


def _validation(shards: Path, meta: dict, tcfg: TrainConfig, data_kwargs: dict, backend):
    """A callable returning the dev metrics (:mod:`bali.train.validate`), or None."""
    if not tcfg.validate_every:
        return None
    from transformers import AutoTokenizer

    from bali.train.validate import DevLinking, validate

    linking = None
    if tcfg.validate_mentions:
        if not tcfg.validate_dictionary:
            raise ValueError("validate_mentions needs validate_dictionary")
        linking = DevLinking(tcfg.validate_dictionary, tcfg.validate_mentions,
                             AutoTokenizer.from_pretrained(meta["tokenizer_dir"]),
                             tcfg.validate_max_names, tcfg.validate_max_mentions, tcfg.seed,
                             tcfg.validate_hard_names)
        log.info("dev linking: %d mentions, %d names", len(linking),
                 linking.dictionary.height)
    dev = BatchDataset(shards, **data_kwargs, split="dev") if tcfg.validate_sentences else None
    batches = [dev[i] for i in range(len(dev))] if dev is not None else []
    module = backend.module
    device = next(module.parameters()).device

    def forward(batch: dict) -> dict:  # the bare module: no DDP/DeepSpeed collective on rank 0
        return module({k: v.to(device) for k, v in batch.items()})

    return lambda: validate(module, linking, batches, forward)


BEST_WEIGHTS, BEST_INFO = "best.safetensors", "best.json"


def _keep_best(module: torch.nn.Module, run_dir: Path, step: int, row: dict) -> None:
    """Save the weights as ``best.safetensors`` when ``dev_acc1`` beats every earlier step
    (ties keep the earlier; the step-0 base model is never a candidate)."""
    if "dev_acc1" not in row:
        return
    info = run_dir / BEST_INFO
    best = json.loads(info.read_text()) if info.exists() else None
    if best is None or row["dev_acc1"] > best["dev_acc1"]:
        save_weights(module, run_dir / BEST_WEIGHTS)
        with atomic_paths(info) as (tmp,):
            tmp.write_text(json.dumps({"step": step, "dev_acc1": row["dev_acc1"],
                                       "dev_acc5": row.get("dev_acc5")}))


def _forget_best_after(run_dir: Path, step: int) -> None:
    """A resumed run from ``step`` drops a best-dev choice made after it."""
    info = run_dir / BEST_INFO
    if info.exists() and json.loads(info.read_text())["step"] > step:
        info.unlink()
        (run_dir / BEST_WEIGHTS).unlink(missing_ok=True)


def save_weights(model: torch.nn.Module, path: Path) -> None:
    """All tensors of ``model.state_dict()`` as safetensors (tied weights stored under each
    name; DeepSpeed may have re-laid the parameters out, so every tensor is copied)."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    with atomic_paths(path) as (tmp,):
        save_file(state, str(tmp))


def _checkpoint(backend, run_dir: Path, step: int) -> None:
    name = f"step_{step}"
    backend.save(run_dir / "checkpoints" / name, {"step": step, "rng": _rng_state()})
    if backend.is_main:
        with atomic_paths(run_dir / "checkpoints" / "latest") as (tmp,):
            tmp.write_text(name)


def plot_curves(metrics_path: Path, png: Path, window: int = 20) -> None:
    """Loss terms and alignment accuracy per step (raw, faint; rolling mean, solid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(ln) for ln in metrics_path.read_text().splitlines() if ln.strip()]
    train = [r for r in rows if "loss" in r]
    dev = [r for r in rows if "dev_acc1" in r or "dev_align_acc" in r]
    if not train:
        return
    panels = [("loss", train, ("loss", "mlm_loss", "align_loss")),
              ("in-batch text->graph accuracy", train, ("align_acc",))]
    if dev:
        panels.append(("dev", dev, ("dev_acc1", "dev_acc5", "dev_align_acc")))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), dpi=120)
    for ax, (label, part, keys) in zip(axes, panels, strict=True):
        steps = np.array([r["step"] for r in part])
        for key in keys:
            if not any(key in r for r in part):
                continue
            y = np.array([r.get(key, np.nan) for r in part], dtype=float)
            if part is dev:
                ax.plot(steps, y, marker="o", label=key)
                continue
            smooth = np.convolve(y, np.ones(window) / window, mode="valid") if len(y) >= window \
                else y
            line, = ax.plot(steps[len(steps) - len(smooth):], smooth, label=key)
            ax.plot(steps, y, alpha=0.2, color=line.get_color())
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.legend(loc="best")
    fig.tight_layout()
    with atomic_paths(png) as (tmp,):
        fig.savefig(tmp, format="png")
    plt.close(fig)
