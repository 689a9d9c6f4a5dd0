"""``bali report``: paper transcription, Tables 2-6 from synthetic records, LaTeX/CSV, plots,
the CLI end to end (links of report.md resolve) and its atomic failure."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bali.cli import main
from bali.evaluate.results import aggregate, read_records, record, write_record
from bali.io import BaliInputError
from bali.report import paper, plots, tables

PAPER = Path("/work/shared/paper/bali-sigir2025.txt")
PNG = b"\x89PNG\r\n\x1a\n"

# (task, benchmark, model, variant, metric) -> one value per seed (fractions)
RUNS = {
    ("qa", "pubmedqa", "pubmedbert", "base", "accuracy"): [0.60, 0.62, 0.64],
    ("qa", "pubmedqa", "pubmedbert", "gat", "accuracy"): [0.70, 0.72, 0.74],
    ("qa", "bioasq", "pubmedbert", "base", "accuracy"): [0.70, 0.70, 0.70],
    ("qa", "bioasq", "pubmedbert", "gat", "accuracy"): [0.68, 0.70, 0.72],  # tie as printed
    ("qa", "pubmedqa", "pubmedbert", "sage", "accuracy"): [0.58, 0.60, 0.62],
    ("qa", "pubmedqa", "pubmedbert", "no-mlm", "accuracy"): [0.61],
    ("qa", "pubmedqa", "tiny_bert", "gat", "accuracy"): [0.50, 0.52, 0.54],
    ("el_zeroshot", "ncbi", "pubmedbert", "base", "acc@1"): [0.50, 0.52, 0.54],
    ("el_zeroshot", "ncbi", "pubmedbert", "gat", "acc@1"): [0.66, 0.68, 0.70],
    ("el_zeroshot", "hpo-synonyms", "minilm", "base", "acc@1"): [0.40, 0.41, 0.42],
    ("el_zeroshot", "hpo-synonyms", "minilm", "gat", "acc@1"): [0.45, 0.46, 0.47],
    ("re", "chemprot", "pubmedbert", "gat", "micro_f1"): [0.77, 0.78, 0.76],
}


def _write_records(folder: Path) -> list[Path]:
    """One record per run and seed; EL records also carry acc@5 (= acc@1 + 0.1)."""
    paths = []
    for (task, bench, model, variant, metric), values in RUNS.items():
        for seed, value in enumerate(values):
            metrics = {metric: value}
            if metric == "acc@1":
                metrics["acc@5"] = value + 0.1
            path = folder / f"{task}-{bench}-{model}-{variant}-{seed}.json"
            write_record(path, record(task=task, benchmark=bench, model=f"/models/{model}",
                                      seed=seed, metrics=metrics, primary=metric,
                                      labels={"model": model, "variant": variant}))
            paths.append(path)
    return paths


@pytest.fixture
def built(tmp_path):
    return tables.build_tables(aggregate(read_records(_write_records(tmp_path))))


def _md_row(md: str, model: str, variant: str, section: str | None = None) -> list[str]:
    """Cells of the Markdown row of (model display name, variant display name)."""
    current = None
    for line in md.splitlines():
        if line.startswith("| *"):
            current = line.strip("| *")
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if cells[:2] == [model, variant] and (section is None or current == section):
            return cells
    raise AssertionError(f"no row {model}/{variant} in\n{md}")


def test_paper_transcription_matches_the_paper_text():
    """Every number of Tables 2-6, row by row, equals the paper text's (in order)."""
    if not PAPER.exists():
        pytest.skip("paper text not available")
    lines = PAPER.read_text().splitlines()

    def printed(title: str, nrows: int) -> list[list[str]]:
        start = next(i for i, ln in enumerate(lines) if ln.startswith(title))
        rows = []
        for ln in lines[start + 1:start + nrows]:
            head, _, rest = ln.partition("\t")
            nums = re.findall(r"\d+(?:\.\d+)?(?: ± \d+(?:\.\d+)?)?", rest)
            skip = ("Model", "QA-GNN", "GreaseLM", "DRAGON", "GPT-4", "ChatGPT")
            if nums and head and not head.startswith(skip):
                rows.append(nums)
        return rows

    def ours(number: int, task: str, section: str | None = None) -> list[list[str]]:
        return [[v.text for b, m in paper.COLUMNS[number]
                 if (v := paper.VALUES[number].get((task, b, r.model, r.variant, m)))]
                for r in paper.ROWS[number] if section is None or r.section == section]

    assert printed("Table 2:", 13) == ours(2, "qa")
    assert printed("Table 3:", 30) == (ours(3, "el_zeroshot", "Zero-shot evaluation")
                                       + ours(3, "el_supervised", "Supervised evaluation"))
    assert printed("Table 4:", 12) == ours(4, "re")
    assert printed("Table 5:", 12) == ours(5, "qa")
    assert printed("Table 6:", 22) == ours(6, "qa")
    assert [b.name for b in paper.BASELINES[2]] == ["QA-GNN [85]", "GreaseLM [88]",
                                                    "DRAGON [83]", "GPT-4 [50]"]
    assert paper.published("qa", "bioasq", "pubmedbert", "gat", "accuracy") == \
        paper.Published(74.0, 3.4, "74 ± 3.4")


