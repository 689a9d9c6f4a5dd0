"""``report.md``: the run's own results first, then the paper's tables where we have numbers.

Order: title and provenance line; the headline (:mod:`bali.report.headline`: BALI against
its base, paired bootstrap CIs, verdicts, geometry); the pipeline summary
(:mod:`bali.report.pipeline`); Tables 2-6 cut to the rows and columns that hold a result of
ours, each beside the paper's number (the full tables are in ``tables/``); plots; files.
"""

from __future__ import annotations

from pathlib import Path


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces -> ``-``."""
    return "".join(ch for ch in heading.lower() if ch.isalnum() or ch in " -").replace(" ", "-")


def _png_link(name: str, title: str, prefix: str = "") -> str:
    return f"### {title}\n\n![{title}]({prefix}plots/{name}.png)\n"


def _run_summary(label: str, run_dir: Path, rows: list[dict]) -> str:
    """One row of the pretraining table: the last step, then the run's final losses and
    alignment accuracy as means of the last steps (:func:`bali.report.pipeline.final_losses`,
    the pipeline summary's figures)."""
    from bali.report.pipeline import FINAL_WINDOW, final_losses

    train = [r for r in rows if "loss" in r]
    final = final_losses(train)
    acc = [r["align_acc"] for r in train[-FINAL_WINDOW:] if "align_acc" in r]
    cells = [("–" if final[k] is None else f"{final[k]:.4f}") for k in ("loss", "MLM", "align")]
    return (f"| {label} | `{run_dir}` | {train[-1]['step'] if train else '–'} | "
            + " | ".join(cells) + f" | {f'{sum(acc) / len(acc):.3f}' if acc else '–'} |")


def _provenance(results: list[Path], records: list[dict], agg, scores, runs: dict) -> str:
    """The line under the title: result files, distinct runs and seeds, the n of each mean,
    pretraining runs, bali version."""
    from bali import __version__

    seeds = sorted(set(scores["seed"].to_list()))
    if not records:
        return (f"Built from **0 result files**: no results yet, so the tables show only "
                f"the paper's numbers; **{len(runs)} pretraining runs**. bali {__version__}.")
    span = f"{min(agg['n'])}–{max(agg['n'])}" if min(agg["n"]) != max(agg["n"]) \
        else str(min(agg["n"]))
    return (f"Built from **{len(results)} result files** ({scores.height} distinct runs of a "
            f"model, benchmark and seed) with **{len(seeds)} distinct seeds** "
            f"({', '.join(map(str, seeds))}); each aggregated number averages n = {span} "
            f"seeds; **{len(runs)} pretraining runs**. bali {__version__}.")


def _tables_section(built: dict, link_prefix: str) -> list[str]:
    """The legend, a table of contents, then each table cut to our rows and columns with
    links to its full Markdown/LaTeX/CSV files."""
    from bali.report import tables
    from bali.report.commands import TABLE_TITLES

    ours = {n: tables.ours_only(t) for n, t in built.items()}
    lines = [
        "", "Numbers are percentages. *Ours*: mean ± sample standard deviation over seeds "
        "(the mean alone for one seed). *(paper)*: the published number of the BALI paper "
        "(SIGIR 2025), as printed. – : not run here / not in the paper. <u>Underlined</u>: "
        "the best of a model's rows (original LM vs + BALI) per column, Tables 2–4. Rows: "
        "the paper's rows in its order, then extra variants and models found in the results; "
        "columns likewise for benchmarks. Below, each table keeps only the rows and "
        "columns that hold a result of ours; the full tables (every paper row) are the "
        "files linked under each.", "",
        "Tables: " + " · ".join(f"[Table {n}](#{_anchor(f'Table {n}: {TABLE_TITLES[n]}')})"
                                for n in built),
        "",
    ]
    for n, table in built.items():
        files = (f"Full table: [Markdown]({link_prefix}tables/table{n}.md) · "
                 f"[LaTeX]({link_prefix}tables/table{n}.tex) · "
                 f"[CSV]({link_prefix}tables/table{n}.csv)")
        lines += [f"## Table {n}: {TABLE_TITLES[n]}", ""]
        if ours[n] is None:
            lines += ["No result of ours in this table yet. " + files, ""]
            continue
        lines += [table.caption, "", files, "", tables.to_markdown(ours[n])]
    return lines


def _plots_section(pngs: dict, titles: dict, runs: dict[str, Path], metrics: dict,
                   link_prefix: str) -> list[str]:
    """Each plot; under the pretraining curves, one summary row per run."""
    from bali.report.pipeline import FINAL_WINDOW

    lines = ["## Plots", ""]
    if not pngs:
        lines += ["No plots: no results and no pretraining runs given.", ""]
    for name in pngs:
        lines.append(_png_link(name, titles[name], link_prefix))
        if name == "pretraining_curves":
            lines += [f"Losses and alignment accuracy: means over the last {FINAL_WINDOW} "
                      "training steps, as in the pipeline summary (MLM over the steps "
                      "that masked a token).", "",
                      "| run | directory | last step | loss | MLM loss | align loss | "
                      "align acc |", "|---|---|---:|---:|---:|---:|---:|"]
            lines += [_run_summary(k, runs[k], v) for k, v in metrics.items()]
            lines.append("")
    return lines


def _files_section(results: list[Path], scores, built: dict, link_prefix: str) -> list[str]:
    """Links to aggregate.csv and the table files, the variant labels, the result files."""
    from bali.report import tables
    from bali.report.commands import KNOWN_TASKS

    other = sorted(set(scores["task"].to_list()) - set(KNOWN_TASKS))
    lines = ["## Files", "",
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
    return lines


def report_page(title: str, results: list[Path], records: list[dict], agg, scores, built: dict,
                runs: dict[str, Path], metrics: dict, pngs: dict, titles: dict,
                summary: list[dict], link_prefix: str = "") -> list[str]:
    """The Markdown lines of ``report.md`` (module docstring)."""
    from bali.report import tables
    from bali.report.headline import headline_markdown
    from bali.report.pipeline import summary_markdown

    lines = [f"# {title}", "", _provenance(results, records, agg, scores, runs)]
    lines += ["", *headline_markdown(
        records, lambda m, v: f"{tables.model_name(m)} {tables.variant_name(v)}")]
    lines += ["", *summary_markdown(summary)]
    lines += _tables_section(built, link_prefix)
    lines += _plots_section(pngs, titles, runs, metrics, link_prefix)
    lines += _files_section(results, scores, built, link_prefix)
    return lines
