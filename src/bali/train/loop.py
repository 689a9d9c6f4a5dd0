"""The pretraining loop: one loop for both backends, checkpoint/resume, metrics, curves.

Run directory layout::

    config.json            model + train config, shards meta (written at start)
    metrics.live.jsonl     one JSON object per optimizer step, appended while training:
                           step, loss, mlm_loss, align_loss, align_acc (in-batch
                           text->graph retrieval accuracy), lr (per parameter group),
                           samples_per_s (all ranks), elapsed_s (+ dev_acc1, dev_acc5,
                           dev_align_acc, validate_s every validate_every steps; a step-0
                           line holds the base model's)
    metrics.jsonl          its copy, written when the run finishes (a workflow output, so a
                           retried job that deletes it keeps the live history)
    checkpoints/step_N/    backend state (model, optimizer, scheduler) + client state, and
                           rank<r>.pt of every rank (step, world, its RNG states);
                           checkpoints/latest names the newest complete one; the newest
                           keep_last are kept, and the best-dev step's
    model.safetensors      final fp32 weights of the whole BaliModel (read by ``bali export``)
    best.safetensors       fp32 weights of the step with the best dev_acc1 (+ best.json: step,
                           metrics), when validating; ``bali export --select best-dev``
    curves.png             loss and alignment accuracy curves (+ dev metrics)

``resume=True`` continues an unfinished run of the same configuration from its newest
checkpoint, with exactly the batches and RNG states an uninterrupted run would have had
(batches are seeded by their index, see :mod:`bali.train.data`), so on CPU the final weights
equal the uninterrupted run's; a finished run, or one of another configuration, starts
over. Every rank runs this loop; rank 0 alone validates and writes metrics and weights.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bali import distributed as dist
from bali.errors import OptionError
from bali.io import atomic_paths
from bali.model.config import ModelConfig
from bali.torchutil import seed_everything
from bali.train.checkpoint import (
    forget_best_after,
    keep_metrics_until,
    restore,
    resumable,
    save_checkpoint,
    save_weights,
    set_rng_state,
)
from bali.train.config import TrainConfig
from bali.train.data import BatchDataset, SpecialIds

log = logging.getLogger(__name__)

LIVE_METRICS = "metrics.live.jsonl"


def build_model(mcfg: ModelConfig, num_relations: int):
    """The BaliModel around the configured masked-LM checkpoint (offline; SDPA attention
    where the architecture has it)."""
    from transformers import AutoModelForMaskedLM

    from bali.model.bali import BaliModel
    from bali.paths import resolve_model

    path = resolve_model(mcfg.model)
    try:
        lm, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True,
                                                        attn_implementation="sdpa")
    except ValueError as err:  # an architecture without SDPA
        log.warning("%s: %s; eager attention", mcfg.model, err)
        lm, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True)
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


def _run_record(shards: Path, mcfg: ModelConfig, tcfg: TrainConfig, meta: dict) -> dict:
    return {"model": asdict(mcfg), "train": asdict(tcfg), "shards": str(shards),
            "shards_meta": meta}


#: tests set this to stop a run abruptly after that many of its steps, without a final
#: checkpoint, as a crash would (the multi-process test kills the launcher for real)
_HALT_AFTER: int | None = None


def pretrain(shards: Path, run_dir: Path, mcfg: ModelConfig, tcfg: TrainConfig,
             resume: bool = False, progress: bool = True) -> dict:
    """Train; return a summary (``halted_at`` when :data:`_HALT_AFTER` stopped it). Without
    a progress bar, rank 0 logs one line per checkpoint (step, losses, samples/s, ETA)."""
    from bali.train.backends import BACKENDS

    if tcfg.backend not in BACKENDS:
        raise OptionError(f"backend must be one of {sorted(BACKENDS)}, not {tcfg.backend!r}")
    seed_everything(tcfg.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = json.loads((shards / "meta.json").read_text())
    model, data_args = _model_and_data_args(shards, meta, mcfg, tcfg)
    world = dist.world()
    data = BatchDataset.from_configs(shards, mcfg, tcfg, **data_args, rank=dist.rank(),
                                     world=world)
    model.train()  # from_pretrained returns the LM in eval mode (dropout off)
    backend = BACKENDS[tcfg.backend](model, tcfg)
    check = _validation(shards, meta, mcfg, tcfg, data_args, backend) if backend.is_main else None
    record = _run_record(shards, mcfg, tcfg, meta) | {
        "attention": model.lm.config._attn_implementation}
    start, rng = _begin(run_dir, record, backend, tcfg.steps, resume, world)
    log.info("rank %d/%d: first batch sentences %s", dist.rank(), world,
             data.sentence_indices(start * tcfg.grad_accum).tolist())
    batches = _batches(data, start * tcfg.grad_accum, tcfg.num_workers, rng)
    bar = tqdm(total=tcfg.steps, initial=start, disable=not (progress and backend.is_main),
               desc="pretrain", unit="step")
    t_run, last, metrics_path = time.perf_counter(), None, run_dir / LIVE_METRICS
    with open(metrics_path, "a") as metrics:
        if check is not None and start == 0:  # the base model, for reference
            metrics.write(json.dumps(_validated({"step": 0}, check)) + "\n")
        for step in range(start + 1, tcfg.steps + 1):
            t0 = time.perf_counter()
            sums = _train_step(backend, batches, tcfg.grad_accum)
            last = {"step": step, **{k: round(v, 6) for k, v in sums.items()},
                    "lr": backend.learning_rates()[::2],
                    "samples_per_s": round(tcfg.batch_size * tcfg.grad_accum * world
                                           / (time.perf_counter() - t0), 2),
                    "elapsed_s": round(time.perf_counter() - t_run, 2)}
            validating = bool(tcfg.validate_every) and (
                step % tcfg.validate_every == 0 or step == tcfg.steps)
            if check is not None and validating:
                last = _validated(last, check)
            if backend.is_main:
                metrics.write(json.dumps(last) + "\n")
                metrics.flush()
            bar.update(1)
            bar.set_postfix(loss=f"{sums['loss']:.3f}", acc=f"{sums.get('align_acc', 0):.2f}")
            if _HALT_AFTER is not None and step - start >= _HALT_AFTER:
                bar.close()
                return {"halted_at": step, "last": last}
            if step % tcfg.checkpoint_every == 0 or step == tcfg.steps or validating:
                save_checkpoint(backend, run_dir, step, world, tcfg.keep_last, last)
                if backend.is_main and bar.disable:
                    _log_progress(last, start, tcfg.steps)
    bar.close()
    if backend.is_main:
        _finish(backend, run_dir, tcfg.steps)
    dist.barrier()
    return {"steps": tcfg.steps, "resumed_from": start, "last": last}


def _batches(data: BatchDataset, first: int, num_workers: int, rng):
    """Iterator over the batches ``first ..`` of ``data``; creating it draws a base seed from
    the global RNG, so a resumed run's RNG states (``rng``) are restored after it."""
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(data, range(first, len(data))),
                                         batch_size=None, num_workers=num_workers)
    batches = iter(loader)
    if rng is not None:
        set_rng_state(rng)
    return batches


