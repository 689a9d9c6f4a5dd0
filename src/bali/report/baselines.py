"""Constant-prediction (majority-class) baselines of the classification benchmarks.

A fine-tuning record (task ``qa`` or ``re``) carries the gold label of every test item it
scored (``items["gold"]``, :func:`bali.evaluate.finetune.run_finetune`). For each benchmark
the baseline predicts one label for every test item, the label that scores best on those items:
for accuracy the majority class of the test split; for the relation-extraction micro-F1 over
the positive classes, the best single label (the negative class scores 0). That is the best any
constant predictor does on this test set, so a model at or below it has learnt nothing usable
from the text. Multiple-choice records (MedQA; gold = option index) get the most frequent
correct option. Beside each baseline: every model's mean primary metric over seeds, its margin
over the baseline and how many seeds beat it.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from bali.evaluate.metrics import micro_f1

#: the negative class of each RE benchmark (as :data:`bali.evaluate.benchmarks.BENCHMARKS`)
NEGATIVE = {"chemprot": "False", "ddi": "0", "gad": "0"}


def constant_score(gold: list, metric: str, benchmark: str) -> tuple[object, float]:
    """(label, score) of the best constant prediction of ``gold`` under ``metric``."""
    if not gold:
        raise ValueError("no gold labels")
    if metric == "micro_f1":
        negative = NEGATIVE.get(benchmark)
        scores = {y: micro_f1(gold, [y] * len(gold), negative)["micro_f1"]
                  for y in sorted(set(gold), key=str)}
        label = max(scores, key=lambda y: (scores[y], str(y)))
        return label, scores[label]
    label, count = max(Counter(gold).items(), key=lambda kv: (kv[1], str(kv[0])))
    return label, count / len(gold)


def baseline_rows(records: list[dict]) -> list[dict]:
    """One row per (benchmark, model, variant) of the fine-tuning records with gold items."""
    by_bench: dict[str, list[dict]] = defaultdict(list)
    for rec in records:
        items = rec.get("items") or {}
        if rec.get("task") in ("qa", "re") and items.get("gold"):
            by_bench[rec["benchmark"]].append(rec)
    rows = []
    for bench, recs in sorted(by_bench.items()):
        metric = recs[0]["primary"]
        consts = [constant_score(list(r["items"]["gold"]), metric, bench) for r in recs]
        label, score = consts[0]
        same = all(c == consts[0] for c in consts)
        groups: dict[tuple[str, str], list[float]] = defaultdict(list)
        for rec in recs:
            labels = rec.get("labels", {})
            groups[(labels.get("model", rec["model"]), labels.get("variant", ""))].append(
                rec["metrics"][metric])
        for (model, variant), values in sorted(groups.items(), key=lambda kv: (
                kv[0][0], kv[0][1] != "base", kv[0][1])):
            rows.append({"benchmark": bench, "metric": metric, "label": label,
                         "constant": 100 * score, "items": len(recs[0]["items"]["gold"]),
                         "same_test": same, "model": model, "variant": variant,
                         "seeds": len(values), "mean": 100 * float(np.mean(values)),
                         "above": sum(v > score for v in values)})
    return rows


def baselines_markdown(records: list[dict], name=lambda m, v: f"{m}/{v}") -> list[str]:
    """The baselines table as Markdown lines (none without fine-tuning records)."""
    rows = baseline_rows(records)
    if not rows:
        return []
    lines = ["### Constant-prediction baselines (majority class)", "",
             "Points (percent) on the test items the runs scored. Accuracy: the majority class "
             "of the test split; micro-F1 (positive classes): the best single label predicted "
             "for every item (the negative class scores 0). *Margin*: a model's mean over seeds "
             "minus the baseline; *above*: seeds whose score beats it.", "",
             "| benchmark | metric | constant prediction | baseline | test items | model | "
             "mean over seeds | margin | above |", "|---|---|---|---:|---:|---|---:|---:|---|"]
    for r in rows:
        note = "" if r["same_test"] else " (test items differ by seed: first shown)"
        lines.append(f"| {r['benchmark']} | {r['metric']} | `{r['label']}`{note} | "
                     f"{r['constant']:.2f} | {r['items']} | {name(r['model'], r['variant'])} | "
                     f"{r['mean']:.2f} | {r['mean'] - r['constant']:+.2f} | "
                     f"{r['above']} of {r['seeds']} |")
    return lines + [""]
