"""Balanced sentence sampling (paper §5: "up to 10 sentences ... iteratively for each concept").

Candidates (both strategies): sentences with ``min_tokens <= words <= max_tokens``
(whitespace-separated words) and at least one mention of a KG node; mentions of other CUIs
are removed. ``count[c]`` = number of chosen sentences that mention concept ``c``.

``strategy="union"`` (the authors' sampler, Andoree/BALI-BERT
``textkb/preprocessing/subsample_balanced_data.py``): every concept independently draws
``min(k, candidates)`` of its candidate sentences uniformly at random, and the sample is the
union of all drawn sentences. The draw is seeded per concept: each (concept, sentence) pair
gets a priority from a 64-bit hash of (seed, cui, doc_id, sentence_id) and a concept draws its
``k`` lowest-priority candidates, so a concept's draw depends on the seed, its id and its own
candidates only -- not on row order, concept order or other concepts. ``count[c] >=
min(k, candidates[c])``, usually more (sentences drawn for other concepts also mention it).

``strategy="greedy"``:

1. Every candidate sentence gets a seeded random priority (a permutation of the sentences
   sorted by (doc_id, sentence_id)), and concepts are visited in a seeded random order (a
   permutation of the sorted concept ids) -- so the result depends only on the seed and the
   input's content, not its row order.
2. For each concept ``c`` in that order: while ``count[c] < k``, choose its not yet chosen
   candidate sentence of lowest priority. A chosen sentence increments ``count`` of *every*
   concept it mentions, so a concept visited after some of its sentences were chosen for
   others needs fewer, and a concept can end above ``k`` (a sentence chosen for another
   concept also mentions it after its own turn). It keeps fewer sentences than ``union``.

The statistics report the strategy, how many concepts end above ``k`` and by how much. The
greedy pass is a loop over concepts on integer arrays (CSR), ~O(chosen sentences x concepts
per sentence); the union draw is a sort of the (concept, sentence) pairs; everything else is
polars.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from bali.errors import OptionError
from bali.io import BaliInputError
from bali.progress import Progress
from bali.sample.priority import bottom_k, mix, sentence_keys, string_hash, with_priorities
from bali.sample.schema import CONCEPT_COUNTS, SAMPLE
from bali.sample.supersede import TextShard, dead_versions, live_sentences


@dataclass(frozen=True)
class SampleOptions:
    """Options of :func:`sample_sentences`."""

    k: int = field(default=10, metadata={"help": "sentences per concept (each concept's draw "
                                         "in 'union', the cap of the 'greedy' pass)"})
    seed: int = field(default=0, metadata={"help": "seed of concept order and sentence choice"})
    min_tokens: int = field(default=5, metadata={"help": "shortest sentence, in words"})
    max_tokens: int = field(default=256, metadata={"help": "longest sentence, in words"})
    strategy: str = field(default="greedy", metadata={
        "help": "'union': each concept draws <= k of its sentences independently, the sample "
                "is the union (the authors' sampler); 'greedy': a sentence counts for every "
                "concept it mentions (fewer sentences)", "choices": ("union", "greedy")})
    slack: int = field(default=10, metadata={
        "help": "union, sharded: pairs a shard keeps per concept beyond k, so that a later "
                "revision or deletion rarely forces the merge to re-read the shard"})
    docs_per_pass: int = field(default=250_000, metadata={
        "help": "document ids held at once when resolving revisions and deletions"})


def load_sentences(shards: Sequence[TextShard], docs_per_pass: int = 250_000
                   ) -> pl.LazyFrame:
    """The live sentences of the text shards (:mod:`bali.sample.supersede`: a document in a
    later shard, or deleted by one, leaves the earlier shards)."""
    if not shards:
        raise BaliInputError("<sentences>", "no sentence shard given")
    dead = dead_versions(shards, docs_per_pass)
    return pl.concat([live_sentences(s, dead.filter(pl.col("shard") == i)["doc_id"])
                      for i, s in enumerate(shards)])


def greedy_balance(
    sent_ptr: np.ndarray, sent_concepts: np.ndarray, cand_ptr: np.ndarray,
    cand_sents: np.ndarray, order: np.ndarray, k: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The greedy pass on CSR arrays. Sentence ``s`` mentions
    ``sent_concepts[sent_ptr[s]:sent_ptr[s+1]]``; concept ``c``'s candidates in priority order
    are ``cand_sents[cand_ptr[c]:cand_ptr[c+1]]``. Returns (chosen mask, count per concept).
    ``progress(n)`` (if given) is told after every ``_PROGRESS_BLOCK`` concepts visited."""
    sp, sc = sent_ptr.tolist(), sent_concepts.tolist()
    cp, cs = cand_ptr.tolist(), cand_sents.tolist()
    chosen = bytearray(len(sp) - 1)
    count = [0] * (len(cp) - 1)
    visit = order.tolist()
    for lo in range(0, len(visit), _PROGRESS_BLOCK):
        block = visit[lo:lo + _PROGRESS_BLOCK]
        for c in block:
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
        if progress is not None:
            progress(len(block))
    return np.frombuffer(bytes(chosen), dtype=np.uint8).astype(bool), np.asarray(count)