def _validated(row: dict, check) -> dict:
    """``row`` with the dev metrics of ``check()`` and ``validate_s``, its wall time."""
    t_val = time.perf_counter()
    out = row | check()
    return out | {"validate_s": round(time.perf_counter() - t_val, 2)}


def _finish(backend, run_dir: Path, steps: int) -> None:
    """Rank 0: the final fp32 weights, ``metrics.jsonl`` and ``curves.png``."""
    final = run_dir / "checkpoints" / f"step_{steps}"
    save_weights(backend.fp32_state_dict(final), run_dir / "model.safetensors")
    shutil.copyfile(run_dir / LIVE_METRICS, run_dir / "metrics.jsonl")
    plot_curves(run_dir / "metrics.jsonl", run_dir / "curves.png")


def _model_and_data_args(shards: Path, meta: dict, mcfg: ModelConfig, tcfg: TrainConfig):
    """The BaliModel (compiled if asked) and the data arguments of its batches."""
    relations = json.loads((shards / "relations.json").read_text())
    special = SpecialIds(meta["pad_token_id"], meta["cls_token_id"], meta["sep_token_id"],
                         meta["mask_token_id"], meta["vocab_size"])
    model = build_model(mcfg, len(relations))
    if tcfg.compile:
        model.lm.base_model.compile(dynamic=True)
    linearize = relation_ids = lexical = None
    if model.linearized:
        from bali.model.graph import linearize

        relation_ids = _relation_token_ids(meta["tokenizer_dir"], relations)
    elif mcfg.lexical_negatives and mcfg.alignment == "infonce":
        lexical = _lexical_confusers(shards, meta["tokenizer_dir"], mcfg.lexical_negatives)
    return model, dict(special=special, linearize=linearize, relation_ids=relation_ids,
                       lexical=lexical)


