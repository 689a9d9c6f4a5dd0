"""Two-process pretraining (gloo, CPU) through the exact command the `pretrain` rule builds
(`snakemake -n -p` with pretrain.gpus: 2), for both backends: ranks see disjoint batches, a
run killed under the launcher and resumed ends with the weights of an uninterrupted one, the
export rule's command exports it, and the DeepSpeed run's fp32 weights equal the torch run's."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import copy_workflow
from test_pretrain import setup  # noqa: F401  (the tiny shards and BERT)

pytestmark = pytest.mark.workflow
STEPS = 12
RUN = Path("results/pretrain/minilm/gat")
ENV = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                    "OMP_NUM_THREADS": "1"}


def _commands(work: Path, backend: str) -> dict[str, str]:
    """The shell commands of the pretrain and export jobs, as `snakemake -n -p` prints them."""
    (work / "mp.yaml").write_text(yaml.safe_dump({
        "models": {"minilm": str(work / "tiny-bert")},
        "pretrain": {"gpus": 2, "backend": backend, "steps": STEPS, "batch_size": 4,
                     "checkpoint_every": 3, "keep_last": 2, "gnn_layers": 2,
                     "validate": {"every": 0}},
        "export": {"select": "last"}}))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p",
         "results/models/minilm/gat/model.safetensors",
         "--configfile", "config/config.yaml", "mp.yaml"],
        cwd=work, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    lines = proc.stdout.splitlines()
    return {rule: next(ln.strip().removeprefix("Shell command: ") for ln in lines
                       if re.search(pattern, ln))
            for rule, pattern in (("pretrain", r" pretrain --shards "),
                                  ("export", r"bali export "))}


def _run(work: Path, command: str, timeout: int = 600) -> None:
    proc = subprocess.run(["bash", "-c", command], cwd=work, env=ENV, timeout=timeout)
    log = work / "logs/pretrain/minilm/gat.log"
    assert proc.returncode == 0, log.read_text()[-4000:] if log.exists() else command


def _kill_after_checkpoint(work: Path, command: str) -> str:
    """Start the command; once a checkpoint is complete, SIGKILL the launcher and every
    process under it (torchrun starts its workers in sessions of their own), as a node
    failure would."""
    import psutil

    proc = subprocess.Popen(["bash", "-c", command], cwd=work, env=ENV)
    marker = work / RUN / "checkpoints/latest"
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    tree = psutil.Process(proc.pid)
    for p in [tree, *tree.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    proc.wait()
    return marker.read_text()


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.fixture(scope="module")
def work(setup, tmp_path_factory):  # noqa: F811
    shards, model_dir = setup
    work = tmp_path_factory.mktemp("mp")
    copy_workflow(work)
    shutil.copytree(model_dir, work / "tiny-bert")
    shutil.copytree(shards, work / "results/shards/minilm")
    (work / "logs/pretrain/minilm").mkdir(parents=True)
    (work / "logs/export/minilm").mkdir(parents=True)
    return work


@pytest.fixture(scope="module")
def finals(work):
    """{backend: final weights} of the uninterrupted two-process runs."""
    return {}


@pytest.mark.parametrize("backend", ["torch", "deepspeed"])
def test_two_processes_launch_resume_and_export(work, finals, backend):
    if backend == "deepspeed":
        pytest.importorskip("deepspeed")
    run = work / RUN
    shutil.rmtree(run, ignore_errors=True)
    shutil.rmtree(work / "results/models", ignore_errors=True)
    commands = _commands(work, backend)
    assert "torchrun --standalone --nproc_per_node 2" in commands["pretrain"]
    _run(work, commands["pretrain"])
    log = (work / "logs/pretrain/minilm/gat.log").read_text()
    first = {int(m[1]): set(json.loads(m[2])) for m in re.finditer(
        r"rank (\d)/2: first batch sentences (\[[\d, ]*\])", log)}
    assert sorted(first) == [0, 1] and first[0] and first[1] and not first[0] & first[1]
    uninterrupted = _weights(run / "model.safetensors")
    assert {p.name for p in (run / "checkpoints").glob("step_*")} == {
        f"step_{STEPS - 3}", f"step_{STEPS}"}  # keep_last: 2
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))

    shutil.rmtree(run)
    killed_at = _kill_after_checkpoint(work, commands["pretrain"])
    assert killed_at != f"step_{STEPS}" and not (run / "metrics.jsonl").exists()
    _run(work, commands["pretrain"])  # the rule's own --resume
    assert "resumed from" in (work / "logs/pretrain/minilm/gat.log").read_text()
    resumed = _weights(run / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    for key, value in uninterrupted.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=0, msg=key)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))

    _run(work, commands["export"])
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(work / "results/models/minilm/gat")
    torch.testing.assert_close(encoder.embeddings.word_embeddings.weight,
                               uninterrupted["lm.bert.embeddings.word_embeddings.weight"])
    finals[backend] = uninterrupted
    if len(finals) == 2:  # the same steps under both backends: the same fp32 weights
        for key, value in finals["torch"].items():
            torch.testing.assert_close(finals["deepspeed"][key], value, rtol=1e-4, atol=1e-5,
                                       msg=key)