def test_table2_cells_paper_numbers_and_underline(built):
    md = tables.to_markdown(built[2])
    base = _md_row(md, "PubMedBERT", "original LM")
    gat = _md_row(md, "PubMedBERT", "+ BALI (GAT)")
    # columns: PubMedQA, (paper), MedQA, (paper), BioASQ, (paper)
    assert gat[2:4] == ["<u>72.0 ± 2.0</u>", "65.2 ± 1.2"]
    assert base[2:4] == ["62.0 ± 2.0", "63.1 ± 2.9"]
    assert gat[4:6] == ["–", "39.8"]  # MedQA not run; paper mean only
    assert base[6] == "<u>70.0 ± 0.0</u>" and gat[6] == "<u>70.0 ± 2.0</u>"  # a tie
    linear = _md_row(md, "PubMedBERT", "+ BALI (linear graph)")
    assert linear[2:4] == ["–", "65.0 ± 1.6"]
    # an extra model after the paper's models, no paper number, alone: no underline
    extra = _md_row(md, "tiny_bert", "+ BALI (GAT)")
    assert extra[2:4] == ["52.0 ± 2.0", "–"]
    assert md.index("BioLinkBERT-large") < md.index("tiny_bert") < md.index("QA-GNN")
    assert _md_row(md, "GPT-4 [50]", "(paper only)")[2:] == ["–", "80.4", "–", "86.1",
                                                             "–", "95.4"]
    # Table 5/6 variants are not repeated in Table 2
    assert "GraphSAGE" not in md and "MLM loss" not in md


def test_table3_extra_model_and_benchmark(built):
    t3 = built[3]
    assert [c.benchmark for c in t3.columns][-2:] == ["hpo-synonyms", "hpo-synonyms"]
    md = tables.to_markdown(t3)
    head = md.splitlines()[0]
    assert "hpo-synonyms @1 | hpo-synonyms @1 (paper)" in head
    gat = _md_row(md, "PubMedBERT", "+ BALI (GAT)", "Zero-shot evaluation")
    assert gat[2:6] == ["<u>68.00 ± 2.00</u>", "68.14", "<u>78.00 ± 2.00</u>", "79.90"]
    sup = _md_row(md, "PubMedBERT", "+ BALI (GAT)", "Supervised evaluation")
    assert sup[2:4] == ["–", "74.02"]
    mini = _md_row(md, "minilm", "+ BALI (GAT)", "Zero-shot evaluation")
    assert mini[2] == "–" and mini[-4:] == ["<u>46.00 ± 1.00</u>", "–", "<u>56.00 ± 1.00</u>",
                                            "–"]
    assert "minilm" not in md.split("*Supervised evaluation*")[1]


