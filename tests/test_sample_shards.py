"""The sharded union draw (bali.sample.bottomk): equal to the single job, row for row, with
PubMed-style revisions and deletions; an update file reruns its own jobs and the merge only."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import copy_workflow, job_counts, text_shard

from bali.cli import main
from bali.io import BaliInputError, scan_table
from bali.sample.balanced import SampleOptions, load_sentences, sample_sentences
from bali.sample.bottomk import (
    merge_reductions,
    read_reduction,
    reduce_shard,
    write_reduction,
)
from bali.sample.supersede import dead_versions, text_shards
from bali.text.schema import SENTENCES

CUIS = [f"C{i:04d}" for i in range(40)]
TIMING = ("balance_seconds", "seconds")


def make_corpus(root: Path, shards: int = 4, docs: int = 120, updates: bool = True,
                seed: int = 0) -> list[str]:
    """Shards of random sentences; with ``updates``, each shard revises half of the previous
    shard's documents (same doc ids, new text) and deletes a few earlier ones."""
    rng = random.Random(seed)
    names = []
    for s in range(shards):
        first = s * docs // 2 if updates else s * docs
        rows = []
        for doc in range(first, first + docs):
            for sid in range(rng.randint(1, 4)):
                text = " ".join(["w"] * rng.randint(3, 12)) + f" v{s}"
                mentions = [{"start": 0, "end": 1,
                             "cui": rng.choice(CUIS[:3]) if rng.random() < 0.2
                             else rng.choice([*CUIS, "NOT-IN-KG"])}
                            for _ in range(rng.randint(0, 3))]
                rows.append({"doc_id": str(doc), "sentence_id": sid, "start": 0,
                             "end": len(text), "text": text, "mentions": mentions})
        deleted = ([str(rng.randrange(first)) for _ in range(10)] if updates and s else [])
        text_shard(root / f"part{s:02d}", pl.DataFrame(rows, schema=SENTENCES), tuple(deleted))
        names.append(f"part{s:02d}")
    return names


def sharded(root: Path, names: list[str], kg: pl.Series, opts: SampleOptions, out: Path):
    shards = text_shards(root, names)
    for shard in shards:
        red = reduce_shard(scan_table(shard.sentences, SENTENCES), kg, opts)
        write_reduction(red, opts, out / shard.name)
    return merge_reductions(shards, [out / n for n in names], kg, opts)


@pytest.mark.parametrize("updates", [False, True])
@pytest.mark.parametrize("slack", [0, 10])
def test_sharded_union_equals_the_single_job(tmp_path, updates, slack):
    names = make_corpus(tmp_path / "text", updates=updates)
    kg = pl.Series("cui", CUIS)
    opts = SampleOptions(k=3, strategy="union", slack=slack, min_tokens=4, max_tokens=10)
    shards = text_shards(tmp_path / "text", names)
    sample, counts, stats = sample_sentences(load_sentences(shards), kg, opts)
    got_sample, got_counts, got_stats = sharded(tmp_path / "text", names, kg, opts,
                                                tmp_path / "red")
    assert got_sample.equals(sample) and got_counts.equals(counts)
    assert {k: got_stats[k] for k in stats if k not in TIMING} == {
        k: v for k, v in stats.items() if k not in TIMING}
    assert sample.height > 50 and (counts["sampled"] > 0).all()
    assert got_stats["dead_versions"] == (dead_versions(shards).height if updates else 0)
    if updates:  # revisions and deletions really removed documents of earlier shards
        assert got_stats["dead_versions"] > 100 and got_stats["shards_with_dead_versions"] == 3
        # hash partitions of 50 document ids (8 passes) give the same versions
        assert dead_versions(shards, docs_per_pass=50).equals(dead_versions(shards))
    if updates and slack == 0:  # the short case: concepts drawn again from a shard
        assert got_stats["concepts_redrawn"] > 0


def test_short_case_needs_the_redraw(tmp_path):
    """A shard's k lowest pairs of a concept all in documents that a later shard revises:
    dropping them without drawing again leaves the concept short of k (wrong)."""
    def sentences(doc_ids, tag):
        return pl.DataFrame([{"doc_id": d, "sentence_id": 0, "start": 0, "end": 9,
                              "text": f"a b c d e {tag}", "mentions": [
                                  {"start": 0, "end": 1, "cui": "A"}]} for d in doc_ids],
                            schema=SENTENCES)

    text_shard(tmp_path / "text" / "s0", sentences([f"d{i}" for i in range(12)], "old"))
    opts = SampleOptions(k=2, strategy="union", slack=0)
    kg = pl.Series("cui", ["A"])
    red0 = reduce_shard(scan_table(tmp_path / "text/s0/sentences.parquet", SENTENCES), kg, opts)
    lowest = red0.bottom["doc_id"].to_list()  # the shard's two lowest documents of A
    text_shard(tmp_path / "text" / "s1", sentences(["new"], "new"), deleted=tuple(lowest))
    sample, counts, stats = sharded(tmp_path / "text", ["s0", "s1"], kg, opts, tmp_path / "r")
    ref = sample_sentences(load_sentences(text_shards(tmp_path / "text", ["s0", "s1"])), kg,
                           opts)
    assert sample.equals(ref[0]) and counts.equals(ref[1])
    assert stats["concepts_redrawn"] == 1 and counts.rows() == [("A", 11, 2)]
    assert not set(lowest) & set(sample["doc_id"].to_list())


