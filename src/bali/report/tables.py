"""The paper's Tables 2-6 built from aggregated results, rendered as Markdown, LaTeX and CSV.

Input: :func:`bali.evaluate.results.aggregate` (one row per benchmark, task, model label,
variant label, metric with ``n`` seeds, ``mean``, ``std`` as fractions). Every number printed
is a percentage (``100 * mean``); ours as ``mean ± std`` (sample std over seeds; the mean
alone for a single seed), with one decimal in Table 2 and two elsewhere, like the paper.

Layout rules:

* Rows: the paper's rows in the paper's order, then extra variants of a paper model right
  after that model's rows, then extra models (sorted) -- so any model/variant label works.
  Table 2 takes every QA run whose (model, variant) is not a row of Table 5 or 6; Tables 5
  and 6 add to their paper rows only other models' runs of their own variants. Paper-only
  baselines (QA-GNN, GreaseLM, DRAGON, GPT-4; ChatGPT) close Tables 2 and 4 with "–" in our
  columns.
* Columns: per ``(benchmark, metric)`` our number and, beside it, the paper's number as
  printed (``–`` where the paper has no such row or column); the paper's benchmarks first,
  then extra benchmarks present in the results (sorted).
* A cell of a job not run is ``–``; nothing is filled in. A table without any of our results
  still renders (paper numbers, ``–`` for ours) and says "no results yet" in its note.
* Tables 2-4 underline, within each model's rows of a section, the best of our numbers per
  column (compared as printed, ties all underlined; only where at least two rows have one),
  as the paper does for base LM vs + BALI. Tables 5 and 6 underline nothing (as in the paper).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, replace

import polars as pl

from bali.report import paper
from bali.report.paper import Published

MODEL_NAMES = {
    "pubmedbert": "PubMedBERT", "biolinkbert-base": "BioLinkBERT-base",
    "biolinkbert-large": "BioLinkBERT-large", "sapbert": "SapBERT", "gebert": "GEBERT",
}
VARIANT_NAMES = {
    "base": "original LM", "gat": "+ BALI (GAT)", "linear": "+ BALI (linear graph)",
    "sage": "+ BALI (GraphSAGE)", "distmult": "+ BALI (LM + DistMult)",
    "transe": "+ BALI (LM + TransE)", "textual": "+ BALI (textual nodes)",
    "no-mlm": "BALI − MLM loss", "no-align": "BALI − align loss",
    "ms": "BALI − align + MS-align loss", "cls": "BALI − align + classification",
    "pool-weighted": "BALI, weighted aggregation", "pool-gat": "BALI, GAT aggregation",
    "pool-transformer": "BALI, transformer aggregation", "layers-3": "BALI, L = 3",
    "layers-7": "BALI, L = 7",
}
BENCHMARK_NAMES = {
    "pubmedqa": "PubMedQA", "medqa": "MedQA", "bioasq": "BioASQ", "ncbi": "NCBI",
    "bc5cdr-disease": "BC5CDR-D", "bc5cdr-chemical": "BC5CDR-C", "bc2gn": "BC2GN",
    "smm4h": "SMM4H", "chemprot": "ChemProt", "ddi": "DDI", "gad": "GAD",
}
METRIC_SUB = {"acc@1": "@1", "acc@5": "@5"}
MISSING = "–"


@dataclass(frozen=True)
class Spec:
    """How one paper table is built: its tasks (with the section each task's rows go to),
    the metrics of extra benchmark columns, decimals, whether extras and underlines apply."""

    number: int
    caption: str
    tasks: dict[str, str]
    metrics: tuple[str, ...]
    decimals: int
    extra_rows: bool
    underline: bool


SPECS = {
    2: Spec(2, "Question answering accuracy (%). Ours: mean ± std over seeds; paper: mean ± "
            "std over 10 runs (MedQA: mean only).", {"qa": ""}, ("accuracy",), 1, True, True),
    3: Spec(3, "Entity linking Acc@1 / Acc@5 (%), zero-shot and supervised; BALI = GAT graph "
            "encoder.", {"el_zeroshot": "Zero-shot evaluation",
                         "el_supervised": "Supervised evaluation"},
            ("acc@1", "acc@5"), 2, True, True),
    4: Spec(4, "Relation extraction micro-F1 (%); BALI = GAT graph encoder.", {"re": ""},
            ("micro_f1",), 2, True, True),
    5: Spec(5, "Node representations: PubMedBERT + BALI, QA accuracy (%); paper: mean over "
            "10 runs.", {"qa": ""}, ("accuracy",), 2, False, False),
    6: Spec(6, "Ablations: PubMedBERT + BALI with GAT encoder, QA accuracy (%); paper: mean "
            "over 10 runs.", {"qa": ""}, ("accuracy",), 2, False, False),
}


@dataclass(frozen=True)
class Column:
    """One ``(benchmark, metric)`` of a table; ``group`` / ``sub`` are its header parts."""

    benchmark: str
    metric: str
    group: str
    sub: str


@dataclass(frozen=True)
class Cell:
    """Ours in percent (``mean`` None: not run), seeds ``n``, the paper's value, ``best``:
    underlined as the best of the model's rows."""

    mean: float | None
    std: float | None
    n: int
    paper: Published | None
    best: bool = False


@dataclass(frozen=True)
class Row:
    """A table row: ``model``/``variant`` labels (a baseline's name and "" when paper-only)."""

    section: str
    model: str
    variant: str
    cells: tuple[Cell, ...]
    paper_only: bool = False


@dataclass(frozen=True)
class Table:
    number: int
    caption: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    decimals: int

    @property
    def seeds(self) -> list[int]:
        """Seed counts of our filled cells."""
        return [c.n for r in self.rows for c in r.cells if c.mean is not None]

    @property
    def note(self) -> str:
        """One line under the table: how many seeds, or that there are no results yet."""
        n = self.seeds
        if not n:
            return "No results yet: our columns are empty (–); the paper's numbers are shown."
        span = str(min(n)) if min(n) == max(n) else f"{min(n)}–{max(n)}"
        return (f"Ours: {len(n)} cells, mean ± sample std over n = {span} seeds per cell "
                "(mean alone for one seed); – = not run / not in the paper.")


def model_name(model: str) -> str:
    return MODEL_NAMES.get(model, model)


def variant_name(variant: str) -> str:
    return VARIANT_NAMES.get(variant, variant or "(no variant label)")


def known_first(values: Iterable[str], known: Iterable[str]) -> list[str]:
    """The ``known`` names present in ``values`` in their order, then the others sorted."""
    values, known = set(values), list(known)
    return [v for v in known if v in values] + sorted(values - set(known))


def _lookup(agg: pl.DataFrame) -> dict[tuple[str, str, str, str, str], tuple[float, float, int]]:
    return {(r["task"], r["benchmark"], r["model"], r["variant"], r["metric"]):
            (100 * r["mean"], 100 * r["std"], r["n"]) for r in agg.iter_rows(named=True)}


def _rows_of(spec: Spec, agg: pl.DataFrame) -> list[tuple[str, str, str, str]]:
    """``(task, section, model, variant)`` in display order (module docstring)."""
    claimed = {(r.model, r.variant) for t in (5, 6) for r in paper.ROWS[t]}
    out = []
    for task, section in spec.tasks.items():
        prows = [r for r in paper.ROWS[spec.number]
                 if spec.number != 3 or r.section == section]
        runs = set(agg.filter(pl.col("task") == task).select("model", "variant").iter_rows())
        extra = runs - {(r.model, r.variant) for r in prows}
        if spec.number == 2:
            extra -= claimed
        if not spec.extra_rows:  # Tables 5/6: other models' runs of this table's variants
            extra = {(m, v) for m, v in extra if v in {r.variant for r in prows}
                     and m not in {r.model for r in prows}}
        models = list(dict.fromkeys(r.model for r in prows))
        variants = list(VARIANT_NAMES)
        for model in models:
            mine = [r for r in prows if r.model == model]
            out += [(task, r.section if spec.number != 3 else section, model, r.variant)
                    for r in mine]
            more = {v for m, v in extra if m == model}
            out += [(task, mine[0].section, model, v) for v in known_first(more, variants)]
        for model in sorted({m for m, _ in extra} - set(models)):
            more = {v for m, v in extra if m == model}
            out += [(task, section, model, v) for v in known_first(more, variants)]
    return out


def _columns(spec: Spec, agg: pl.DataFrame, rows: list[tuple[str, str, str, str]]
             ) -> list[Column]:
    pairs = {(m, v) for _, _, m, v in rows}
    present = {b for t, b, m, v in agg.select("task", "benchmark", "model", "variant")
               .iter_rows() if t in spec.tasks and (m, v) in pairs}
    known = list(dict.fromkeys(b for b, _ in paper.COLUMNS[spec.number]))
    cols = list(paper.COLUMNS[spec.number])
    cols += [(b, m) for b in sorted(present - set(known)) for m in spec.metrics]
    return [Column(b, m, BENCHMARK_NAMES.get(b, b), METRIC_SUB.get(m, "") if
                   len(spec.metrics) > 1 else "") for b, m in cols]


def _underline(rows: list[Row], decimals: int) -> list[Row]:
    """Mark per (section, model) group and column the best of our numbers as printed."""
    best: dict[tuple[str, str, int], float] = {}
    count: dict[tuple[str, str, int], int] = {}
    for r in rows:
        for j, c in enumerate(r.cells):
            if c.mean is not None and not r.paper_only:
                key = (r.section, r.model, j)
                best[key] = max(best.get(key, -1e300), round(c.mean, decimals))
                count[key] = count.get(key, 0) + 1
    out = []
    for r in rows:
        cells = tuple(
            Cell(c.mean, c.std, c.n, c.paper,
                 c.mean is not None and not r.paper_only and count[(r.section, r.model, j)] > 1
                 and round(c.mean, decimals) == best[(r.section, r.model, j)])
            for j, c in enumerate(r.cells))
        out.append(Row(r.section, r.model, r.variant, cells, r.paper_only))
    return out


def build_table(number: int, agg: pl.DataFrame) -> Table:
    """Table ``number`` (2-6) from the aggregate frame (module docstring for the rules)."""
    spec = SPECS[number]
    found = _lookup(agg)
    keys = _rows_of(spec, agg)
    columns = _columns(spec, agg, keys)
    rows = []
    for task, section, model, variant in keys:
        cells = []
        for col in columns:
            ours = found.get((task, col.benchmark, model, variant, col.metric))
            pub = paper.VALUES[number].get((task, col.benchmark, model, variant, col.metric))
            cells.append(Cell(*ours, pub) if ours else Cell(None, None, 0, pub))
        rows.append(Row(section, model, variant, tuple(cells)))
    for base in paper.BASELINES.get(number, []):
        cells = tuple(Cell(None, None, 0, base.values.get((c.benchmark, c.metric)))
                      for c in columns)
        rows.append(Row(base.section, base.name, "", cells, paper_only=True))
    if spec.underline:
        rows = _underline(rows, spec.decimals)
    return Table(number, spec.caption, tuple(columns), tuple(rows), spec.decimals)


def ours_only(table: Table) -> Table | None:
    """The columns and rows of ``table`` that hold a result of ours (each with the paper's
    number beside it), or None when there is none."""
    keep = [j for j in range(len(table.columns))
            if any(r.cells[j].mean is not None for r in table.rows)]
    rows = tuple(replace(r, cells=tuple(r.cells[j] for j in keep)) for r in table.rows
                 if any(r.cells[j].mean is not None for j in keep))
    if not rows:
        return None
    return replace(table, columns=tuple(table.columns[j] for j in keep), rows=rows)


def build_tables(agg: pl.DataFrame) -> dict[int, Table]:
    """Tables 2-6."""
    return {n: build_table(n, agg) for n in SPECS}


# ---------------------------------------------------------------- rendering

def format_ours(cell: Cell, decimals: int, pm: str = "±") -> str:
    """``"65.2 ± 1.2"`` (``n > 1``), ``"65.2"`` (one seed), ``"–"`` (not run)."""
    if cell.mean is None:
        return MISSING
    text = f"{cell.mean:.{decimals}f}"
    return f"{text} {pm} {cell.std:.{decimals}f}" if cell.n > 1 else text


def _header(col: Column) -> str:
    return f"{col.group} {col.sub}".strip()


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _row_label(row: Row) -> tuple[str, str]:
    if row.paper_only:
        return row.model, "(paper only)"
    return model_name(row.model), variant_name(row.variant)


def to_markdown(table: Table) -> str:
    """GitHub Markdown: Model | Variant | per column ours and "(paper)"; section rows in
    italics; best-of-pair as ``<u>..</u>``; the note as a last paragraph."""
    heads = ["Model", "Variant"] + [h for c in table.columns
                                    for h in (_header(c), f"{_header(c)} (paper)")]
    lines = ["| " + " | ".join(_md_escape(h) for h in heads) + " |",
             "|" + "|".join([":---", ":---"] + ["---:"] * (len(heads) - 2)) + "|"]
    section = ""
    for row in table.rows:
        if row.section != section and row.section:
            lines.append(f"| *{_md_escape(row.section)}* |" + " |" * (len(heads) - 1))
        section = row.section
        cells = list(_row_label(row))
        for c in row.cells:
            ours = format_ours(c, table.decimals)
            cells += [f"<u>{ours}</u>" if c.best else ours, c.paper.text if c.paper else MISSING]
        lines.append("| " + " | ".join(_md_escape(x) for x in cells) + " |")
    return "\n".join(lines) + "\n\n" + table.note + "\n"


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
          "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
          "^": r"\textasciicircum{}", "±": r"$\pm$", "–": "--", "—": "---", "−": "$-$"}


