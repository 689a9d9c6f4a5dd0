"""The captions of `snakemake --report` (workflow/report/*.rst), rendered the way Snakemake
renders them: Jinja (trim_blocks, lstrip_blocks) with `snakemake`, `categories` and `files`,
then docutils to HTML. The report built from a finished demo: tests/test_workflow.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import ROOT

pytest.importorskip("docutils")
jinja2 = pytest.importorskip("jinja2")

REPORT_DIR = ROOT / "workflow" / "report"
RULES = ROOT / "workflow" / "rules"

REPORT_MD = """\
# bali demo

Built from **4 result files**.

## Headline: BALI against its base model

Points (percent). 95% CI: paired bootstrap over the test items.

| benchmark | model | metric | base | + BALI | Δ | 95% CI of Δ | verdict |
|---|---|---|---:|---:|---:|---|---|
| hpo-syn | minilm | acc@1 | 49.03 | 46.33 | -2.70 | [-5.6, +0.2] | **no detectable difference** |
| hpo-synonyms | minilm + BALI (GAT) | acc@5 | 64.86 | 67.76 | +2.90 | [+0.19, +5.60] | **better** |

### Geometry of the concept-name space (Wang & Isola 2020)

alignment: mean squared distance of synonyms (lower: closer); gap = intra − inter.

| benchmark | model | alignment | gap |
|---|---|---:|---:|
| hpo-geometry | minilm original LM | 0.6183 | 0.5449 |

## Pipeline summary

Counts and wall time of each stage.

| stage | counts | wall time |
|---|---|---:|
| KG | concepts 36,748, names 58,358 | 6.3 s |
| evaluate | runs 4 | – |

Numbers are percentages. *Ours*: mean ± sample standard deviation over seeds.

Tables: [Table 2](#table-2-question-answering)

## Table 2: Question answering

| Model | Variant | PubMedQA |
|:---|:---|---:|
| PubMedBERT | original LM | – |
"""


def render(name: str, snakemake, files=()) -> str:
    """Caption `name` as HTML, as snakemake.report renders it (docutils warnings, which it
    would print into the page as "System Message" boxes, fail the test)."""
    from docutils.core import publish_parts

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    rst = env.from_string((REPORT_DIR / name).read_text()).render(
        snakemake=snakemake, categories={}, files=list(files))
    html = publish_parts(rst, writer="html",
                         settings_overrides={"report_level": 2, "halt_level": 2})["html_body"]
    assert "System Message" not in html, html
    return html


def test_every_caption_a_rule_names_exists():
    named = set()
    for smk in RULES.glob("*.smk"):
        named |= set(re.findall(r'(?:caption=|^report:\s*)"\.\./report/([\w.-]+)"',
                                smk.read_text(), flags=re.M))
    assert {"workflow.rst", "report_tables.rst", "report_plots.rst", "kg_stats.rst",
            "pretrain_curves.rst", "sentences_per_concept.rst"} <= named
    assert all((REPORT_DIR / name).is_file() for name in named), named


def test_landing_page_shows_the_headline_and_pipeline_tables(tmp_path):
    page = tmp_path / "report.md"
    page.write_text(REPORT_MD)
    sm = SimpleNamespace(config={"report": {"title": "bali demo: HPO"}, "results": "results"})
    html = render("workflow.rst", sm, [SimpleNamespace(path=page)])
    assert "<h1" in html and "bali demo: HPO" in html
    tables = re.findall(r"<table.*?</table>", html, flags=re.S)
    assert len(tables) == 3  # headline, geometry, pipeline summary; not Table 2
    headline = tables[0]
    assert headline.count("<tr") == 3 and "<th" in headline
    assert "+ BALI" in headline and "<ul" not in headline  # "+ BALI" is a cell, not a list
    assert "<strong>no detectable difference</strong>" in headline and "95% CI of Δ" in headline
    assert "concepts 36,748" in tables[2]
    assert "Geometry of the concept-name space" in html and "Numbers are percentages" not in html
    assert "PubMedBERT" not in html


def test_landing_page_without_report_md_keeps_the_intro():
    sm = SimpleNamespace(config={"report": {"title": "t"}, "results": "results"})
    html = render("workflow.rst", sm, [SimpleNamespace(path=Path("results/kg/stats.json"))])
    assert "rule graph" in html and "<table" not in html


def test_captions_show_the_files_they_describe(tmp_path):
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"counts": {"concepts": 36748}}, indent=2))
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "table3.md").write_text("| Model | NCBI @1 |\n|:---|---:|\n| minilm | 49.03 |\n")
    output = SimpleNamespace(stats=str(stats), meta=str(stats), report=str(stats),
                             tables=str(tables), plots=str(tmp_path / "plots"))
    config = {"results": "results", "report": {"title": "t"}}
    for name in ("kg_stats.rst", "sample_stats.rst", "subgraph_stats.rst", "shards_meta.rst",
                 "text_annotate.rst", "text_sentences.rst"):
        sm = SimpleNamespace(config=config, output=output,
                             wildcards=SimpleNamespace(model="minilm", shard="hp"))
        html = render(name, sm)
        assert "&quot;concepts&quot;: 36748" in html or '"concepts": 36748' in html, name
    sm = SimpleNamespace(config=config, output=output, wildcards=SimpleNamespace(n="3"))
    html = render("report_tables.rst", sm)
    assert "Table 3" in html and "minilm | 49.03" in html
    for plot, words in [("pretraining_curves", "Pretraining curves"),
                        ("el_zeroshot_bars", "base LM beside + BALI"),
                        ("seeds_geometry", "each seed"), ("other", "A plot")]:
        sm = SimpleNamespace(config=config, output=output, wildcards=SimpleNamespace(plot=plot))
        html = render("report_plots.rst", sm)
        assert words in html and f"{plot}.png" in html, plot
    for name in ("report_md.rst", "report_aggregate.rst", "sentences_per_concept.rst"):
        assert "rule" in render(name, SimpleNamespace(config=config, output=output))
    sm = SimpleNamespace(config=config, wildcards=SimpleNamespace(model="minilm", variant="gat"))
    assert "variant" in (html := render("pretrain_curves.rst", sm)) and ">gat</tt>" in html