def test_tables_4_to_6(built):
    md4 = tables.to_markdown(built[4])
    gat = _md_row(md4, "PubMedBERT", "+ BALI (GAT)")
    assert gat[2:4] == ["77.00 ± 1.00", "76.91"]  # only one row of the pair: no underline
    assert _md_row(md4, "ChatGPT [10]", "(paper only)")[3] == "34.16"
    md5 = tables.to_markdown(built[5])
    assert _md_row(md5, "PubMedBERT", "+ BALI (GraphSAGE)")[2:4] == ["60.00 ± 2.00", "58.8"]
    md6 = tables.to_markdown(built[6])
    assert _md_row(md6, "PubMedBERT", "BALI − MLM loss")[2:6] == ["61.00", "60.54", "–",
                                                                  "64.53"]
    assert "<u>" not in md5 + md6  # the paper underlines nothing in Tables 5 and 6
    assert "*Training objective*" in md6


def test_latex_escapes_and_booktabs(built):
    tex = tables.to_latex(built[2])
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\cmidrule(lr){3-4}"):
        assert rule in tex
    assert r"\underline{72.0 $\pm$ 2.0} & 65.2 $\pm$ 1.2" in tex
    assert r"tiny\_bert" in tex and "tiny_bert" not in tex
    body = tex.split(r"\begin{tabular}")[1]
    assert "±" not in tex and "–" not in body and re.search(r"(?<!\\)_", body) is None
    assert r"(\%)" in tex
    for table in built.values():  # every body row has all columns; braces balance
        tex = tables.to_latex(table)
        ncol = 2 + 2 * len(table.columns)
        rows = [ln for ln in tex.splitlines() if ln.endswith(r"\\")
                and not ln.startswith(r"\multicolumn")]
        assert rows and all(len(re.findall(r"(?<!\\)&", ln)) == ncol - 1 for ln in rows[1:])
        assert tex.count("{") - tex.count(r"\{") == tex.count("}") - tex.count(r"\}")
    assert r"\resizebox" in tables.to_latex(built[3])


def test_csv_parses_with_expected_columns(built):
    df = pl.read_csv(io.StringIO(tables.to_csv(built[2])), schema=tables.CSV_SCHEMA)
    assert df.columns == list(tables.CSV_SCHEMA)
    cell = df.filter((pl.col("model") == "pubmedbert") & (pl.col("variant") == "gat")
                     & (pl.col("benchmark") == "pubmedqa"))
    assert cell["ours_mean"][0] == pytest.approx(72.0)
    assert cell["ours_std"][0] == pytest.approx(2.0)
    assert (cell["n_seeds"][0], cell["paper_mean"][0], cell["paper_std"][0]) == (3, 65.2, 1.2)
    assert cell["best_of_pair"][0]
    medqa = df.filter((pl.col("model") == "pubmedbert") & (pl.col("benchmark") == "medqa"))
    assert medqa["ours_mean"].null_count() == medqa.height
    assert df.filter(pl.col("paper_only"))["model"].unique().len() == 4


def test_no_results_renders_paper_numbers():
    built = tables.build_tables(aggregate([]))
    md = tables.to_markdown(built[4])
    assert _md_row(md, "GEBERT", "+ BALI (GAT)")[2:] == ["–", "77.32", "–", "80.95", "–",
                                                         "83.33"]
    assert "No results yet" in md and "<u>" not in md
    assert all(not t.seeds for t in built.values())