def test_merge_refuses_other_options_and_missing_shards(tmp_path):
    names = make_corpus(tmp_path / "text", shards=2, updates=False)
    kg = pl.Series("cui", CUIS)
    opts = SampleOptions(k=3, strategy="union")
    sharded(tmp_path / "text", names, kg, opts, tmp_path / "red")
    with pytest.raises(BaliInputError, match=r"reduction.json: drawn with .*'k': 3.*rerun"):
        read_reduction(tmp_path / "red" / names[0], SampleOptions(k=4, strategy="union"))
    with pytest.raises(BaliInputError, match="missing: run the sample_shard job"):
        read_reduction(tmp_path / "nowhere", opts)
    with pytest.raises(BaliInputError, match="no sentence mentions a KG node"):
        sharded(tmp_path / "text", names, pl.Series("cui", ["NOWHERE"]), opts, tmp_path / "r0")
    with pytest.raises(BaliInputError, match=r"shard 'gone': missing or empty"):
        text_shards(tmp_path / "text", [names[0], "gone"])
    (tmp_path / "text" / names[1] / "sentences.parquet").write_bytes(b"")
    with pytest.raises(BaliInputError, match=r"part01/sentences.parquet: shard 'part01': "
                       "missing or empty"):
        text_shards(tmp_path / "text", names)
    with pytest.raises(ValueError, match="'union' only"):
        reduce_shard(pl.LazyFrame(schema=SENTENCES), kg, SampleOptions(strategy="greedy"))


def test_cli_shard_and_merge_equal_bali_sample(tmp_path):
    names = make_corpus(tmp_path / "text", shards=3)
    kg = tmp_path / "kg"
    kg.mkdir()
    pl.DataFrame({"cui": CUIS}).write_parquet(kg / "concepts.parquet")
    flags = ["--strategy", "union", "--k", "2", "--min-tokens", "4"]
    for name in names:
        assert main(["sample-shard", "--sentences", str(tmp_path / "text" / name /
                     "sentences.parquet"), "--kg-dir", str(kg), "--out-dir",
                     str(tmp_path / "red" / name), *flags]) == 0
    common = ["--text-dir", str(tmp_path / "text"), "--shards", *names, "--kg-dir", str(kg)]
    assert main(["sample-merge", *common, "--reductions-dir", str(tmp_path / "red"),
                 "--out-dir", str(tmp_path / "merged"), *flags]) == 0
    assert main(["sample", *common, "--out-dir", str(tmp_path / "single"), *flags]) == 0
    for table in ("sample.parquet", "concept_counts.parquet"):
        assert pl.read_parquet(tmp_path / "merged" / table).equals(
            pl.read_parquet(tmp_path / "single" / table))
    merged = json.loads((tmp_path / "merged" / "sample_stats.json").read_text())
    assert merged["shards"] == 3 and merged["dead_versions"] > 0


# --- the DAG: an update file reruns its own jobs and the merge ------------------------------

OBO = "".join(f"[Term]\nid: X:{i:03d}\nname: marker{i}\n\n" for i in range(30))


def _abstracts(path: Path, first: int, n: int, rng: random.Random) -> None:
    lines = []
    for pmid in range(first, first + n):
        words = [f"marker{rng.randrange(30)}" if rng.random() < 0.3 else "word"
                 for _ in range(24)]
        lines.append(json.dumps({"pmid": str(pmid), "title": "A title of six words here.",
                                 "abstract": " ".join(words[:12]) + ". " +
                                 " ".join(words[12:]) + "."}))
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.workflow
def test_update_file_reruns_only_its_jobs_and_the_merge(tmp_path):
    (tmp_path / "wf").mkdir()
    work = copy_workflow(tmp_path / "wf")
    (tmp_path / "kg.obo").write_text("format-version: 1.2\n\n" + OBO)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rng = random.Random(0)
    for i in range(3):
        _abstracts(corpus / f"pubmed22n{i + 1:04d}.jsonl", 100 * i, 40, rng)
    config = {"results": str(tmp_path / "results"), "logs": str(tmp_path / "logs"),
              "kg": {"source": "obo", "obo": {"files": [str(tmp_path / "kg.obo")],
                                               "hpoa": None, "genes_to_phenotype": None},
                     "holdout": {"share": 0.0}},
              "text": {"corpus": [str(corpus / "*.jsonl")], "annotator": "dictionary"},
              "sample": {"strategy": "union", "k": 2}}
    (work / "c.yaml").write_text(yaml.safe_dump(config))
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}

    def snakemake(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2",
                               "--configfile", "c.yaml", "--until", "sample_sentences", *args],
                              cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (proc.stderr + proc.stdout)[-3000:]
        return proc.stdout

    snakemake()
    assert json.loads((tmp_path / "results/sample/sample_stats.json").read_text())[
        "shards"] == 3
    assert re.search(r"^total\s+0$", snakemake("-n"), re.M)  # all up to date
    _abstracts(corpus / "pubmed22n0004.jsonl", 20, 40, rng)  # revises 20 of file 1's PMIDs
    counts = job_counts(snakemake("-n"))
    assert counts == {"read_corpus": 1, "annotate": 1, "split_sentences": 1,
                      "sample_shard": 1, "sample_sentences": 1}
    snakemake()
    stats = json.loads((tmp_path / "results/sample/sample_stats.json").read_text())
    assert stats["shards"] == 4 and stats["dead_versions"] == 20
    # an option of the merge alone reruns the merge, no shard
    config["sample"]["docs_per_pass"] = 7
    (work / "c.yaml").write_text(yaml.safe_dump(config))
    assert job_counts(snakemake("-n")) == {"sample_sentences": 1}
