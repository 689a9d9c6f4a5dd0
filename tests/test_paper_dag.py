"""The paper's full DAG, dry run on generated stand-in inputs (config/paper.yaml)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import ROOT, copy_workflow, job_counts

from bali.config import validate_config
from bali.grid import eval_jobs, pretrain_runs

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    work = tmp_path_factory.mktemp("paper")
    copy_workflow(work)
    subprocess.run([sys.executable, str(ROOT / "workflow/scripts/make_paper_standins.py"),
                    "--out", str(work)], check=True, capture_output=True)
    return work


def snakemake_dry(work: Path, *args: str, path: tuple[Path, ...] = (),
                  configfiles: tuple[str, ...] = ()) -> str:
    """stdout of `snakemake -n --configfile config/paper.yaml [CONFIGFILES] ARGS` in `work`,
    with `path` first on $PATH."""
    dirs = [*map(str, path), str(Path(sys.executable).parent), os.environ["PATH"]]
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile",
                           "config/paper.yaml", *configfiles, *args], cwd=work, env=os.environ | {
                               "PATH": ":".join(dirs)}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, (proc.stderr + proc.stdout)[-3000:]
    return proc.stdout


def dry_run(work: Path, *args: str) -> dict[str, int]:
    return job_counts(snakemake_dry(work, *args))


def test_full_paper_dag(standin):
    config = validate_config(yaml.safe_load((ROOT / "config/paper.yaml").read_text()))
    runs, jobs = pretrain_runs(config), eval_jobs(config)
    counts = dry_run(standin)
    assert counts["pretrain"] == counts["export"] == len(runs) == 21  # Tables 2, 5, 6
    assert counts["tokenize"] == 5 and counts["build_kg"] == 1 and counts["report"] == 1
    # one job per BERN2 dump file (config/paper.yaml reads the dump), one merge
    assert counts["read_corpus"] == counts["annotate"] == counts["sample_shard"] == 3
    assert counts["sample_sentences"] == 1
    assert sorted(p.name for p in (standin / "resources/bern2").iterdir()) == [
        f"pubmed22n{i:04d}.json" for i in (1, 2, 3)]
    for bench in config["evaluate"]["benchmarks"]:
        assert counts[f"evaluate_{bench}"] == sum(j[0] == bench for j in jobs)
    assert counts["evaluate_pubmedqa"] == 22 * 10  # (3 base + 19 runs) x 10 seeds


def test_subset_is_a_config_change(standin):
    only = "only={'models': ['pubmedbert'], 'variants': ['gat'], 'benchmarks': ['bioasq']}"
    counts = dry_run(standin, "--config", only)
    assert counts["pretrain"] == 1 and counts["tokenize"] == 1
    assert counts["evaluate_bioasq"] == 10
    assert not any(k.startswith("evaluate_") and k != "evaluate_bioasq" for k in counts)


# --- the SLURM profile (profiles/slurm), dry run ------------------------------------------

# Snakemake (9.x) runs `conda info --json` (the platform, for pin files) to plan the conda envs
# of --software-deployment-method conda, even in a dry run, and fails without conda. The test
# puts this stand-in first on $PATH (conda or not on the machine, for a stable result); on a
# cluster the profile needs the real conda, which deploys the envs.
FAKE_CONDA = """#!/bin/sh
case "$*" in
  "info --json") echo '{"conda_prefix": "/nonexistent/conda", "platform": "linux-64"}' ;;
  "--version") echo "conda 25.1.1" ;;
  "config --get channel_priority --json") echo '{"get": {"channel_priority": "strict"}}' ;;
  *) echo "fake conda: $*" >&2; exit 1 ;;
esac
"""


class _Resources(dict):
    """A job's resources as the plugin reads them (`.get(name)` and `.name`)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def dry_run_jobs(stdout: str) -> list[SimpleNamespace]:
    """The submitted jobs of a dry run's printout: rule, resources, threads, shell command."""
    jobs, job, shell = [], None, False
    for line in stdout.splitlines():
        if m := re.match(r"^(local)?rule (\S+):$", line):
            job = SimpleNamespace(name=m[2], local=bool(m[1]), resources=_Resources(),
                                  threads=1, command="")
            jobs.append(job)
            shell = False
        elif job is None:
            continue
        elif m := re.match(r"^\s+resources: (.*)$", line):
            for item in m[1].split(", "):
                key, value = item.split("=", 1)
                job.resources[key] = int(value) if value.isdigit() else value
        elif m := re.match(r"^\s+threads: (\d+)$", line):
            job.threads = int(m[1])
        elif line.startswith("Shell command:"):
            job.command, shell = line.removeprefix("Shell command:").strip(), True
        elif shell and line.strip():
            job.command += " " + line.strip()
        else:
            shell = False
    return [j for j in jobs if not j.local]