def _metrics_file(run: Path, steps: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    run.mkdir(parents=True)
    rows = [{"step": s, "loss": 10 - s / 10 + rng.normal(), "mlm_loss": 8 - s / 20,
             "align_loss": 2 - s / 50, "align_acc": min(1.0, s / steps), "lr": [2e-5, 1e-4]}
            for s in range(1, steps + 1)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_plots_are_pngs(tmp_path):
    records = read_records(_write_records(tmp_path))
    agg = aggregate(records)
    _metrics_file(tmp_path / "a", 40, 0)
    _metrics_file(tmp_path / "b", 25, 1)
    curves = plots.pretraining_curves({"a": plots.read_metrics(tmp_path / "a"),
                                       "b": plots.read_metrics(tmp_path / "b")}, window=5)
    bars = plots.el_bars(agg, "el_zeroshot")
    dist = plots.seed_distributions(plots.seed_scores(records), "qa")
    for png in (curves, bars, dist):
        assert png is not None and png.startswith(PNG) and len(png) > 5000
    assert plots.el_bars(agg, "el_supervised") is None
    assert plots.pretraining_curves({}) is None
    y, off = plots.smooth(np.arange(40.0), 5)
    assert off == 4 and y[0] == pytest.approx(2.0) and len(y) == 36


def test_bad_metrics_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 2}\nnot json\n')
    with pytest.raises(BaliInputError, match=r"metrics.jsonl:2: not JSON"):
        plots.read_metrics(tmp_path)


def test_cli_end_to_end(tmp_path, capsys):
    res = tmp_path / "results"
    files = _write_records(res)
    _metrics_file(tmp_path / "runs" / "gat", 30, 0)
    out = tmp_path / "report"
    assert main(["report", "--results", str(res / "*.json"), "--pretrain-run",
                 f"gat={tmp_path / 'runs' / 'gat'}", "--out-dir", str(out),
                 "--title", "Demo report"]) == 0
    text = (out / "report.md").read_text()
    assert text.startswith("# Demo report\n")
    assert f"Built from **{len(files)} result files**" in text and "**3 distinct seeds**" in text
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert len(links) >= 5 * 3 + 4  # tables (.tex/.csv/.md) and plots at least
    for link in links:
        assert (out / link).is_file() and (out / link).stat().st_size > 0, link
    for n in range(2, 7):
        for ext in ("md", "tex", "csv"):
            assert (out / "tables" / f"table{n}.{ext}").stat().st_size > 0
        full = tables.build_tables(aggregate(read_records(files)))[n]
        ours = tables.ours_only(full)  # inline: only rows/columns with a result of ours
        assert tables.to_markdown(ours) in text and tables.to_markdown(full) not in text
        assert (out / "tables" / f"table{n}.md").read_text() == tables.to_markdown(full)
    for name in ("pretraining_curves", "el_zeroshot_bars", "seeds_qa", "seeds_re"):
        assert (out / "plots" / f"{name}.png").read_bytes().startswith(PNG)
        assert f"](plots/{name}.png)" in text
    agg = pl.read_csv(out / "aggregate.csv")
    assert {"benchmark", "model", "variant", "mean", "std", "seeds"} <= set(agg.columns)
    assert not list(out.rglob(".*.tmp-*"))

    # the page elsewhere (the workflow writes results/report.md beside results/report/)
    page = tmp_path / "report.md"
    assert main(["report", "--results", str(res), "--pretrain-run",
                 f"gat={tmp_path / 'runs' / 'gat'}", "--out-dir", str(out),
                 "--markdown", str(page)]) == 0
    links = re.findall(r"\]\(([^)#]+)\)", page.read_text())
    assert links and all(link.startswith("report/") for link in links)
    assert all((tmp_path / link).is_file() for link in links)

    empty = tmp_path / "empty"
    assert main(["report", "--results", str(tmp_path / "none" / "*.json"),
                 "--out-dir", str(empty)]) == 0
    text = (empty / "report.md").read_text()
    assert "Built from **0 result files**" in text and "No result of ours" in text
    assert "![" not in text and "74 ± 3.4" not in text
    assert "74 ± 3.4" in (empty / "tables" / "table2.md").read_text()  # the full table
    capsys.readouterr()


def test_cli_bad_run_writes_nothing(tmp_path, capsys):
    res = tmp_path / "results"
    _write_records(res)
    (tmp_path / "run").mkdir()
    out = tmp_path / "report"
    assert main(["report", "--results", str(res), "--pretrain-run",
                 f"x={tmp_path / 'run'}", "--out-dir", str(out)]) == 2
    assert "metrics.jsonl: pretraining run has no metrics.jsonl" in capsys.readouterr().err
    assert not out.exists() or not any(out.rglob("*"))
    assert main(["report", "--pretrain-run", "no-equals", "--out-dir", str(out)]) == 2
    assert "LABEL=RUN_DIR" in capsys.readouterr().err


def _el_record(variant: str, hits: list[int], seed: int = 0) -> dict:
    return {"task": "el_zeroshot", "benchmark": "hpo", "model": "m", "seed": seed,
            "labels": {"model": "minilm", "variant": variant}, "primary": "acc@1",
            "metrics": {"acc@1": sum(hits) / len(hits)},
            "items": {"id": [f"q{i}" for i in range(len(hits))], "hit@1": hits}}


def test_paired_bootstrap_and_headline_verdicts():
    import numpy as np

    from bali.report.headline import headline_rows, paired_bootstrap

    base = np.array([0, 1] * 50)
    lo, hi = paired_bootstrap(base, base)
    assert lo == hi == 0.0  # identical scores: every resample has delta 0
    better = base.copy()
    better[::2] = 1  # 50 more hits of 100: delta +0.5, CI around it, above 0
    lo, hi = paired_bootstrap(base, better)
    assert 0.35 < lo < 0.5 < hi < 0.65
    rows = headline_rows([_el_record("base", base.tolist()), _el_record("gat", better.tolist()),
                          _el_record("gat2", (1 - base).tolist()),
                          _el_record("same", base.tolist())])
    by = {r["variant"]: r for r in rows}
    # every item the same (e.g. both models at the majority class): no signal, not "no effect"
    assert by["same"]["ci"] == (0.0, 0.0) and by["same"]["verdict"] == "identical (no signal)"
    assert by["gat"]["delta"] == pytest.approx(50.0) and by["gat"]["verdict"] == "better"
    # flipping every item: same accuracy, delta 0, CI straddles 0
    assert by["gat2"]["delta"] == 0 and by["gat2"]["verdict"] == "no detectable difference"
    assert by["gat2"]["ci"][0] < 0 < by["gat2"]["ci"][1]


def test_headline_over_seeds_without_items():
    from bali.report.headline import headline_rows

    recs = []
    for seed, (b, g) in enumerate([(0.5, 0.6), (0.4, 0.45), (0.5, 0.52)]):
        for v, acc in (("base", b), ("gat", g)):
            r = _el_record(v, [1], seed)
            r["metrics"]["acc@1"], r["items"] = acc, None
            recs.append(r)
    (row,) = headline_rows(recs)
    assert row["seeds"] == 3 and row["delta"] == pytest.approx((10 + 5 + 2) / 3)
    assert row["ci"] is None and row["std"] == pytest.approx(np.std([10, 5, 2], ddof=1))
    # paired over seeds: mean ± t(0.975, 2) * std / sqrt(3) straddles 0 despite 3 of 3 gains
    half = 4.303 * row["std"] / np.sqrt(3)
    assert row["ci_seeds"] == pytest.approx((row["delta"] - half, row["delta"] + half))
    assert row["verdict"] == "no detectable difference"
    for r in recs:
        if r["labels"]["variant"] == "gat":
            r["metrics"]["acc@1"] += 0.05  # deltas 15, 10, 7: CI above 0
    (row,) = headline_rows(recs)
    assert row["ci_seeds"][0] > 0 and row["verdict"] == "better"


def test_constant_baselines_of_classification_records():
    from bali.report.baselines import NEGATIVE, baselines_markdown, constant_score

    assert constant_score(["yes"] * 3 + ["no"], "accuracy", "bioasq") == ("yes", 0.75)
    # micro-F1 over the positive classes: predicting the negative class scores 0; the best
    # positive label everywhere: precision 2/6, recall 2/3 -> F1 4/9
    gold = ["0", "0", "0", "1", "1", "2"]
    assert constant_score(gold, "micro_f1", "ddi") == ("1", pytest.approx(4 / 9))
    recs = [{"task": "re", "benchmark": "ddi", "model": "m", "seed": s, "primary": "micro_f1",
             "labels": {"model": "minilm", "variant": v}, "metrics": {"micro_f1": f},
             "items": {"id": list(range(6)), "gold": gold}}
            for s, (v, f) in enumerate([("base", 0.4), ("gat", 0.5), ("gat", 0.3)])]
    lines = baselines_markdown(recs)
    text = "\n".join(lines)
    assert "| ddi | micro_f1 | `1` | 44.44 | 6 | minilm/base | 40.00 | -4.44 | 0 of 1 |" in text
    assert "| minilm/gat | 40.00 | -4.44 | 1 of 2 |" in text
    from bali.evaluate.benchmarks import BENCHMARKS

    assert {n: b.negative for n, b in BENCHMARKS.items() if b.task == "re"} == NEGATIVE


def test_ours_only_keeps_rows_and_columns_with_our_results(built):
    full = built[3]
    ours = tables.ours_only(full)
    assert ours is not None and 0 < len(ours.rows) < len(full.rows)
    assert all(any(c.mean is not None for c in r.cells) for r in ours.rows)
    for j, col in enumerate(ours.columns):
        assert any(r.cells[j].mean is not None for r in ours.rows), col
    kept = {(r.model, r.variant) for r in ours.rows}
    assert kept == {(r.model, r.variant) for r in full.rows
                    if any(c.mean is not None for c in r.cells)}
    assert tables.ours_only(tables.build_tables(aggregate([]))[2]) is None


def test_pipeline_summary_reads_each_stage(tmp_path):
    """Counts from each stage's own files, wall times from Snakemake benchmark TSVs."""
    from bali.report.pipeline import summary_markdown, summary_rows

    res, logs = tmp_path / "results", tmp_path / "logs"
    for path, obj in {
        "kg/stats.json": {"counts": {"concepts": 3, "names": 5, "edges": 7, "xrefs": 1},
                          "seconds": 2.0},
        "text/a/annotate.json": {"documents": 2, "normalization": {"mapped": 4,
                                                                   "unmapped": 1}},
        "text/b/annotate.json": {"documents": 3, "normalization": {"mapped": 6,
                                                                   "unmapped": 0}},
        "text/a/sentences.json": {"sentences": 8}, "text/b/sentences.json": {"sentences": 9},
        "sample/sample_stats.json": {"candidate_sentences": 12, "sampled_sentences": 10,
                                     "concepts_with_candidates": 4, "k": 10, "seconds": 0.5},
        "shards/m/meta.json": {"counts": {"sentences": 10, "tokens": 99, "names": 5,
                                          "nodes": 3}},
    }.items():
        (res / path).parent.mkdir(parents=True, exist_ok=True)
        (res / path).write_text(json.dumps(obj))
    run = res / "pretrain" / "m" / "gat"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"step": 0, "dev_acc1": 0.5}, {"step": 1, "loss": 3.0, "samples_per_s": 4.0},
        {"step": 2, "loss": 2.0, "samples_per_s": 6.0, "dev_acc1": 0.55, "elapsed_s": 9.0}]))
    bench = logs / "benchmarks" / "build_kg"
    bench.mkdir(parents=True)
    (bench / "build_kg.tsv").write_text("s\th:m:s\tmax_rss\n61.5\t0:01:01\t100\n")
    rows = {r["stage"]: r for r in summary_rows(res, logs)}
    assert rows["KG"]["counts"] == {"concepts": 3, "names": 5, "edges": 7, "xrefs": 1}
    assert rows["KG"]["seconds"] == 61.5  # the benchmark file wins over the stage's own
    assert rows["text"]["counts"] == {"shards": 2, "documents": 5, "mentions mapped": 10,
                                      "unmapped": 1, "sentences": 17}
    assert rows["sample"]["seconds"] == 0.5
    pre = rows["pretrain (m/gat)"]
    assert pre["counts"]["steps"] == 2 and pre["counts"]["samples/s"] == 5.0
    assert pre["counts"]["loss (last 2)"] == 2.5  # the mean of the last steps, not the last
    assert pre["counts"]["dev Acc@1 base"] == 50.0 and pre["counts"]["best (step 2)"] == 55.0
    assert pre["seconds"] == 9.0
    md = "\n".join(summary_markdown(list(rows.values())))
    assert "| KG | concepts 3, names 5, edges 7, xrefs 1 | 1 min 02 s |" in md
    assert summary_rows(tmp_path / "nothing") == [] and summary_markdown([]) == []


