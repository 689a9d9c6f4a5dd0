"""``bali report``: the paper's Tables 2-6 and plots from results JSONs and pretraining runs.

``bali report --results FILES... --pretrain-run LABEL=RUN_DIR ... --out-dir DIR`` writes::

    DIR/report.md                      one GitHub-readable page: tables inline, plots, links
    DIR/tables/table{2..6}.{md,tex,csv} each table (bali.report.tables for layout and CSV)
    DIR/plots/*.png                    pretraining curves, EL bars, per-seed distributions
    DIR/aggregate.csv                  bali.evaluate.results.aggregate (fractions; seeds
                                       space-separated)

Everything is built in memory first and then written in one atomic step
(:func:`bali.io.atomic_paths`): a failure leaves no new file. ``--results`` takes files,
directories (their ``*.json``, recursively) or glob patterns (expanded here when the shell
left them unexpanded); zero results is allowed and the report says so.
"""

from __future__ import annotations

import argparse
import glob
import json
from dataclasses import dataclass, field
from pathlib import Path

from bali.config import add_options, options_from_args
from bali.io import BaliInputError


@dataclass(frozen=True)
class ReportOptions:
    title: str = field(default="BALI reproduction report",
                       metadata={"help": "title of report.md"})
    smooth: int = field(default=20, metadata={
        "help": "rolling-mean window of the pretraining curves, in steps"})


PLOT_TITLES = {
    "pretraining_curves": "Pretraining: loss and alignment accuracy per step",
    "el_zeroshot_bars": "Zero-shot entity linking, base LM vs BALI",
    "el_supervised_bars": "Supervised entity linking, base LM vs BALI",
}
TASK_NAMES = {"qa": "Question answering", "el_zeroshot": "Zero-shot entity linking",
              "el_supervised": "Supervised entity linking", "re": "Relation extraction"}
TABLE_TITLES = {2: "Question answering", 3: "Entity linking", 4: "Relation extraction",
                5: "Node representations (PubMedBERT)", 6: "Ablations (PubMedBERT, GAT)"}


def expand_results(items: list[str]) -> list[Path]:
    """Files in order; a directory gives its ``*.json`` (recursive, sorted); a pattern with
    ``* ? [`` that names no file gives its matches (possibly none). Duplicates dropped."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += sorted(p.rglob("*.json"))
        elif not p.exists() and any(ch in item for ch in "*?["):
            out += [Path(m) for m in sorted(glob.glob(item, recursive=True))]
        else:
            out.append(p)
    return list(dict.fromkeys(out))


def parse_runs(items: list[str]) -> dict[str, Path]:
    """``["gat=runs/gat", ...]`` -> ``{"gat": Path("runs/gat")}`` (labels unique)."""
    runs: dict[str, Path] = {}
    for item in items:
        label, sep, run_dir = item.partition("=")
        if not sep or not label or not run_dir:
            raise BaliInputError(item, "--pretrain-run expects LABEL=RUN_DIR")
        if label in runs:
            raise BaliInputError(item, f"pretraining run label {label!r} given twice")
        runs[label] = Path(run_dir)
    return runs


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces -> ``-``."""
    return "".join(ch for ch in heading.lower() if ch.isalnum() or ch in " -").replace(" ", "-")


def _png_link(name: str, title: str, prefix: str = "") -> str:
    return f"### {title}\n\n![{title}]({prefix}plots/{name}.png)\n"


def _run_summary(label: str, run_dir: Path, rows: list[dict]) -> str:
    last = rows[-1] if rows else {}
    acc = [r["align_acc"] for r in rows[-50:] if "align_acc" in r]

    def num(key: str) -> str:
        return f"{last[key]:.4f}" if key in last else "–"

    return (f"| {label} | `{run_dir}` | {last.get('step', '–')} | {num('loss')} | "
            f"{num('mlm_loss')} | {num('align_loss')} | "
            f"{f'{sum(acc) / len(acc):.3f}' if acc else '–'} |")


