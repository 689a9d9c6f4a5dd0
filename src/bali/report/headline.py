"""The report's headline: every result of this run against its base model, with the noise.

For each record of a BALI variant whose base model (variant ``base``) has a record of the same
benchmark and seed, the delta of the primary metric is ``BALI - base`` in points. Where both
records carry per-item scores of the same items (``items``: ``id`` and per-item 0/1 ``hit@1``
of :mod:`bali.evaluate.el_zeroshot`), the 95% CI of the delta is a paired bootstrap: ``B``
resamples of the items with replacement (NumPy generator seeded with 0), the 2.5th and 97.5th
percentiles of ``mean(hit_bali[s]) - mean(hit_base[s])``. With several seeds (fine-tuning:
the base and the BALI run of one seed share the head's initialisation and the data order),
the deltas are paired over seeds: their mean, sample std and the 95% t-interval of the mean,
``mean ± t(0.975, n - 1) * std / sqrt(n)``. Verdict: *better* when the CI is above 0, *worse*
when below, *identical (no signal)* when it is [0, 0], else *no detectable difference*.

Geometry records (``task == "geometry"``) get a table of their own; the constant-prediction
baselines of the classification benchmarks (:mod:`bali.report.baselines`) close the headline.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

BASE = "base"


def paired_bootstrap(a: np.ndarray, b: np.ndarray, resamples: int = 10_000,
                     seed: int = 0) -> tuple[float, float]:
    """95% CI of ``mean(b) - mean(a)`` over items resampled in pairs (module docstring)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("paired bootstrap needs two equal-length, non-empty score arrays")
    idx = np.random.default_rng(seed).integers(0, a.size, size=(resamples, a.size))
    deltas = b[idx].mean(1) - a[idx].mean(1)
    lo, hi = np.percentile(deltas, [2.5, 97.5])
    return float(lo), float(hi)


#: two-sided 95% quantiles of Student's t by degrees of freedom (1.96 beyond 30)
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def seed_ci(deltas) -> tuple[float, float]:
    """95% t-interval of the mean of paired per-seed deltas (at least 2)."""
    d = np.asarray(deltas, dtype=float)
    if d.size < 2:
        raise ValueError("a CI over seeds needs at least 2 paired seeds")
    t = T975[d.size - 2] if d.size - 1 <= len(T975) else 1.96
    half = t * float(np.std(d, ddof=1)) / np.sqrt(d.size)
    return float(d.mean() - half), float(d.mean() + half)


def verdict(lo: float, hi: float) -> str:
    """*better* / *worse* when the CI excludes 0; *identical* when it is [0, 0] (every paired
    delta is 0: e.g. both models at the majority class, so the run carries no signal)."""
    if lo == hi == 0:
        return "identical (no signal)"
    return "better" if lo > 0 else "worse" if hi < 0 else "no detectable difference"


#: the per-item score whose mean is each metric (F1 is no mean of item scores: no CI)
ITEM_SCORES = {"acc@1": "hit@1", "acc@5": "hit@5", "accuracy": "correct"}


def _items(rec: dict, metric: str) -> tuple[list, np.ndarray] | None:
    items = rec.get("items") or {}
    key = ITEM_SCORES.get(metric)
    if "id" not in items or key not in items:
        return None
    return items["id"], np.asarray(items[key], dtype=float)


def headline_rows(records: list[dict]) -> list[dict]:
    """One row per (benchmark, model, variant != base) with a base to compare to."""
    by_key: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for rec in records:
        if rec["task"] == "geometry":
            continue
        labels = rec.get("labels", {})
        bench = rec["benchmark"] + (" (supervised)" if rec["task"] == "el_supervised" else "")
        key = (bench, labels.get("model", rec["model"]))  # zero-shot and BioSyn kept apart
        by_key[key][labels.get("variant", "")].append(rec)
    rows = []
    for (bench, model), variants in sorted(by_key.items()):
        base = {r["seed"]: r for r in variants.get(BASE, [])}
        for variant, recs in sorted(variants.items()):
            if variant == BASE or not base:
                continue
            pairs = [(base[r["seed"]], r) for r in recs if r["seed"] in base]
            if not pairs:
                continue
            primary = pairs[0][1]["primary"]
            rows += [_compare(bench, model, variant, pairs, metric) for metric in
                     [primary, *(m for m in ("acc@5",) if m != primary
                                 and m in pairs[0][1]["metrics"])]]
    return rows


