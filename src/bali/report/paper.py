"""The published numbers of the BALI paper (SIGIR 2025), Tables 2-6, as data.

Transcribed from the paper text (``/work/shared/paper/bali-sigir2025.txt``) into the blocks
below and parsed at import. Values are percentages as printed; :class:`Published` keeps the
printed text (``"74 ± 3.4"``) next to the numbers. Our numbers are keyed the same way as
results records: ``(task, benchmark, model label, variant label, metric)``.

The paper's rows that are not ours (QA-GNN, GreaseLM, DRAGON, GPT-4 in Table 2; ChatGPT in
Table 4) are kept in :data:`BASELINES` and shown as paper-only rows at the bottom of their
tables. The paper's column "BC2GM" of Table 3 is the BioCreative II gene normalisation corpus
(``bc2gn``, as its text says).
"""

from __future__ import annotations

from dataclasses import dataclass

Key = tuple[str, str, str, str, str]
"""``(task, benchmark, model, variant, metric)``"""


@dataclass(frozen=True)
class Published:
    """A published cell: ``mean`` (and ``std`` where printed) in percent, ``text`` as printed."""

    mean: float
    std: float | None
    text: str


@dataclass(frozen=True)
class PaperRow:
    """A row of a paper table that we reproduce: its section and labels, in the paper's order."""

    section: str
    model: str
    variant: str


@dataclass(frozen=True)
class Baseline:
    """A paper-only row (a method we do not run): ``values`` by ``(benchmark, metric)``."""

    section: str
    name: str
    values: dict[tuple[str, str], Published]


def parse_value(text: str) -> Published | None:
    """``"65.2±1.2"`` -> Published(65.2, 1.2, "65.2 ± 1.2"); ``"38.1"`` -> std None;
    ``"—"`` (not reported) -> None."""
    text = text.strip()
    if text in ("—", "–", "-", ""):
        return None
    mean, _, std = text.partition("±")
    printed = f"{mean.strip()} ± {std.strip()}" if std.strip() else mean.strip()
    return Published(float(mean), float(std) if std.strip() else None, printed)


def _parse(block: str, task: str, columns: list[tuple[str, str]], sections: dict[str, str]
           ) -> tuple[list[PaperRow], dict[Key, Published]]:
    """Lines ``model variant | v1 v2 ...`` (values without spaces, ``mean±std``) under
    ``# section`` headers -> rows and values."""
    rows, values, section = [], {}, ""
    for line in block.strip().splitlines():
        if line.startswith("#"):
            section = sections[line[1:].strip()]
            continue
        head, _, rest = line.partition("|")
        model, variant = head.split()
        cells = rest.split()
        if len(cells) != len(columns):
            raise ValueError(f"paper transcription: {line!r} has {len(cells)} cells")
        rows.append(PaperRow(section, model, variant))
        for (benchmark, metric), cell in zip(columns, cells, strict=True):
            if (value := parse_value(cell)) is not None:
                values[(task, benchmark, model, variant, metric)] = value
    return rows, values


# Table 2: QA accuracy, mean ± std over 10 runs (MedQA: mean only).
_T2_COLUMNS = [("pubmedqa", "accuracy"), ("medqa", "accuracy"), ("bioasq", "accuracy")]
_T2 = """
# qa
pubmedbert base          | 63.1±2.9  38.1      67.8±4.1
pubmedbert gat           | 65.2±1.2  39.8      74±3.4
pubmedbert linear        | 65.0±1.6  38.8      72.2±4.4
biolinkbert-base base    | 63.3±3.6  40.0      65.9±2.7
biolinkbert-base gat     | 64.4±2.1  43.1      73.6±3.6
biolinkbert-base linear  | 63.9±4.4  40.5      65.7±3.6
biolinkbert-large base   | 69.5±2.4  44.6      67.7±3.7
biolinkbert-large gat    | 68.7±5.2  45.0      67.9±4.5
biolinkbert-large linear | 70.9±1.7  45.5      66.0±6.1
"""
_T2_BASELINES = """
QA-GNN [85]   | 72.1  45.0  —
GreaseLM [88] | 72.4  45.1  —
DRAGON [83]   | 73.4  47.5  —
GPT-4 [50]    | 80.4  86.1  95.4
"""