def make_report(results: list[Path], runs: dict[str, Path], opts: ReportOptions,
                link_prefix: str = "") -> dict[str, bytes]:
    """All report files as ``{relative path: content}`` (module docstring); the links of
    ``report.md`` start with ``link_prefix`` (the way from the page to the directory)."""

    from bali import __version__
    from bali.evaluate.results import aggregate, aggregate_csv, read_records
    from bali.report import plots, tables

    records = read_records(results)
    agg = aggregate(records)
    built = tables.build_tables(agg)
    files: dict[str, bytes] = {}
    for n, table in built.items():
        files[f"tables/table{n}.md"] = tables.to_markdown(table).encode()
        files[f"tables/table{n}.tex"] = tables.to_latex(table).encode()
        files[f"tables/table{n}.csv"] = tables.to_csv(table).encode()
    files["aggregate.csv"] = aggregate_csv(agg).encode()

    metrics = {label: plots.read_metrics(d) for label, d in runs.items()}
    pngs = {"pretraining_curves": plots.pretraining_curves(metrics, opts.smooth)}
    for task in ("el_zeroshot", "el_supervised"):
        pngs[f"{task}_bars"] = plots.el_bars(agg, task)
    scores = plots.seed_scores(records)
    titles = dict(PLOT_TITLES)
    known = ["qa", "el_zeroshot", "el_supervised", "re"]
    for task in plots.known_first(scores["task"].unique().to_list(), known):
        pngs[f"seeds_{task}"] = plots.seed_distributions(scores, task)
        titles[f"seeds_{task}"] = (f"{TASK_NAMES.get(task, task)}: primary metric of each "
                                   "seed, per benchmark")
    pngs = {k: v for k, v in pngs.items() if v is not None}
    files.update({f"plots/{k}.png": v for k, v in pngs.items()})

    seeds = sorted(set(scores["seed"].to_list()))
    lines = [f"# {opts.title}", ""]
    if records:
        span = f"{min(agg['n'])}–{max(agg['n'])}" if min(agg["n"]) != max(agg["n"]) \
            else str(min(agg["n"]))
        lines.append(
            f"Built from **{len(results)} result files** ({scores.height} distinct runs of a "
            f"model, benchmark and seed) with **{len(seeds)} distinct seeds** "
            f"({', '.join(map(str, seeds))}); each aggregated number averages n = {span} "
            f"seeds; **{len(runs)} pretraining runs**. bali {__version__}.")
    else:
        lines.append(f"Built from **0 result files**: no results yet, so the tables show only "
                     f"the paper's numbers; **{len(runs)} pretraining runs**. "
                     f"bali {__version__}.")
    from bali.report.headline import headline_markdown

    lines += ["", *headline_markdown(
        records, lambda m, v: f"{tables.model_name(m)} {tables.variant_name(v)}")]
    lines += [
        "", "Numbers are percentages. *Ours*: mean ± sample standard deviation over seeds "
        "(the mean alone for one seed). *(paper)*: the published number of the BALI paper "
        "(SIGIR 2025), as printed. – : not run here / not in the paper. <u>Underlined</u>: "
        "the best of a model's rows (original LM vs + BALI) per column, Tables 2–4. Rows: "
        "the paper's rows in its order, then extra variants and models found in the results; "
        "columns likewise for benchmarks.", "",
        "Tables: " + " · ".join(f"[Table {n}](#{_anchor(f'Table {n}: {TABLE_TITLES[n]}')})"
                                for n in built),
        "",
    ]
    for n, table in built.items():
        lines += [f"## Table {n}: {TABLE_TITLES[n]}", "",
                  table.caption + ("" if table.seeds else " **No results yet.**"), "",
                  f"Files: [LaTeX]({link_prefix}tables/table{n}.tex) · "
                  f"[CSV]({link_prefix}tables/table{n}.csv) · "
                  f"[Markdown]({link_prefix}tables/table{n}.md)", "",
                  tables.to_markdown(table)]
    lines += ["## Plots", ""]
    if not pngs:
        lines += ["No plots: no results and no pretraining runs given.", ""]
    for name in pngs:
        lines.append(_png_link(name, titles[name], link_prefix))
        if name == "pretraining_curves":
            lines += ["| run | directory | last step | loss | MLM loss | align loss | "
                      "align acc (last 50 steps) |", "|---|---|---:|---:|---:|---:|---:|"]
            lines += [_run_summary(k, runs[k], v) for k, v in metrics.items()]
            lines.append("")
    other = sorted(set(scores["task"].to_list()) - set(known))
    lines += ["## Files", "",
              f"- [aggregate.csv]({link_prefix}aggregate.csv): mean and std over seeds of "
              "every metric of every run (fractions, not percent)"
              + (f"; also holds tasks not in any table: {', '.join(other)}" if other else ""),
              "- Tables: " + ", ".join(f"[{n}.{ext}]({link_prefix}tables/table{n}.{ext})"
                                       for n in built for ext in ("tex", "csv")),
              "", "### Variant labels", "", "| label | meaning |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in tables.VARIANT_NAMES.items()]
    if results:
        lines += ["", "<details><summary>Result files</summary>", ""]
        lines += [f"- `{p}`" for p in results]
        lines += ["", "</details>"]
    files["report.md"] = ("\n".join(lines) + "\n").encode()
    return files


def write_report(files: dict[str, bytes], out_dir: Path, page: Path | None = None
                 ) -> list[Path]:
    """Write ``files`` under ``out_dir`` (``report.md`` to ``page`` when given) in one
    atomic step; return the paths written."""
    from bali.io import atomic_paths

    targets = [page if page is not None and name == "report.md" else out_dir / name
               for name in files]
    with atomic_paths(*targets) as tmps:
        for tmp, content in zip(tmps, files.values(), strict=True):
            tmp.write_bytes(content)
    return targets


def _report(args: argparse.Namespace) -> None:
    import os

    results = expand_results(args.results)
    prefix = ""
    if args.markdown is not None:
        prefix = Path(os.path.relpath(args.out_dir, args.markdown.parent)).as_posix() + "/"
    files = make_report(results, parse_runs(args.pretrain_run),
                        options_from_args(ReportOptions, args), link_prefix=prefix)
    write_report(files, args.out_dir, args.markdown)
    print(json.dumps({"out_dir": str(args.out_dir), "results": len(results),
                      "files": sorted(files)}))


def add_parser(stages: argparse._SubParsersAction) -> None:
    """Register ``bali report``."""
    rep = stages.add_parser(
        "report", help="the paper's result tables and plots from results JSONs",
        description="Tables 2-6 (Markdown, LaTeX, CSV) next to the published numbers, plots "
        "and report.md; see bali.report.commands for the layout.")
    rep.add_argument("--results", nargs="*", default=[], metavar="FILE",
                     help="results JSONs, directories of them, or glob patterns (none: an "
                     "empty report)")
    rep.add_argument("--pretrain-run", action="extend", nargs="+", default=[],
                     metavar="LABEL=RUN_DIR",
                     help="a pretraining run directory (with metrics.jsonl) to plot; repeat")
    rep.add_argument("--out-dir", required=True, type=Path, help="output directory")
    rep.add_argument("--markdown", type=Path,
                     help="write the page here instead of OUT_DIR/report.md (links adjusted)")
    add_options(rep, ReportOptions)
    rep.set_defaults(func=_report)