_PROGRESS_BLOCK = 1 << 14  # concepts per progress report of the greedy pass


def draw_union(pairs: pl.DataFrame, k: int, seed: int) -> pl.DataFrame:
    """Each concept's draw: of the distinct (cui, doc_id, sentence_id) candidate pairs, the
    ``min(k, candidates)`` of lowest priority (:func:`draw_priorities`; ties, which need
    equal 64-bit hashes, by doc_id and sentence_id) per cui; sorted by cui, then priority.
    :func:`sample_sentences` does the same on integer ids."""
    return bottom_k(with_priorities(pairs, seed), k).drop("priority")


def union_balance(pair_c: np.ndarray, pair_s: np.ndarray, priority: np.ndarray,
                  n_concepts: int, n_sent: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The union draw on integer arrays: pair ``i`` is (concept ``pair_c[i]``, sentence
    ``pair_s[i]``) with ``priority[i]``; each concept keeps its ``k`` lowest (ties by
    sentence). Returns (chosen mask over sentences, count per concept)."""
    order = (pl.DataFrame({"c": pair_c, "p": priority, "s": pair_s})
             .with_row_index("i").sort("c", "p", "s")["i"].to_numpy())
    by_c = pair_c[order]
    rank = np.arange(order.size) - _pointers(by_c, n_concepts)[by_c]
    chosen = np.zeros(n_sent, dtype=bool)
    chosen[pair_s[order[rank < k]]] = True
    return chosen, np.bincount(pair_c[chosen[pair_s]], minlength=n_concepts)


def sample_sentences(
    sentences: pl.LazyFrame | pl.DataFrame, kg_nodes: pl.Series, opts: SampleOptions
) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """Return (sample, concept_counts, stats); see the module docstring. Logs one summary
    line (:class:`bali.progress.Progress`, counting the concepts balanced)."""
    if opts.k < 1:
        raise OptionError("k must be >= 1")
    if opts.strategy not in ("union", "greedy"):
        raise OptionError(f"strategy must be 'union' or 'greedy', not {opts.strategy!r}")
    with Progress("sample", unit="concept") as bar:
        t0 = time.perf_counter()
        base, pairs, not_kg, after_filter = candidate_pairs(sentences, kg_nodes, opts)
        cand, concept_ids, sc = _integer_ids(pairs, opts)
        bar.set_total(concept_ids.height)
        bar.set_postfix(f"{cand.height:,} candidate sentences")
        t1 = time.perf_counter()
        chosen, count, candidates = _balance(sc, cand, concept_ids, opts, bar.update)
        balance_s = time.perf_counter() - t1
        sample = sample_table(base, pairs, cand.filter(pl.Series(chosen)))
        counts = concept_ids.select(
            "cui",
            candidates=pl.Series(candidates.astype(np.uint32)),
            sampled=pl.Series(count.astype(np.uint32)),
        ).select(list(CONCEPT_COUNTS))
        stats = sample_stats(opts, count, candidates, candidate_sentences=cand.height,
                             sampled_sentences=int(chosen.sum()),
                             after_filter=after_filter, not_kg=not_kg) | {
            "balance_seconds": round(balance_s, 2),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        bar.set_postfix(f"{opts.strategy}, k {opts.k}: sampled {stats['sampled_sentences']:,} "
                        f"of {cand.height:,} candidate sentences, "
                        f"{stats['concepts_above_k']:,} concepts above k")
    return sample, counts, stats


def candidate_pairs(sentences: pl.LazyFrame | pl.DataFrame, kg_nodes: pl.Series | pl.DataFrame,
                    opts: SampleOptions) -> tuple[pl.LazyFrame, pl.DataFrame, int, int]:
    """(sentences within the length limits, their (doc_id, sentence_id, start, end, cui)
    mentions of KG nodes, the number of mentions of other CUIs, the number of sentences
    within the limits), the counts from the same pass as the pairs. ``kg_nodes``: the node ids,
    or :func:`kg_table` of them (built once by a caller that calls this often)."""
    words = pl.col("text").str.count_matches(r"\S+")
    base = sentences.lazy().filter(words.is_between(opts.min_tokens, opts.max_tokens))
    kg = (kg_nodes if isinstance(kg_nodes, pl.DataFrame) else kg_table(kg_nodes)).lazy()
    pairs_all = (
        base.select("doc_id", "sentence_id", "mentions")
        .explode("mentions").drop_nulls("mentions").unnest("mentions")
    )
    pairs, not_kg, kept = pl.collect_all(
        [pairs_all.join(kg, on="cui", how="semi"),
         pairs_all.join(kg, on="cui", how="anti").select(pl.len()), base.select(pl.len())],
        engine="streaming",
    )
    return base, pairs, int(not_kg.item()), int(kept.item())


def kg_table(kg_nodes: pl.Series) -> pl.DataFrame:
    """The distinct node ids as a one-column (cui) frame, the right side of the KG joins."""
    return pl.DataFrame({"cui": kg_nodes.unique()})


def _integer_ids(pairs: pl.DataFrame, opts: SampleOptions
                 ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Integer ids of the candidates: ``cand`` (doc_id, sentence_id, s, priority) sorted by
    (doc_id, sentence_id), s = 0..S-1, priority = ``default_rng(seed).permutation(S)``;
    ``concept_ids`` (cui, c) sorted by cui, c = 0..C-1; ``sc`` (s, c, priority), one row per
    distinct (sentence, concept). Raises when there is no candidate sentence."""
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
    return cand, concept_ids, sc


def _balance(sc: pl.DataFrame, cand: pl.DataFrame, concept_ids: pl.DataFrame,
             opts: SampleOptions, progress: Callable[[int], None]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(chosen mask over sentences, count per concept, candidates per concept) of
    ``opts.strategy``: :func:`greedy_balance` with the concept order
    ``default_rng([seed, 1]).permutation(C)``, or :func:`union_balance`. ``progress(n)`` is
    told the concepts done."""
    n_concepts = concept_ids.height
    if opts.strategy == "greedy":
        by_sent = sc.sort("s", "c")
        sent_ptr = _pointers(by_sent["s"].to_numpy(), cand.height)
        by_concept = sc.sort("c", "priority")
        cand_ptr = _pointers(by_concept["c"].to_numpy(), n_concepts)
        order = np.random.default_rng([opts.seed, 1]).permutation(n_concepts)
        chosen, count = greedy_balance(sent_ptr, by_sent["c"].to_numpy(), cand_ptr,
                                       by_concept["s"].to_numpy(), order, opts.k, progress)
        return chosen, count, np.diff(cand_ptr)
    pair_s, pair_c = sc["s"].to_numpy(), sc["c"].to_numpy()
    priority = mix(string_hash(concept_ids["cui"], opts.seed)[pair_c]
                    ^ sentence_keys(cand["doc_id"], cand["sentence_id"])[pair_s])
    chosen, count = union_balance(pair_c, pair_s, priority, n_concepts, cand.height, opts.k)
    progress(n_concepts)
    return chosen, count, np.bincount(pair_c, minlength=n_concepts)


def sample_table(base: pl.LazyFrame, pairs: pl.DataFrame, picked: pl.DataFrame
                 ) -> pl.DataFrame:
    """The ``picked`` (doc_id, sentence_id) sentences of ``base`` (:data:`SAMPLE`), sorted
    by (doc_id, sentence_id), each with its KG mentions (``pairs``) sorted by (start, end,
    cui)."""
    picked = picked.select("doc_id", "sentence_id")
    kg_mentions = (
        pairs.join(picked, on=["doc_id", "sentence_id"], how="semi")
        .sort("doc_id", "sentence_id", "start", "end", "cui")
        .group_by("doc_id", "sentence_id", maintain_order=True)
        .agg(mentions=pl.struct("start", "end", "cui"))
    )
    return (
        base.drop("mentions")
        .join(kg_mentions.lazy(), on=["doc_id", "sentence_id"])
        .sort("doc_id", "sentence_id")
        .select(list(SAMPLE))
        .collect(engine="streaming")
    )


def sample_stats(opts: SampleOptions, count: np.ndarray, candidates: np.ndarray, *,
                 candidate_sentences: int, sampled_sentences: int, after_filter: int,
                 not_kg: int) -> dict:
    """The statistics of the sample (the keys of ``sample_stats.json``, in order): draws =
    sum_c min(k, candidates[c]); overshoot = count[c] - k over the concepts above k."""
    over = count[count > opts.k] - opts.k
    return {
        "strategy": opts.strategy, "k": opts.k, "seed": opts.seed,
        "sentences_after_length_filter": after_filter,
        "candidate_sentences": candidate_sentences,
        "concepts_with_candidates": len(count),
        "draws": int(np.minimum(candidates, opts.k).sum()),
        "sampled_sentences": sampled_sentences,
        "concepts_at_k_or_more": int((count >= opts.k).sum()),
        "concepts_below_k": int((count < opts.k).sum()),
        "concepts_above_k": int(over.size),
        "overshoot_max": int(over.max()) if over.size else 0,
        "overshoot_mean": round(float(over.mean()), 3) if over.size else 0.0,
        "mentions_not_kg_nodes": not_kg,
    }


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