def latex_escape(text: str) -> str:
    """Escape LaTeX specials; ``±`` -> ``$\\pm$``, en/em dash -> ``--``/``---``."""
    return "".join(_LATEX.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    """A booktabs ``table`` (``\\toprule``/``\\midrule``/``\\bottomrule``): a header row of
    benchmarks over "ours"/"paper" sub-columns; best-of-pair as ``\\underline{..}``.
    Needs ``\\usepackage{booktabs}`` (and ``graphicx`` for tables wider than 8 columns)."""
    ncol = 2 + 2 * len(table.columns)
    groups: list[tuple[str, int]] = []
    for col in table.columns:
        if groups and groups[-1][0] == col.group:
            groups[-1] = (col.group, groups[-1][1] + 2)
        else:
            groups.append((col.group, 2))
    top, rules, start = [" ", " "], [], 3
    for name, span in groups:
        top.append(rf"\multicolumn{{{span}}}{{c}}{{{latex_escape(name)}}}")
        rules.append(rf"\cmidrule(lr){{{start}-{start + span - 1}}}")
        start += span
    sub = ["Model", "Variant"] + [latex_escape(f"{c.sub} {w}".strip())
                                  for c in table.columns for w in ("ours", "paper")]
    wide = len(table.columns) > 3
    lines = [f"% Table {table.number} -- written by `bali report`; needs \\usepackage{{booktabs}}"
             + (" and {graphicx}" if wide else ""),
             r"\begin{table}[t]", r"\centering",
             rf"\caption{{{latex_escape(table.caption)}}}",
             rf"\label{{tab:bali-table{table.number}}}"]
    if wide:
        lines.append(r"\resizebox{\linewidth}{!}{%")
    lines += [rf"\begin{{tabular}}{{ll{'r' * (ncol - 2)}}}", r"\toprule",
              " & ".join(top) + r" \\", " ".join(rules), " & ".join(sub) + r" \\", r"\midrule"]
    section = ""
    for row in table.rows:
        if row.section != section and row.section:
            if section or row is not table.rows[0]:
                lines.append(r"\midrule")
            lines.append(rf"\multicolumn{{{ncol}}}{{l}}{{\textit{{{latex_escape(row.section)}}}}}"
                         r" \\")
        section = row.section
        cells = [latex_escape(x) for x in _row_label(row)]
        for c in row.cells:
            ours = latex_escape(format_ours(c, table.decimals))
            cells += [rf"\underline{{{ours}}}" if c.best else ours,
                      latex_escape(c.paper.text if c.paper else MISSING)]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}" + ("}" if wide else ""),
              rf"\par\smallskip{{\footnotesize {latex_escape(table.note)}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