# Table 3: entity linking Acc@1 / Acc@5, zero-shot and supervised (BALI = GAT encoder).
EL_BENCHMARKS = ["ncbi", "bc5cdr-disease", "bc5cdr-chemical", "bc2gn", "smm4h"]
_T3_COLUMNS = [(b, m) for b in EL_BENCHMARKS for m in ("acc@1", "acc@5")]
_T3_ZEROSHOT = """
# el
pubmedbert base        | 49.51  65.69  58.75  75.04  76.24  80.24  68.12  74.11  16.13  25.27
pubmedbert gat         | 68.14  79.90  72.30  81.28  85.65  89.65  83.25  89.44  24.91  36.82
biolinkbert-base base  | 35.78  44.12  45.81  54.64  70.59  73.41  58.17  61.52  8.30   10.83
biolinkbert-base gat   | 68.63  78.92  73.82  82.65  86.59  90.82  82.64  89.24  27.92  43.08
biolinkbert-large base | 32.35  42.65  44.29  50.99  70.12  73.18  57.66  62.13  8.54   12.27
biolinkbert-large gat  | 70.1   78.92  73.21  80.67  85.65  90.12  82.44  89.04  22.98  34.78
sapbert base           | 71.57  84.31  73.67  84.32  85.88  91.29  87.61  92.18  39.59  58.84
sapbert gat            | 71.57  81.86  74.28  82.50  86.35  90.35  85.89  91.37  28.04  42.00
gebert base            | 70.59  83.33  74.58  85.39  85.41  91.76  87.21  92.79  38.27  62.33
gebert gat             | 73.04  81.86  73.52  82.50  86.59  92.0   85.48  91.57  28.04  46.21
"""
_T3_SUPERVISED = """
# el
pubmedbert base        | 72.06  84.31  74.73  83.71  86.12  92.00  87.92  92.39  66.19  79.90
pubmedbert gat         | 74.02  82.35  74.73  81.74  87.76  92.94  88.32  91.88  68.71  79.66
biolinkbert-base base  | 56.86  70.59  74.58  85.39  87.29  92.94  88.32  92.39  65.94  77.74
biolinkbert-base gat   | 75.00  84.31  75.49  83.26  88.94  92.71  88.32  92.89  67.27  78.34
biolinkbert-large base | 57.35  70.10  65.91  77.32  79.53  86.82  76.95  88.43  38.99  64.02
biolinkbert-large gat  | 74.51  82.35  74.28  82.34  87.53  93.88  88.73  92.79  66.06  79.06
sapbert base           | 75.00  85.78  74.58  84.47  86.59  93.18  89.24  93.71  66.79  80.51
sapbert gat            | 74.51  83.82  74.73  82.80  88.24  93.18  88.12  92.79  69.19  78.94
gebert base            | 73.04  84.80  75.80  85.39  87.06  92.71  88.83  93.71  65.70  80.63
gebert gat             | 74.02  83.33  75.49  83.87  89.41  93.65  88.22  93.50  67.51  80.75
"""

# Table 4: relation extraction micro-F1 (BioLinkBERT-large not reported by the paper).
_T4_COLUMNS = [("chemprot", "micro_f1"), ("ddi", "micro_f1"), ("gad", "micro_f1")]
_T4 = """
# re
pubmedbert base       | 76.57  79.02  83.36
pubmedbert gat        | 76.91  81.17  83.68
biolinkbert-base base | 76.97  79.79  81.97
biolinkbert-base gat  | 77.52  79.69  82.71
sapbert base          | 76.74  80.09  80.94
sapbert gat           | 76.47  80.56  82.12
gebert base           | 75.31  80.01  80.73
gebert gat            | 77.32  80.95  83.33
"""
_T4_BASELINES = """
ChatGPT [10] | 34.16  51.62  52.43
"""

