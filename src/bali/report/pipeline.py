"""The pipeline summary of a run: one row per stage with its key counts and wall time.

Every number is read from the stage's own files under the results directory::

    kg/stats.json                     concepts, names, edges, xrefs (its ``counts``)
    text/<shard>/annotate.json        documents, mentions mapped / unmapped (summed over shards)
    text/<shard>/sentences.json       sentences
    sample/sample_stats.json          candidate and sampled sentences, concepts sampled
    sample/subgraph_stats.json        subgraph centres and nodes
    shards/<model>/meta.json          shard sentences, tokens, names
    pretrain/<model>/<variant>/metrics.jsonl  steps, samples/s, final losses
                                      (:func:`final_losses`), best dev Acc@1
    eval/**/*.json                    evaluation runs

and the wall time from Snakemake's ``benchmark:`` files (``<logs>/benchmarks/<rule>/…tsv``,
column ``s``, summed over a rule's jobs), falling back to a stage's own ``seconds``. A stage
without files is left out.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _wall(logs: Path | None, *rules: str) -> float | None:
    """Seconds (column ``s``) summed over the benchmark files of ``rules``: a directory
    ``<logs>/benchmarks/<rule>/`` (every ``*.tsv`` below) or a file ``<rule>.tsv``."""
    if logs is None:
        return None
    total, found = 0.0, False
    for rule in rules:
        base = logs / "benchmarks" / rule
        files = sorted(base.glob("**/*.tsv")) if base.is_dir() else [
            f for f in [base.with_name(base.name + ".tsv")] if f.exists()]
        for tsv in files:
            with open(tsv, newline="") as f:
                for row in csv.DictReader(f, delimiter="\t"):
                    total, found = total + float(row["s"]), True
    return total if found else None


def _row(stage: str, counts: dict, seconds: float | None) -> dict:
    return {"stage": stage, "counts": counts, "seconds": seconds}


def summary_rows(results: Path, logs: Path | None = None) -> list[dict]:
    """``[{stage, counts: {name: value}, seconds}]`` in pipeline order (module docstring)."""
    rows = []
    if (kg := results / "kg" / "stats.json").exists():
        s = _json(kg)
        c = s.get("counts", s)
        rows.append(_row("KG", {k: c[k] for k in ("concepts", "names", "edges", "xrefs")
                                if k in c}, _wall(logs, "build_kg") or s.get("seconds")))
    annotate = sorted(results.glob("text/*/annotate.json"))
    if annotate:
        docs = mapped = unmapped = 0
        for path in annotate:
            s = _json(path)
            docs += s.get("documents", 0)
            mapped += s.get("normalization", {}).get("mapped", 0)
            unmapped += s.get("normalization", {}).get("unmapped", 0)
        sentences = sum(_json(p).get("sentences", 0)
                        for p in sorted(results.glob("text/*/sentences.json")))
        rows.append(_row("text", {"shards": len(annotate), "documents": docs,
                                  "mentions mapped": mapped, "unmapped": unmapped,
                                  "sentences": sentences},
                         _wall(logs, "read_corpus", "annotate", "split_sentences")))
    if (sample := results / "sample" / "sample_stats.json").exists():
        s = _json(sample)
        rows.append(_row("sample", {"candidate sentences": s.get("candidate_sentences"),
                                    "sampled sentences": s.get("sampled_sentences"),
                                    "concepts": s.get("concepts_with_candidates"),
                                    "k": s.get("k")},
                         _wall(logs, "sample_shard", "sample_sentences") or s.get("seconds")))
    if (sub := results / "sample" / "subgraph_stats.json").exists():
        s = _json(sub)
        rows.append(_row("subgraphs", {"centres": s.get("centres"), "nodes": s.get("nodes")},
                         _wall(logs, "build_subgraphs") or s.get("seconds")))
    for meta in sorted(results.glob("shards/*/meta.json")):
        c = _json(meta)["counts"]
        rows.append(_row(f"tokenize ({meta.parent.name})",
                         {k: c[k] for k in ("sentences", "tokens", "names", "nodes")},
                         _wall(logs, f"tokenize/{meta.parent.name}")))
    for metrics in sorted(results.glob("pretrain/*/*/metrics.jsonl")):
        rows.append(_pretrain_row(metrics, logs))
    evals = sorted(results.glob("eval/**/*.json"))
    if evals:
        seconds = sum(_json(p).get("seconds", 0) or 0 for p in evals)
        rows.append(_row("evaluate", {"runs": len(evals)},
                         _wall(logs, "evaluate") or seconds))
    return rows


def _pretrain_row(metrics: Path, logs: Path | None) -> dict:
    from bali.report.plots import read_metrics

    lines = read_metrics(metrics.parent)
    train = [r for r in lines if "loss" in r]
    last = train[-1] if train else {}
    speed = [r["samples_per_s"] for r in train if "samples_per_s" in r]
    dev = [r for r in lines if "dev_acc1" in r]
    counts = {"steps": last.get("step"),
              "samples/s": round(sum(speed) / len(speed), 1) if speed else None,
              **_loss_counts(final_losses(train))}
    if dev:
        best = max(dev[1:] or dev, key=lambda r: r["dev_acc1"])
        counts |= {"dev Acc@1 base": round(100 * dev[0]["dev_acc1"], 2),
                   f"best (step {best['step']})": round(100 * best["dev_acc1"], 2)}
    model, variant = metrics.parent.parent.name, metrics.parent.name
    wall = _wall(logs, f"pretrain/{model}/{variant}") or last.get("elapsed_s")
    return _row(f"pretrain ({model}/{variant})", counts, wall)


#: steps averaged by :func:`final_losses`
FINAL_WINDOW = 50


def final_losses(train: list[dict], window: int = FINAL_WINDOW) -> dict:
    """The run's final losses, as the pipeline summary and the report's pretraining table
    both show them: the mean over the last ``window`` training steps of the loss, the MLM
    loss (over the steps that masked a token only: a batch of all-mention sentences masks
    none and logs 0) and the alignment loss. Keys ``loss``, ``MLM``, ``align``, ``steps``
    (how many steps the means cover); a loss no step logged is None."""
    tail = [r for r in train if "loss" in r][-window:]

    def mean(key: str, keep=lambda v: True):
        vals = [r[key] for r in tail if key in r and keep(r[key])]
        return round(sum(vals) / len(vals), 4) if vals else None

    return {"loss": mean("loss"), "MLM": mean("mlm_loss", lambda v: v > 0),
            "align": mean("align_loss"), "steps": len(tail)}


def _loss_counts(final: dict) -> dict:
    return {f"loss (last {final['steps']})": final["loss"], "MLM": final["MLM"],
            "align": final["align"]}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, s = divmod(round(seconds), 60)
    return f"{minutes} min {s:02d} s" if minutes else f"{seconds:.1f} s"


def summary_markdown(rows: list[dict]) -> list[str]:
    """The summary as Markdown lines (a heading, a table; nothing when there are no rows)."""
    if not rows:
        return []
    lines = ["## Pipeline summary", "",
             "Counts and wall time of each stage, from its own stats files (the wall time "
             "from Snakemake's benchmark files where present).", "",
             "| stage | counts | wall time |", "|---|---|---:|"]
    for row in rows:
        counts = ", ".join(f"{k} {_number(v)}" for k, v in row["counts"].items()
                           if v is not None)
        lines.append(f"| {row['stage']} | {counts} | {_duration(row['seconds'])} |")
    return [*lines, ""]


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)
