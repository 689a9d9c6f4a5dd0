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
KNOWN_TASKS = ("qa", "el_zeroshot", "el_supervised", "re")
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


def make_report(results: list[Path], runs: dict[str, Path], opts: ReportOptions,
                link_prefix: str = "", results_dir: Path | None = None,
                logs_dir: Path | None = None) -> dict[str, bytes]:
    """All report files as ``{relative path: content}`` (module docstring); the links of
    ``report.md`` start with ``link_prefix`` (the way from the page to the directory);
    ``results_dir``/``logs_dir``: the run's stage files for the pipeline summary."""

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
    for task in plots.known_first(scores["task"].unique().to_list(), KNOWN_TASKS):
        pngs[f"seeds_{task}"] = plots.seed_distributions(scores, task)
        titles[f"seeds_{task}"] = (f"{TASK_NAMES.get(task, task)}: primary metric of each "
                                   "seed, per benchmark")
    pngs = {k: v for k, v in pngs.items() if v is not None}
    files.update({f"plots/{k}.png": v for k, v in pngs.items()})

    from bali.report.page import report_page
    from bali.report.pipeline import summary_rows

    summary = summary_rows(results_dir, logs_dir) if results_dir is not None else []
    lines = report_page(opts.title, results, records, agg, scores, built, runs, metrics,
                        pngs, titles, summary, link_prefix)
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

    if args.action == "diff":
        return _diff(args)
    if args.out_dir is None:
        raise BaliInputError("bali report", "--out-dir is required (or: bali report diff A B)")
    results = expand_results(args.results)
    prefix = ""
    if args.markdown is not None:
        prefix = Path(os.path.relpath(args.out_dir, args.markdown.parent)).as_posix() + "/"
    files = make_report(results, parse_runs(args.pretrain_run),
                        options_from_args(ReportOptions, args), link_prefix=prefix,
                        results_dir=args.pipeline, logs_dir=args.logs)
    write_report(files, args.out_dir, args.markdown)
    print(json.dumps({"out_dir": str(args.out_dir), "results": len(results),
                      "files": sorted(files)}))


def _diff(args: argparse.Namespace) -> None:
    from bali.evaluate.results import read_records
    from bali.report.diff import diff_markdown, item_diff

    if len(args.files) != 2:
        raise BaliInputError("bali report diff", "expects two results JSONs: A B")
    a, b = read_records(args.files)
    print(diff_markdown(item_diff(a, b, args.metric), str(args.files[0]), str(args.files[1])))


def add_parser(stages: argparse._SubParsersAction) -> None:
    """Register ``bali report``."""
    rep = stages.add_parser(
        "report", help="the paper's result tables and plots from results JSONs",
        description="Tables 2-6 (Markdown, LaTeX, CSV) next to the published numbers, plots "
        "and report.md; see bali.report.commands for the layout. `bali report diff A.json "
        "B.json`: the test items one model gets right and the other wrong.")
    rep.add_argument("action", nargs="?", choices=["diff"], help="diff: compare two results")
    rep.add_argument("files", nargs="*", type=Path, help="diff: results JSONs A and B")
    rep.add_argument("--metric", help="diff: the metric (default: B's primary)")
    rep.add_argument("--results", nargs="*", default=[], metavar="FILE",
                     help="results JSONs, directories of them, or glob patterns (none: an "
                     "empty report)")
    rep.add_argument("--pretrain-run", action="extend", nargs="+", default=[],
                     metavar="LABEL=RUN_DIR",
                     help="a pretraining run directory (with metrics.jsonl) to plot; repeat")
    rep.add_argument("--out-dir", type=Path, help="output directory (required but for diff)")
    rep.add_argument("--pipeline", type=Path, metavar="RESULTS_DIR",
                     help="the run's results directory: a pipeline summary of its stages "
                     "(bali.report.pipeline)")
    rep.add_argument("--logs", type=Path, metavar="LOGS_DIR",
                     help="the run's logs directory (Snakemake benchmark files: wall times)")
    rep.add_argument("--markdown", type=Path,
                     help="write the page here instead of OUT_DIR/report.md (links adjusted)")
    add_options(rep, ReportOptions)
    rep.set_defaults(func=_report)