def _compare(bench: str, model: str, variant: str, pairs: list[tuple[dict, dict]],
             metric: str) -> dict:
    """One headline row: ``metric`` of the (base, BALI) record pairs (module docstring)."""
    deltas = [100 * (r["metrics"][metric] - b["metrics"][metric]) for b, r in pairs]
    row = {"benchmark": bench, "model": model, "variant": variant, "metric": metric,
           "seeds": len(pairs),
           "base": 100 * np.mean([b["metrics"][metric] for b, _ in pairs]),
           "bali": 100 * np.mean([r["metrics"][metric] for _, r in pairs]),
           "delta": float(np.mean(deltas)), "ci": None, "verdict": "–"}
    b_items, r_items = _items(pairs[0][0], metric), _items(pairs[0][1], metric)
    if len(pairs) == 1 and b_items and r_items and b_items[0] == r_items[0]:
        lo, hi = paired_bootstrap(b_items[1], r_items[1])
        row["ci"], row["verdict"] = (100 * lo, 100 * hi), verdict(lo, hi)
        row["items"] = len(b_items[0])
    elif len(pairs) > 1:
        row["std"] = float(np.std(deltas, ddof=1))
        row["ci_seeds"] = seed_ci(deltas)
        row["verdict"] = verdict(*row["ci_seeds"])
    return row


def headline_markdown(records: list[dict], name=lambda m, v: f"{m}/{v}") -> list[str]:
    """The headline table (and the geometry table) as Markdown lines."""
    rows = headline_rows(records)
    lines = ["## Headline: BALI against its base model", ""]
    if not rows:
        lines += ["No BALI result with a base-model result to compare to yet.", ""]
    else:
        lines += ["Points (percent). 95% CI: paired bootstrap over the test items (10,000 "
                  "resamples) for one seed; for several, the t-interval of the mean of the "
                  "deltas paired by seed (± their std in brackets).", "",
                  "| benchmark | model | metric | base | + BALI | Δ | 95% CI of Δ | verdict |",
                  "|---|---|---|---:|---:|---:|---|---|"]
        for r in rows:
            ci = (f"[{r['ci'][0]:+.2f}, {r['ci'][1]:+.2f}] ({r['items']} items)" if r["ci"]
                  else f"[{r['ci_seeds'][0]:+.2f}, {r['ci_seeds'][1]:+.2f}] (± {r['std']:.2f}, "
                  f"{r['seeds']} seeds)" if "std" in r else "–")
            lines.append(f"| {r['benchmark']} | {name(r['model'], r['variant'])} | {r['metric']} "
                         f"| {r['base']:.2f} | {r['bali']:.2f} | {r['delta']:+.2f} | {ci} | "
                         f"**{r['verdict']}** |")
        lines.append("")
    geo = [r for r in records if r["task"] == "geometry"]
    if geo:
        keys = ("alignment", "uniformity", "intra_cos", "inter_cos", "gap")
        lines += ["### Geometry of the concept-name space (Wang & Isola 2020)", "",
                  "alignment: mean squared distance of synonyms (lower: closer); uniformity: "
                  "log mean exp(-2 d²) over all pairs (lower: more spread); intra/inter: mean "
                  "cosine of synonyms / of names of different concepts; gap = intra − inter.",
                  "", "| benchmark | model | " + " | ".join(keys) + " |",
                  "|---|---|" + "---:|" * len(keys)]
        for r in sorted(geo, key=lambda r: (r["benchmark"], r["labels"].get("model", ""),
                                            r["labels"].get("variant", "") != BASE)):
            label = name(r["labels"].get("model", r["model"]), r["labels"].get("variant", ""))
            lines.append(f"| {r['benchmark']} | {label} | "
                         + " | ".join(f"{r['metrics'][k]:.4f}" for k in keys) + " |")
        lines.append("")
    from bali.report.baselines import baselines_markdown

    return lines + baselines_markdown(records, name)