def test_summary_and_pretraining_table_give_the_same_final_losses(tmp_path):
    """One definition of a run's final losses (``pipeline.final_losses``: means over the last
    FINAL_WINDOW steps, MLM over the steps that masked a token) in both places; the last
    step, whose batch masked nothing, does not stand in for the run."""
    from bali.report.page import _run_summary
    from bali.report.pipeline import FINAL_WINDOW, final_losses, summary_rows

    run = tmp_path / "results" / "pretrain" / "m" / "gat"
    run.mkdir(parents=True)
    rows = [{"step": s, "loss": 5.0 + s % 3, "mlm_loss": 4.0 + s % 2, "align_loss": 0.5,
             "align_acc": 0.75} for s in range(1, FINAL_WINDOW + 21)]
    rows[-1] |= {"loss": 0.0386, "mlm_loss": 0.0, "align_loss": 0.0386}
    rows.insert(0, {"step": 0, "dev_acc1": 0.5})  # a validation line without losses
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    train = rows[1:][-FINAL_WINDOW:]
    final = final_losses(plots.read_metrics(run))
    assert final["steps"] == FINAL_WINDOW
    assert final["loss"] == round(sum(r["loss"] for r in train) / FINAL_WINDOW, 4)
    masked = [r["mlm_loss"] for r in train if r["mlm_loss"] > 0]
    assert final["MLM"] == round(sum(masked) / len(masked), 4) and final["MLM"] > 4
    summary = summary_rows(tmp_path / "results")[0]["counts"]
    assert (summary[f"loss (last {FINAL_WINDOW})"], summary["MLM"], summary["align"]) == (
        final["loss"], final["MLM"], final["align"])
    cells = _run_summary("gat", run, plots.read_metrics(run)).split(" | ")
    assert cells[2] == str(FINAL_WINDOW + 20)  # the last step
    assert [float(c) for c in cells[3:6]] == [final["loss"], final["MLM"], final["align"]]
    assert final_losses([]) == {"loss": None, "MLM": None, "align": None, "steps": 0}


