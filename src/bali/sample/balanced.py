"""Balanced sentence sampling (paper §5: "up to 10 sentences ... iteratively for each concept").

Semantics, with ``count[c]`` = number of chosen sentences that mention concept ``c``:

1. Candidates: sentences with ``min_tokens <= words <= max_tokens`` (whitespace-separated
   words) and at least one mention of a KG node; mentions of other CUIs are removed.
2. Every candidate sentence gets a seeded random priority (a permutation of the sentences
   sorted by (doc_id, sentence_id)), and concepts are visited in a seeded random order (a
   permutation of the sorted concept ids) -- so the result depends only on the seed and the
   input's content, not its row order.
3. For each concept ``c`` in that order: while ``count[c] < k``, choose its not yet chosen
   candidate sentence of lowest priority. A chosen sentence increments ``count`` of *every*
   concept it mentions, so a concept visited after some of its sentences were chosen for
   others needs fewer, and a concept can end above ``k`` (a sentence chosen for another
   concept also mentions it after its own turn). The statistics report how many concepts
   end above ``k`` and by how much.

The greedy pass is a loop over concepts on integer arrays (CSR), ~O(chosen sentences x
concepts per sentence); everything else is polars.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from bali.io import BaliInputError, scan_table
from bali.sample.schema import CONCEPT_COUNTS, SAMPLE
from bali.text.schema import SENTENCES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SampleOptions:
    """Options of :func:`sample_sentences`."""

    k: int = field(default=10, metadata={"help": "sentences per concept (cap of the greedy)"})
    seed: int = field(default=0, metadata={"help": "seed of concept order and sentence choice"})
    min_tokens: int = field(default=5, metadata={"help": "shortest sentence, in words"})
    max_tokens: int = field(default=256, metadata={"help": "longest sentence, in words"})


def load_sentences(paths: Sequence[str | Path]) -> pl.LazyFrame:
    """Concatenate sentence shards; a doc_id present in several shards (PubMed updates)
    keeps the sentences of the last shard in ``paths`` order."""
    if not paths:
        raise BaliInputError("<sentences>", "no sentence shard given")
    frames = [scan_table(p, SENTENCES).with_columns(_shard=pl.lit(i, pl.UInt32))
              for i, p in enumerate(paths)]
    lf = pl.concat(frames)
    last = lf.group_by("doc_id").agg(pl.col("_shard").max())
    return lf.join(last, on=["doc_id", "_shard"], how="semi").drop("_shard")


def greedy_balance(
    sent_ptr: np.ndarray, sent_concepts: np.ndarray, cand_ptr: np.ndarray,
    cand_sents: np.ndarray, order: np.ndarray, k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The greedy pass on CSR arrays. Sentence ``s`` mentions
    ``sent_concepts[sent_ptr[s]:sent_ptr[s+1]]``; concept ``c``'s candidates in priority order
    are ``cand_sents[cand_ptr[c]:cand_ptr[c+1]]``. Returns (chosen mask, count per concept)."""
    sp, sc = sent_ptr.tolist(), sent_concepts.tolist()
    cp, cs = cand_ptr.tolist(), cand_sents.tolist()
    chosen = bytearray(len(sp) - 1)
    count = [0] * (len(cp) - 1)
    for c in order.tolist():
        need = k - count[c]
        if need <= 0:
            continue
        for s in cs[cp[c]:cp[c + 1]]:
            if chosen[s]:
                continue
            chosen[s] = 1
            for c2 in sc[sp[s]:sp[s + 1]]:
                count[c2] += 1
            need -= 1
            if need == 0:
                break
    return np.frombuffer(bytes(chosen), dtype=np.uint8).astype(bool), np.asarray(count)


