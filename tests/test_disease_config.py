"""config/disease.yaml: valid, its DAG builds on ../shared/data (validating on the refined dev
split), and no training text comes from a BC5CDR dev or test document."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, SHARED_DATA, copy_workflow, job_counts

from bali.config import validate_config

pytestmark = pytest.mark.workflow
CONFIG = ROOT / "config" / "disease.yaml"


@pytest.fixture(scope="module")
def config():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not available: {SHARED_DATA}")
    return validate_config(yaml.safe_load(CONFIG.read_text()))


def _pmids(path, pattern: str) -> set[str]:
    return set(re.findall(pattern, path.read_text(), re.M))


def test_training_text_holds_no_bc5cdr_dev_or_test_document(config):
    corpus = [c for c in config["text"]["corpus"] if c.endswith((".pubtator", ".jsonl"))]
    assert any("bc5cdr" in c for c in corpus)
    el = SHARED_DATA / "el" / "bc5cdr-disease"
    held = set()
    for split in ("dev", "test"):
        held |= _pmids(el / f"{split}.concept", r"^(\d+)\|\|")
    train = _pmids(el / "train.concept", r"^(\d+)\|\|")
    assert len(held) == 1000 and not held & train
    for entry in corpus:
        text = (ROOT / entry).resolve()
        pattern = r"^(\d+)\|t\|" if entry.endswith(".pubtator") else r'"pmid": "(\d+)"'
        docs = _pmids(text, pattern)
        assert docs and not docs & held, entry
    bench = config["evaluate"]["benchmarks"]["bc5cdr-disease"]
    assert config["pretrain"]["validate"]["benchmark"] == "bc5cdr-disease"
    assert bench["dev"].endswith("dev.concept") and bench["inputs"]["test"].endswith("test.concept")
    assert bench["options"]["filter_dictionary"] and bench["options"]["match"] == "exact"


def test_disease_dag_builds(config, tmp_path):
    """`snakemake -n --configfile config/disease.yaml` in a copy whose ../shared is ours."""
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "shared").symlink_to(SHARED_DATA.parent)
    copy_workflow(work)
    path = os.pathsep.join([str(ROOT / ".venv" / "bin"), os.path.dirname(sys.executable),
                            os.environ["PATH"]])
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--configfile",
                           "config/disease.yaml"], cwd=work, env=os.environ | {"PATH": path},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stderr + proc.stdout)[-3000:]
    counts = job_counts(proc.stdout)
    shards = len(config["text"]["corpus"])
    assert counts["read_corpus"] == counts["annotate"] == shards == 6
    assert counts["pretrain"] == 1 and counts["evaluate_bc5cdr-disease"] == 2  # base and gat
    # validation reads the dev split refined as the test: by the train split (not by the dev
    # split itself) and the dictionary
    command = re.search(r"bali pretrain .*", proc.stdout).group(0)
    seen = re.search(r"--validate-seen (\S+) --", command).group(1)
    assert seen.endswith("bc5cdr-disease/train.concept")
    assert "--validate-filter-dictionary" in command and "--validate-match exact" in command