def test_report_diff_lists_items_won_and_lost(tmp_path, capsys):
    from bali.report.diff import item_diff

    base, bali = _el_record("base", [1, 0, 1, 0, 1]), _el_record("gat", [1, 1, 0, 0, 1])
    base["items"]["top1"] = ["a", "b", "c", "d", "e"]
    bali["items"]["top1"] = ["a", "B", "C", "d", "e"]
    diff = item_diff(base, bali)
    assert [r["id"] for r in diff["won"]] == ["q1"] and [r["id"] for r in diff["lost"]] == ["q2"]
    assert diff["won"][0] == {"id": "q1", "top1 (A)": "b", "top1 (B)": "B"} and diff["same"] == 3
    paths = []
    for name, rec in (("a", base), ("b", bali)):
        rec |= {"options": {}, "counts": {}, "data": {}, "notes": [], "seconds": 0.0,
                "bali_version": "0"}
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(rec))
    assert main(["report", "diff", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    assert "right and A" in out and "| q1 | b | B |" in out and "| q2 | c | C |" in out
    bali["items"]["id"][0] = "other"
    with pytest.raises(BaliInputError, match="different items"):
        item_diff(base, bali)


def test_tables_5_and_6_take_other_models_runs_of_their_variants():
    recs = [{"task": "qa", "benchmark": "bioasq", "model": "m", "seed": 0, "primary": "accuracy",
             "labels": {"model": "minilm", "variant": v}, "metrics": {"accuracy": 0.6}}
            for v in ("base", "gat", "linear", "no-mlm")]
    built = tables.build_tables(aggregate(recs))
    mine = {n: [r.variant for r in built[n].rows if r.model == "minilm"] for n in (2, 5, 6)}
    assert mine[5] == ["gat", "linear"] and mine[6] == ["base", "gat", "no-mlm"]
    assert set(mine[2]) == {"base", "gat", "linear", "no-mlm"}