CSV_SCHEMA = {
    "table": pl.Int64, "section": pl.String, "model": pl.String, "variant": pl.String,
    "paper_only": pl.Boolean, "benchmark": pl.String, "metric": pl.String,
    "ours_mean": pl.Float64, "ours_std": pl.Float64, "n_seeds": pl.Int64,
    "paper_mean": pl.Float64, "paper_std": pl.Float64, "paper_text": pl.String,
    "best_of_pair": pl.Boolean,
}
"""One CSV line per (row, column) cell, in table order; numbers in percent, empty = none."""


def to_frame(table: Table) -> pl.DataFrame:
    """The table in long form (:data:`CSV_SCHEMA`), unrounded."""
    rows = [
        {"table": table.number, "section": r.section, "model": r.model, "variant": r.variant,
         "paper_only": r.paper_only, "benchmark": col.benchmark, "metric": col.metric,
         "ours_mean": c.mean, "ours_std": c.std if c.mean is not None else None,
         "n_seeds": c.n, "paper_mean": c.paper.mean if c.paper else None,
         "paper_std": c.paper.std if c.paper else None,
         "paper_text": c.paper.text if c.paper else None, "best_of_pair": c.best}
        for r in table.rows for col, c in zip(table.columns, r.cells, strict=True)
    ]
    return pl.DataFrame(rows, schema=CSV_SCHEMA)


def to_csv(table: Table) -> str:
    """:func:`to_frame` as CSV text (UTF-8, header line)."""
    buf = io.StringIO()
    to_frame(table).write_csv(buf)
    return buf.getvalue()
