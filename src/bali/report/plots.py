"""Report plots as PNG bytes (matplotlib Agg, no pyplot state): pretraining curves of several
runs, entity-linking accuracy bars, per-seed score distributions.

Scores are percentages (``100 * value``). Each function returns the PNG file content, or None
where there is nothing to draw; the caller writes it (atomically).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import polars as pl

from bali.io import BaliInputError
from bali.report.tables import BENCHMARK_NAMES, known_first, model_name

VARIANT_COLORS = {"base": "#9e9e9e", "gat": "#1f77b4", "linear": "#ff7f0e"}
_CYCLE = ["#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]


def _figure(nrows: int, ncols: int, width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), dpi=110, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _variant_color(variant: str, order: list[str]) -> str:
    if variant in VARIANT_COLORS:
        return VARIANT_COLORS[variant]
    others = [v for v in order if v not in VARIANT_COLORS]
    return _CYCLE[others.index(variant) % len(_CYCLE)]


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The per-step records of a pretraining run's ``metrics.jsonl`` (see
    :mod:`bali.train.loop`); a missing file or a bad line raises BaliInputError."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise BaliInputError(path, "pretraining run has no metrics.jsonl")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise BaliInputError(path, f"not JSON: {err.msg}", lineno) from None
        if not isinstance(row, dict) or "step" not in row:
            raise BaliInputError(path, "metrics line lacks 'step'", lineno)
        rows.append(row)
    return rows


def smooth(y: np.ndarray, window: int) -> tuple[np.ndarray, int]:
    """Rolling mean ``mean(y[i-w+1..i])`` and the offset of its first value (``w - 1``), with
    ``w = min(window, len(y) // 4)`` so that short runs still show a line; ``y`` itself when
    ``w <= 1``."""
    w = min(window, len(y) // 4)
    if w <= 1:
        return y, 0
    return np.convolve(y, np.ones(w) / w, mode="valid"), w - 1


def pretraining_curves(runs: dict[str, list[dict]], window: int = 20) -> bytes | None:
    """Panels on shared step axes: total loss, MLM (solid) and alignment (dashed) losses,
    in-batch text->graph alignment accuracy, and (when a run validated) dev Acc@1 (solid) and
    dev alignment accuracy (dashed); one colour per run, raw values faint, the rolling mean
    solid, dev points marked."""
    runs = {k: v for k, v in runs.items() if v}
    if not runs:
        return None
    dev = any("dev_acc1" in r or "dev_align_acc" in r for rows in runs.values() for r in rows)
    fig, axes = _figure(1, 4 if dev else 3, 4.2, 3.4)
    panels = [(axes[0, 0], [("loss", "-")], "loss"),
              (axes[0, 1], [("mlm_loss", "-"), ("align_loss", "--")], "MLM (—) / align (--) loss"),
              (axes[0, 2], [("align_acc", "-")], "alignment accuracy")]
    if dev:
        panels.append((axes[0, 3], [("dev_acc1", "-"), ("dev_align_acc", "--")],
                       "dev Acc@1 (—) / dev align acc (--)"))
    for i, (label, rows) in enumerate(runs.items()):
        color = f"C{i % 10}"
        steps = np.array([r["step"] for r in rows], dtype=float)
        for ax, keys, _ in panels:
            for key, style in keys:
                pts = [(s, r[key]) for s, r in zip(steps, rows, strict=True) if key in r]
                if not pts:
                    continue
                x, y = (np.array(v, dtype=float) for v in zip(*pts, strict=True))
                if key.startswith("dev_"):  # sparse points: no smoothing
                    ax.plot(x, y, color=color, linestyle=style, marker="o", markersize=3,
                            label=label if style == "-" else None)
                    continue
                ys, off = smooth(y, window)
                ax.plot(x, y, color=color, alpha=0.15, linestyle=style, linewidth=0.8)
                ax.plot(x[off:], ys, color=color, linestyle=style, linewidth=1.4,
                        label=label if style == "-" else None)
    for ax, _, ylabel in panels:
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
    return _png(fig)


def el_bars(agg: pl.DataFrame, task: str) -> bytes | None:
    """Grouped bars of one EL task: a panel per (metric acc@1/acc@5, benchmark), a group per
    model, a bar per variant (base grey, BALI/GAT blue, others coloured) with the std over
    seeds as error bar."""
    df = agg.filter((pl.col("task") == task) & pl.col("metric").is_in(["acc@1", "acc@5"]))
    if df.is_empty():
        return None
    from bali.report.tables import MODEL_NAMES, VARIANT_NAMES

    benchmarks = known_first(df["benchmark"].unique().to_list(), list(BENCHMARK_NAMES))
    metrics = sorted(df["metric"].unique().to_list())
    models = known_first(df["model"].unique().to_list(), list(MODEL_NAMES))
    variants = known_first(df["variant"].unique().to_list(), list(VARIANT_NAMES))
    fig, axes = _figure(len(metrics), len(benchmarks), max(2.2, 0.9 * len(models) + 1), 3.0)
    values = {(r["metric"], r["benchmark"], r["model"], r["variant"]): r
              for r in df.iter_rows(named=True)}
    width = 0.8 / len(variants)
    for i, metric in enumerate(metrics):
        for j, bench in enumerate(benchmarks):
            ax = axes[i, j]
            for k, variant in enumerate(variants):
                xs, ys, es = [], [], []
                for m, model in enumerate(models):
                    if (r := values.get((metric, bench, model, variant))) is not None:
                        xs.append(m - 0.4 + width * (k + 0.5))
                        ys.append(100 * r["mean"])
                        es.append(100 * r["std"])
                if xs:
                    ax.bar(xs, ys, width, yerr=es, capsize=2, label=variant,
                           color=_variant_color(variant, variants))
            ax.set_xticks(range(len(models)))
            ax.set_xticklabels([model_name(m) for m in models], rotation=30, ha="right",
                               fontsize=7)
            ax.set_ylim(0, 100)
            ax.set_title(f"{BENCHMARK_NAMES.get(bench, bench)} {metric}", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("%")
    legend: dict[str, object] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="outside right upper", fontsize=8,
               title="variant")
    return _png(fig)


def seed_scores(records: list[dict]) -> pl.DataFrame:
    """Primary metric of each record in percent: task, benchmark, model, variant, metric,
    seed, value (labels as in :func:`bali.evaluate.results.aggregate`; the last record of a
    repeated run and seed wins)."""
    rows = [{"task": r["task"], "benchmark": r["benchmark"],
             "model": r.get("labels", {}).get("model", r["model"]),
             "variant": r.get("labels", {}).get("variant", ""), "metric": r["primary"],
             "seed": int(r["seed"]), "value": 100 * float(r["metrics"][r["primary"]])}
            for r in records]
    schema = {"task": pl.String, "benchmark": pl.String, "model": pl.String,
              "variant": pl.String, "metric": pl.String, "seed": pl.Int64,
              "value": pl.Float64}
    keys = ["task", "benchmark", "model", "variant", "metric", "seed"]
    return pl.DataFrame(rows, schema=schema).unique(keys, keep="last", maintain_order=True)


def seed_distributions(scores: pl.DataFrame, task: str) -> bytes | None:
    """One panel per benchmark of ``task``: a box plot per model/variant of its primary
    metric over seeds, with the single seeds as jittered points (fixed jitter seed)."""
    from bali.report.tables import MODEL_NAMES, VARIANT_NAMES

    df = scores.filter(pl.col("task") == task)
    if df.is_empty():
        return None
    benchmarks = known_first(df["benchmark"].unique().to_list(), list(BENCHMARK_NAMES))
    ncols = min(3, len(benchmarks))
    nrows = -(-len(benchmarks) // ncols)
    pairs_all = df.select("model", "variant").unique()
    fig, axes = _figure(nrows, ncols, max(3.0, 0.55 * pairs_all.height + 1.2), 3.4)
    rng = np.random.default_rng(0)
    variants = known_first(df["variant"].unique().to_list(), list(VARIANT_NAMES))
    model_rank = {m: i for i, m in enumerate(known_first(df["model"].unique().to_list(),
                                                          list(MODEL_NAMES)))}
    for ax, bench in zip(axes.flat, benchmarks, strict=False):
        sub = df.filter(pl.col("benchmark") == bench)
        pairs = sorted(set(sub.select("model", "variant").iter_rows()),
                       key=lambda p: (model_rank[p[0]], variants.index(p[1])))
        data = [sub.filter((pl.col("model") == m) & (pl.col("variant") == v))["value"]
                .to_numpy() for m, v in pairs]
        ax.boxplot(data, positions=range(len(pairs)), widths=0.5, showfliers=False)
        for k, ((_, v), ys) in enumerate(zip(pairs, data, strict=True)):
            ax.scatter(k + rng.uniform(-0.12, 0.12, len(ys)), ys, s=12, zorder=3,
                       color=_variant_color(v, variants))
        ax.set_xticks(range(len(pairs)))
        ax.set_xticklabels([f"{model_name(m)}\n{v}" for m, v in pairs], rotation=30,
                           ha="right", fontsize=7)
        metric = sub["metric"].unique().sort().to_list()
        ax.set_title(f"{BENCHMARK_NAMES.get(bench, bench)} ({', '.join(metric)}, %)",
                     fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(benchmarks):]:
        ax.set_visible(False)
    return _png(fig)
