"""The pretraining loop: one loop for both backends, checkpoint/resume, metrics, curves.

Run directory layout::

    config.json            model + train config, shards meta (written at start)
    metrics.jsonl          one JSON object per optimizer step: step, loss, mlm_loss,
                           align_loss, align_acc (in-batch text->graph retrieval accuracy),
                           lr (per parameter group), samples_per_s, elapsed_s
    checkpoints/step_N/    backend state (model, optimizer, scheduler) + client state
                           (step, torch RNG states); checkpoints/latest names the newest
    model.safetensors      final weights of the whole BaliModel (read by ``bali export``)
    curves.png             loss and alignment accuracy curves

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

    lm = AutoModelForMaskedLM.from_pretrained(resolve_model(mcfg.model))
    return BaliModel(lm, mcfg, num_relations)


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
    data = BatchDataset(shards, special, tcfg.batch_size, tcfg.seed, mcfg.max_neighbors,
                        mcfg.mlm_probability, mask_tokens=mcfg.mlm_weight > 0,
                        linearize=linearize, relation_ids=relation_ids,
                        linear_max_length=mcfg.linear_max_length,
                        num_batches=tcfg.steps * tcfg.grad_accum,
                        rank=int(os.environ.get("RANK", "0")),
                        world=int(os.environ.get("WORLD_SIZE", "1")))
    model.train()  # from_pretrained returns the LM in eval mode (dropout off)
    backend = BACKENDS[tcfg.backend](model, tcfg)
    start, client = 0, None
    metrics_path = run_dir / "metrics.jsonl"
    if resume and (ckpt := _latest(run_dir)) is not None:
        client = backend.load(ckpt)
        start = int(client["step"])
        _keep_metrics_until(metrics_path, start)
        log.info("resumed from %s at step %d", ckpt, start)
    elif backend.is_main:
        metrics_path.unlink(missing_ok=True)
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
    if not rows:
        return
    steps = np.array([r["step"] for r in rows])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), dpi=120)
    for ax, keys in ((axes[0], ("loss", "mlm_loss", "align_loss")), (axes[1], ("align_acc",))):
        for key in keys:
            if key not in rows[0]:
                continue
            y = np.array([r[key] for r in rows], dtype=float)
            smooth = np.convolve(y, np.ones(window) / window, mode="valid") if len(y) >= window \
                else y
            line, = ax.plot(steps[len(steps) - len(smooth):], smooth, label=key)
            ax.plot(steps, y, alpha=0.2, color=line.get_color())
        ax.set_xlabel("step")
        ax.legend(loc="best")
    axes[0].set_ylabel("loss")
    axes[1].set_ylabel("in-batch text->graph accuracy")
    fig.tight_layout()
    with atomic_paths(png) as (tmp,):
        fig.savefig(tmp, format="png")
    plt.close(fig)