# Table 5: node representations, PubMedBERT, mean accuracy over 10 runs.
_T56_COLUMNS = [("pubmedqa", "accuracy"), ("bioasq", "accuracy")]
_T5 = """
# double
pubmedbert gat      | 65.2   74
pubmedbert sage     | 58.8   70
# single
pubmedbert linear   | 65.0   72.2
pubmedbert distmult | 65.44  69.77
pubmedbert transe   | 64.22  70.47
pubmedbert textual  | 58.86  71.40
"""

# Table 6: ablations, PubMedBERT + GAT encoder, mean accuracy over 10 runs.
_T6 = """
# reference
pubmedbert base             | 63.1   67.8
pubmedbert gat              | 65.2   74
# objective
pubmedbert no-mlm           | 60.54  64.53
pubmedbert no-align         | 63.78  70.58
pubmedbert ms               | 62.60  72.44
pubmedbert cls              | 63.52  72.56
# aggregation
pubmedbert pool-weighted    | 63.20  70.58
pubmedbert pool-gat         | 64.50  70.58
pubmedbert pool-transformer | 63.06  71.40
# layers
pubmedbert layers-3         | 64.72  71.51
pubmedbert layers-7         | 62.62  69.07
"""

SECTIONS = {
    "qa": "", "re": "", "el": "",
    "double": "Double encoder set-ups", "single": "Single LM encoder set-ups",
    "reference": "", "objective": "Training objective",
    "aggregation": "Token-entity aggregation", "layers": "# Graph encoder layers",
}


def _baselines(block: str, columns: list[tuple[str, str]], section: str) -> list[Baseline]:
    out = []
    for line in block.strip().splitlines():
        name, _, rest = line.partition("|")
        name, cells = name.strip(), rest.split()
        values = {col: v for col, cell in zip(columns, cells, strict=True)
                  if (v := parse_value(cell)) is not None}
        out.append(Baseline(section, name, values))
    return out


def _table3() -> tuple[list[PaperRow], dict[Key, Published]]:
    rows, values = [], {}
    for task, block, section in (("el_zeroshot", _T3_ZEROSHOT, "Zero-shot evaluation"),
                                 ("el_supervised", _T3_SUPERVISED, "Supervised evaluation")):
        r, v = _parse(block, task, _T3_COLUMNS, {"el": section})
        rows += r
        values.update(v)
    return rows, values


ROWS: dict[int, list[PaperRow]] = {}
"""Paper rows per table number, in the paper's order."""
VALUES: dict[int, dict[Key, Published]] = {}
"""Published values per table number (Tables 2, 5 and 6 repeat some cells, e.g. PubMedBERT
+ BALI on PubMedQA, each as printed in that table)."""
COLUMNS: dict[int, list[tuple[str, str]]] = {
    2: _T2_COLUMNS, 3: _T3_COLUMNS, 4: _T4_COLUMNS, 5: _T56_COLUMNS, 6: _T56_COLUMNS}
"""The paper's ``(benchmark, metric)`` columns per table, in order."""
ROWS[2], VALUES[2] = _parse(_T2, "qa", _T2_COLUMNS, SECTIONS)
ROWS[3], VALUES[3] = _table3()
ROWS[4], VALUES[4] = _parse(_T4, "re", _T4_COLUMNS, SECTIONS)
ROWS[5], VALUES[5] = _parse(_T5, "qa", _T56_COLUMNS, SECTIONS)
ROWS[6], VALUES[6] = _parse(_T6, "qa", _T56_COLUMNS, SECTIONS)

BASELINES: dict[int, list[Baseline]] = {
    2: _baselines(_T2_BASELINES, _T2_COLUMNS, "Paper-only baselines (not run here)"),
    4: _baselines(_T4_BASELINES, _T4_COLUMNS, "Paper-only baselines (not run here)"),
}

PUBLISHED: dict[Key, Published] = {k: v for t in (6, 5, 4, 3, 2) for k, v in VALUES[t].items()}
"""All published cells; where tables repeat a cell, Table 2's (with std) wins."""


def published(task: str, benchmark: str, model: str, variant: str, metric: str
              ) -> Published | None:
    """The paper's number for one cell, or None where the paper has no such row/column."""
    return PUBLISHED.get((task, benchmark, model, variant, metric))
