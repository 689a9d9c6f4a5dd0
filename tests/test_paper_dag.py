"""The paper's full DAG, dry run on generated stand-in inputs (config/paper.yaml)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from bali.config import validate_config
from bali.grid import eval_jobs, pretrain_runs

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    work = tmp_path_factory.mktemp("paper")
    for name in ["Snakefile", "workflow", "config", "profiles", "envs"]:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    subprocess.run([sys.executable, str(ROOT / "workflow/scripts/make_paper_standins.py"),
                    "--out", str(work)], check=True, capture_output=True)
    return work


def dry_run(work: Path, *args: str) -> dict[str, int]:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile",
                           "config/paper.yaml", *args], cwd=work, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\S+)\s+(\d+)$", table, re.M)}


def test_full_paper_dag(standin):
    config = validate_config(yaml.safe_load((ROOT / "config/paper.yaml").read_text()))
    runs, jobs = pretrain_runs(config), eval_jobs(config)
    counts = dry_run(standin)
    assert counts["pretrain"] == counts["export"] == len(runs) == 21  # Tables 2, 5, 6
    assert counts["tokenize"] == 5 and counts["build_kg"] == 1 and counts["report"] == 1
    assert counts["read_corpus"] == counts["annotate"] == 3  # one job per PubMed file
    for bench in config["evaluate"]["benchmarks"]:
        assert counts[f"evaluate_{bench}"] == sum(j[0] == bench for j in jobs)
    assert counts["evaluate_pubmedqa"] == 22 * 10  # (3 base + 19 runs) x 10 seeds


def test_subset_is_a_config_change(standin):
    only = "only={'models': ['pubmedbert'], 'variants': ['gat'], 'benchmarks': ['bioasq']}"
    counts = dry_run(standin, "--config", only)
    assert counts["pretrain"] == 1 and counts["tokenize"] == 1
    assert counts["evaluate_bioasq"] == 10
    assert not any(k.startswith("evaluate_") and k != "evaluate_bioasq" for k in counts)