def sample_sentences(
    sentences: pl.LazyFrame | pl.DataFrame, kg_nodes: pl.Series, opts: SampleOptions
) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """Return (sample, concept_counts, stats); see the module docstring."""
    if opts.k < 1:
        raise ValueError("k must be >= 1")
    t0 = time.perf_counter()
    words = pl.col("text").str.count_matches(r"\S+")
    base = sentences.lazy().filter(words.is_between(opts.min_tokens, opts.max_tokens))
    kg = pl.DataFrame({"cui": kg_nodes.unique()}).lazy()
    pairs_all = (
        base.select("doc_id", "sentence_id", "mentions")
        .explode("mentions").drop_nulls("mentions").unnest("mentions")
    )
    pairs, not_kg = pl.collect_all(
        [pairs_all.join(kg, on="cui", how="semi"),
         pairs_all.join(kg, on="cui", how="anti").select(pl.len())],
        engine="streaming",
    )
    cand = pairs.select("doc_id", "sentence_id").unique().sort("doc_id", "sentence_id")
    n_sent = cand.height
    if n_sent == 0:
        raise BaliInputError("<sentences>", "no sentence mentions a KG node within the length "
                             f"limits ({opts.min_tokens}-{opts.max_tokens} words)")
    rng = np.random.default_rng(opts.seed)
    cand = cand.with_columns(
        s=pl.int_range(n_sent, dtype=pl.UInt32),
        priority=pl.Series(rng.permutation(n_sent).astype(np.uint32)),
    )
    concept_ids = pairs.select("cui").unique().sort("cui")
    concept_ids = concept_ids.with_columns(c=pl.int_range(concept_ids.height, dtype=pl.UInt32))
    sc = (
        pairs.select("doc_id", "sentence_id", "cui").unique()
        .join(cand, on=["doc_id", "sentence_id"]).join(concept_ids, on="cui")
        .select("s", "c", "priority")
    )
    by_sent = sc.sort("s", "c")
    sent_ptr = _pointers(by_sent["s"].to_numpy(), n_sent)
    by_concept = sc.sort("c", "priority")
    cand_ptr = _pointers(by_concept["c"].to_numpy(), concept_ids.height)
    order = np.random.default_rng([opts.seed, 1]).permutation(concept_ids.height)
    t1 = time.perf_counter()
    chosen, count = greedy_balance(sent_ptr, by_sent["c"].to_numpy(), cand_ptr,
                                   by_concept["s"].to_numpy(), order, opts.k)
    greedy_s = time.perf_counter() - t1

    picked = cand.filter(pl.Series(chosen)).select("doc_id", "sentence_id")
    kg_mentions = (
        pairs.join(picked, on=["doc_id", "sentence_id"], how="semi")
        .sort("doc_id", "sentence_id", "start", "end", "cui")
        .group_by("doc_id", "sentence_id", maintain_order=True)
        .agg(mentions=pl.struct("start", "end", "cui"))
    )
    sample = (
        base.drop("mentions")
        .join(kg_mentions.lazy(), on=["doc_id", "sentence_id"])
        .sort("doc_id", "sentence_id")
        .select(list(SAMPLE))
        .collect(engine="streaming")
    )
    candidates = np.diff(cand_ptr)
    counts = concept_ids.select(
        "cui",
        candidates=pl.Series(candidates.astype(np.uint32)),
        sampled=pl.Series(count.astype(np.uint32)),
    ).select(list(CONCEPT_COUNTS))
    over = count[count > opts.k] - opts.k
    stats = {
        "k": opts.k, "seed": opts.seed,
        "sentences_after_length_filter": base.select(pl.len()).collect().item(),
        "candidate_sentences": n_sent,
        "concepts_with_candidates": int(concept_ids.height),
        "sampled_sentences": int(chosen.sum()),
        "concepts_at_k_or_more": int((count >= opts.k).sum()),
        "concepts_below_k": int((count < opts.k).sum()),
        "concepts_above_k": int(over.size),
        "overshoot_max": int(over.max()) if over.size else 0,
        "overshoot_mean": round(float(over.mean()), 3) if over.size else 0.0,
        "mentions_not_kg_nodes": int(not_kg.item()),
        "greedy_seconds": round(greedy_s, 2),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    log.info("sampled %d of %d candidate sentences for %d concepts (%.1fs)",
             stats["sampled_sentences"], n_sent, concept_ids.height, stats["seconds"])
    return sample, counts, stats


def _pointers(sorted_keys: np.ndarray, n: int) -> np.ndarray:
    """CSR row pointers of ``n`` rows from sorted row keys."""
    return np.searchsorted(sorted_keys, np.arange(n + 1), side="left").astype(np.int64)


def plot_histogram(counts: pl.DataFrame, k: int, path: str | Path) -> None:
    """PNG histogram of sampled sentences per concept (log-scaled count axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bali.io import atomic_paths

    values = counts["sampled"].to_numpy()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    top = int(values.max()) if values.size else k
    if top <= 4 * k:  # one bar per count
        ax.hist(values, bins=np.arange(0, top + 2) - 0.5, color="#4477aa")
    else:  # a long tail: log-spaced bins on a log axis
        ax.hist(values, bins=np.unique(np.geomspace(1, top + 1, 60).astype(int)),
                color="#4477aa")
        ax.set_xscale("log")
    ax.axvline(k + 0.5, color="#cc3311", linestyle="--", label=f"k = {k}")
    ax.set(xlabel="sampled sentences per concept", ylabel="concepts", yscale="log",
           title=f"{len(values):,} concepts, {int((values > k).sum()):,} above k")
    ax.legend(loc="upper right")
    fig.tight_layout()
    with atomic_paths(path) as (tmp,):
        fig.savefig(tmp, format="png")
    plt.close(fig)