def _lexical_confusers(shards: Path, tokenizer_dir: str, k: int):
    """:func:`bali.train.negatives.lexical_confusers` of the shards' mentioned nodes, over
    the shards' names (decoded from their tokens)."""
    from transformers import AutoTokenizer

    from bali.shards import MappedIpc
    from bali.train.negatives import lexical_confusers

    t0 = time.perf_counter()
    names, nodes = (MappedIpc(shards / f"{f}.arrow") for f in ("names", "nodes"))
    texts = AutoTokenizer.from_pretrained(tokenizer_dir).batch_decode(
        names.rows("input_ids", np.arange(len(names))), skip_special_tokens=True)
    count, flat = nodes.gather("name_ids", np.arange(len(nodes)))
    ptr = np.concatenate([[0], np.cumsum(count)])
    sentences = MappedIpc(shards / "sentences.arrow")
    mentioned = sentences.gather("mention_node", np.arange(len(sentences)))[1]
    out = lexical_confusers(texts, ptr, flat, mentioned, k)
    log.info("lexical negatives: %d names for %d mentioned nodes (k=%d) in %.1f s",
             out[1].size, np.unique(mentioned).size, k, time.perf_counter() - t0)
    return out


def _begin(run_dir: Path, record: dict, backend, steps: int, resume: bool, world: int):
    """(first step, RNG states to restore or None): an unfinished run of this configuration
    resumes (``resume``); otherwise rank 0 starts the run directory afresh."""
    ckpt = resumable(run_dir, record, steps) if resume else None
    dist.barrier()  # every rank has decided before rank 0 clears a finished run
    start, rng = 0, None
    if ckpt is not None:
        start, rng = restore(backend, ckpt, world)
        if backend.is_main:
            keep_metrics_until(run_dir / LIVE_METRICS, start)
            forget_best_after(run_dir, start)
        log.info("resumed from %s at step %d", ckpt, start)
    elif backend.is_main:
        (run_dir / LIVE_METRICS).unlink(missing_ok=True)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        forget_best_after(run_dir, -1)
        (run_dir / "config.json").write_text(json.dumps(record, indent=2))
    dist.barrier()
    return start, rng


def _train_step(backend, batches, grad_accum: int) -> dict[str, float]:
    """One optimizer step over ``grad_accum`` micro-batches; their mean losses/accuracy."""
    sums: dict[str, float] = {}
    for micro in range(grad_accum):
        out = backend.forward(next(batches))
        backend.micro_step(out["loss"], boundary=micro == grad_accum - 1)
        for key in ("loss", "mlm_loss", "align_loss", "align_acc"):
            if key in out:
                sums[key] = sums.get(key, 0.0) + float(out[key].detach()) / grad_accum
    return sums


def _log_progress(row: dict, start: int, steps: int) -> None:
    """One log line: step, losses, dev Acc@1 if measured, samples/s and the time left."""
    done = row["step"] - start
    eta = row["elapsed_s"] / done * (steps - row["step"]) if done else 0.0
    dev = f" dev_acc1 {row['dev_acc1']:.4f}" if "dev_acc1" in row else ""
    log.info("step %d/%d loss %.4f (mlm %.4f, align %.4f)%s, %.1f samples/s, %.0f s elapsed, "
             "~%.0f s left", row["step"], steps, row.get("loss", 0.0), row.get("mlm_loss", 0.0),
             row.get("align_loss", 0.0), dev, row["samples_per_s"], row["elapsed_s"], eta)


def _validation(shards: Path, meta: dict, mcfg: ModelConfig, tcfg: TrainConfig,
                data_args: dict, backend):
    """A callable returning the dev metrics (:mod:`bali.train.validate`), or None."""
    if not tcfg.validate_every:
        return None
    from transformers import AutoTokenizer

    from bali.train.validate import DevLinking, validate

    linking = None
    if tcfg.validate_mentions:
        if not tcfg.validate_dictionary:
            raise OptionError("validate_mentions needs validate_dictionary")
        linking = DevLinking(tcfg.validate_dictionary, tcfg.validate_mentions,
                             AutoTokenizer.from_pretrained(meta["tokenizer_dir"]),
                             tcfg.validate_max_names, tcfg.validate_max_mentions, tcfg.seed,
                             tcfg.validate_hard_names, tcfg.validate_seen, tcfg.validate_match,
                             tcfg.validate_filter_dictionary)
        log.info("dev linking: %d mentions, %d names (dev refinement: %s)", len(linking),
                 linking.dictionary.height, linking.counts)
    dev = BatchDataset.from_configs(shards, mcfg, tcfg, **data_args, split="dev") \
        if tcfg.validate_sentences else None
    batches = [dev[i] for i in range(len(dev))] if dev is not None else []
    module = backend.module
    device = next(module.parameters()).device

    def forward(batch: dict) -> dict:  # the bare module: no DDP/DeepSpeed collective on rank 0
        return module({k: v.to(device) for k, v in batch.items()})

    return lambda: validate(module, linking, batches, forward)


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
