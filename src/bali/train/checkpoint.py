"""A pretraining run's state on disk: checkpoints (every rank's part, rotation), the
resume decision, the best-dev weights and fp32 weight files (layout: :mod:`bali.train.loop`).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch

from bali import distributed as dist
from bali.io import BaliInputError, atomic_paths

log = logging.getLogger(__name__)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def latest(run_dir: Path) -> Path | None:
    marker = run_dir / "checkpoints" / "latest"
    return run_dir / "checkpoints" / marker.read_text().strip() if marker.exists() else None


def keep_metrics_until(path: Path, step: int) -> None:
    """Drop metric lines after ``step`` (a resumed run rewrites them)."""
    if not path.exists():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()
             and json.loads(ln)["step"] <= step]
    with atomic_paths(path) as (tmp,):
        tmp.write_text("".join(ln + "\n" for ln in lines))


def resumable(run_dir: Path, record: dict, steps: int) -> Path | None:
    """The newest checkpoint of an unfinished run with this configuration, else None."""
    ckpt, config = latest(run_dir), run_dir / "config.json"
    if ckpt is None or not config.exists():
        return None
    saved = json.loads(config.read_text())
    if {k: saved.get(k) for k in ("model", "train", "shards")} != {
            k: json.loads(json.dumps(record[k])) for k in ("model", "train", "shards")}:
        log.warning("%s: the configuration changed; starting over", run_dir)
        return None
    if int(ckpt.name.removeprefix("step_")) >= steps:
        log.info("%s: the run had finished; starting over", run_dir)
        return None
    return ckpt


def restore(backend, ckpt: Path, world: int) -> tuple[int, dict]:
    """Load checkpoint ``ckpt`` into ``backend``; (its step, this rank's RNG states). The
    run's world size must match (batches are dealt to ranks by index)."""
    mine = ckpt / f"rank{dist.rank()}.pt"
    saved = torch.load(mine, weights_only=True) if mine.exists() else None
    if saved is None or saved["world"] != world:
        raise BaliInputError(ckpt, f"checkpoint of another world size (now {world} "
                             "processes): resume with the same number of GPUs")
    backend.load(ckpt)
    return int(saved["step"]), saved["rng"]


BEST_WEIGHTS, BEST_INFO = "best.safetensors", "best.json"


def improves(run_dir: Path, row: dict) -> bool:
    """Whether ``row``'s ``dev_acc1`` beats every earlier step (ties keep the earlier; the
    step-0 base model is never a candidate)."""
    if "dev_acc1" not in row:
        return False
    info = run_dir / BEST_INFO
    return not info.exists() or row["dev_acc1"] > json.loads(info.read_text())["dev_acc1"]


def forget_best_after(run_dir: Path, step: int) -> None:
    """A resumed run from ``step`` drops a best-dev choice made after it."""
    info = run_dir / BEST_INFO
    if info.exists() and json.loads(info.read_text())["step"] > step:
        info.unlink()
        (run_dir / BEST_WEIGHTS).unlink(missing_ok=True)


def save_weights(state: dict, path: Path) -> None:
    """A state dict as safetensors (tied weights stored under each name, every tensor
    copied and contiguous)."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().clone().contiguous() for k, v in state.items()}
    with atomic_paths(path) as (tmp,):
        save_file(state, str(tmp))


def save_checkpoint(backend, run_dir: Path, step: int, world: int, keep_last: int,
                    row: dict) -> None:
    """Write ``checkpoints/step_N`` on every rank; then rank 0 saves the best-dev weights if
    ``row`` improves them, names the checkpoint ``latest`` (only now is it complete) and
    deletes all but the newest ``keep_last`` and the best step's."""
    root = run_dir / "checkpoints"
    directory = root / f"step_{step}"
    backend.save(directory, {"step": step})
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_paths(directory / f"rank{dist.rank()}.pt") as (tmp,):
        torch.save({"step": step, "world": world, "rng": rng_state()}, tmp)
    dist.barrier()
    if backend.is_main:
        if improves(run_dir, row):
            save_weights(backend.fp32_state_dict(directory), run_dir / BEST_WEIGHTS)
            with atomic_paths(run_dir / BEST_INFO) as (tmp,):
                tmp.write_text(json.dumps({"step": step, "dev_acc1": row["dev_acc1"],
                                           "dev_acc5": row.get("dev_acc5")}))
        with atomic_paths(root / "latest") as (tmp,):
            tmp.write_text(directory.name)
        info = run_dir / BEST_INFO
        best = json.loads(info.read_text())["step"] if info.exists() else None
        steps = sorted(int(d.name.removeprefix("step_")) for d in root.glob("step_*"))
        for old in steps[:-keep_last]:
            if old != best:
                shutil.rmtree(root / f"step_{old}")
    dist.barrier()