def sbatch_call(job: SimpleNamespace, partitions) -> str:
    """The sbatch call the SLURM plugin would submit `job` with, built by the plugin's own
    code (partition choice, GPUs, nodes, memory, CPUs); no SLURM needed. No default partition
    is looked up (sinfo): a job that fits no partition gets no `-p`."""
    from snakemake_executor_plugin_slurm import Executor
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    executor = SimpleNamespace(_partitions=partitions, _fallback_partition="",
                               logger=logging.getLogger("slurm-dry-run"))
    params = {"run_uuid": "dry", "slurm_logfile": "slurm.log", "comment_str": f"rule_{job.name}",
              "account": f"-A {job.resources.get('slurm_account', '')}", "workdir": "",
              "partition": Executor.get_partition_arg(executor, job)}
    return get_submit_command(job, params) + set_gres_string(job)


@pytest.fixture(scope="module")
def slurm_dry_run(standin, tmp_path_factory):
    """`snakemake -n --profile profiles/slurm --workflow-profile none ...` on the stand-ins:
    `jobs`, the paper's submitted jobs, and `run(ARGS)` for other dry runs."""
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="needs the slurm extra")
    from snakemake_executor_plugin_slurm.partitions import read_partition_file

    fake = tmp_path_factory.mktemp("fakebin")
    (fake / "conda").write_text(FAKE_CONDA)
    (fake / "conda").chmod(0o755)
    profile = standin / "profiles/slurm"
    partitions = read_partition_file(profile / "partitions.yaml")

    def run(*args: str, configfiles: tuple[str, ...] = ()) -> list[SimpleNamespace]:
        out = snakemake_dry(standin, "--profile", "profiles/slurm", "--workflow-profile", "none",
                            *args, path=(fake,), configfiles=configfiles)
        return dry_run_jobs(out)

    return SimpleNamespace(run=run, jobs=run(), partitions=partitions,
                           profile=yaml.safe_load((profile / "config.yaml").read_text()))


def _partition(slurm, gpu: bool) -> str:
    names = [p.name for p in slurm.partitions if (p.limits.max_gpu > 0) == gpu]
    assert len(names) == 1, names
    return names[0]


def test_slurm_profile_pretrain_jobs(slurm_dry_run):
    pretrain = [j for j in slurm_dry_run.jobs if j.name == "pretrain"]
    assert len(pretrain) == 21
    assert {j.resources["gpu"] for j in pretrain} == {4, 8}  # biolinkbert-large: 8
    gpu_partition = _partition(slurm_dry_run, gpu=True)
    profile = slurm_dry_run.profile["set-resources"]["pretrain"]
    for job in pretrain:
        gpus = job.resources["gpu"]
        assert "bali" in job.command and " pretrain " in job.command, job.command
        assert "--run-dir" in job.command
        # one process per GPU, on one node (torchrun --standalone --nproc_per_node N)
        assert re.search(rf"--nproc[_-]per[_-]node[= ]{gpus}\b", job.command), job.command
        call = sbatch_call(job, slurm_dry_run.partitions)
        assert f" -p {gpu_partition} " in f"{call} ", call
        assert f"--gpus={gpus}" in call or f"--gpus={profile.get('gpu_model')}:{gpus}" in call
        assert "--nodes=1" in call  # the profile's set-resources apply (not profiles/default)
        assert f"--mem {profile['mem_mb']}" in call
        assert f"--cpus-per-task={profile['cpus_per_task']}" in call


def test_slurm_profile_routes_jobs_by_gpu(slurm_dry_run, tmp_path):
    cpu, gpu = _partition(slurm_dry_run, gpu=False), _partition(slurm_dry_run, gpu=True)
    jobs = slurm_dry_run.jobs
    evaluations = [j for j in jobs if j.name.startswith("evaluate_")]
    assert len(evaluations) > 100 and all(j.resources["gpu"] == 1 for j in evaluations)
    for job in jobs:
        call = sbatch_call(job, slurm_dry_run.partitions)
        wanted = gpu if job.resources.get("gpu", 0) > 0 else cpu
        assert f" -p {wanted} " in f"{call} ", (job.name, call)
        assert ("--gpus=" in call) == (job.resources.get("gpu", 0) > 0), (job.name, call)
    assert {j.name for j in jobs if j.resources.get("gpu", 0) == 0} >= {"build_kg", "tokenize"}
    # evaluate.gpus: 0 -> the same evaluation jobs go to the CPU partition
    only = "only={'models': ['pubmedbert'], 'variants': ['gat'], 'benchmarks': ['bioasq']}"
    override = tmp_path / "cpu-eval.yaml"
    override.write_text("evaluate: {gpus: 0}\n")
    cpu_jobs = slurm_dry_run.run("--config", only, configfiles=(str(override),))
    evaluations = [j for j in cpu_jobs if j.name == "evaluate_bioasq"]
    assert len(evaluations) == 10
    for job in evaluations:
        call = sbatch_call(job, slurm_dry_run.partitions)
        assert f" -p {cpu} " in f"{call} " and "--gpus" not in call, call
