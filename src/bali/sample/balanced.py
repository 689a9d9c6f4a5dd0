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
from bali.io import BaliInputError, scan_table
from bali.progress import Progress
from bali.sample.schema import CONCEPT_COUNTS, SAMPLE
from bali.text.schema import SENTENCES


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


_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def string_hash(values: pl.Series, seed: int) -> np.ndarray:
    """Seeded 64-bit hash of each string from its UTF-8 bytes, vectorised (a polynomial over
    the bytes, then splitmix64): the same on every platform and library version, unlike
    polars' ``hash``. Works through ``_HASH_CHUNK`` strings at a time."""
    seed_key = _mix(np.array([seed], dtype=np.int64).astype(np.uint64) + _M2)
    out = np.empty(values.len(), dtype=np.uint64)
    for lo in range(0, values.len(), _HASH_CHUNK):
        out[lo:lo + _HASH_CHUNK] = _polynomial(values.slice(lo, _HASH_CHUNK))
    return _mix(out ^ seed_key)


_HASH_CHUNK = 1 << 20


def _polynomial(values: pl.Series) -> np.ndarray:
    import pyarrow as pa

    arr = values.cast(pl.String).to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    if arr.null_count:
        raise ValueError("string_hash: null values")
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = (np.frombuffer(data_buf, np.uint8)[offsets[0]:offsets[-1]] if data_buf is not None
            else np.zeros(0, np.uint8))
    offsets = offsets - offsets[0]
    lengths = np.diff(offsets)
    pos = np.arange(data.size, dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    powers = np.cumprod(np.full(max(int(lengths.max(initial=0)), 1), _GOLDEN, np.uint64))
    terms = (data.astype(np.uint64) + np.uint64(1)) * powers[pos]
    sums = np.concatenate(([np.uint64(0)], np.cumsum(terms, dtype=np.uint64)))
    poly = sums[offsets[1:]] - sums[offsets[:-1]]
    return _mix((poly ^ lengths.astype(np.uint64)) + _GOLDEN)


def _sentence_keys(doc_ids: pl.Series, sentence_ids: pl.Series) -> np.ndarray:
    ids = sentence_ids.cast(pl.Int64).to_numpy().astype(np.uint64)
    return _mix(string_hash(doc_ids, 1) ^ (ids * _GOLDEN))


def draw_priorities(pairs: pl.DataFrame, seed: int) -> np.ndarray:
    """The union draw's priority of each (cui, doc_id, sentence_id) row: a 64-bit hash of
    (seed, cui, doc_id, sentence_id)."""
    return _mix(string_hash(pairs["cui"], seed)
                ^ _sentence_keys(pairs["doc_id"], pairs["sentence_id"]))


def draw_union(pairs: pl.DataFrame, k: int, seed: int) -> pl.DataFrame:
    """Each concept's draw: of the distinct (cui, doc_id, sentence_id) candidate pairs, the
    ``min(k, candidates)`` of lowest priority (:func:`draw_priorities`; ties, which need
    equal 64-bit hashes, by doc_id and sentence_id) per cui; sorted by cui, then priority.
    :func:`sample_sentences` does the same on integer ids."""
    return (
        pairs.select("cui", "doc_id", "sentence_id")
        .with_columns(_p=pl.Series(draw_priorities(pairs, seed), dtype=pl.UInt64))
        .sort("cui", "_p", "doc_id", "sentence_id")
        .filter(pl.int_range(pl.len()).over("cui") < k)
        .drop("_p")
    )


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
        base, pairs, not_kg = _candidate_pairs(sentences, kg_nodes, opts)
        cand, concept_ids, sc = _integer_ids(pairs, opts)
        bar.set_total(concept_ids.height)
        bar.set_postfix(f"{cand.height:,} candidate sentences")
        t1 = time.perf_counter()
        chosen, count, candidates = _balance(sc, cand, concept_ids, opts, bar.update)
        balance_s = time.perf_counter() - t1
        sample = _sample_table(base, pairs, cand, chosen)
        counts = concept_ids.select(
            "cui",
            candidates=pl.Series(candidates.astype(np.uint32)),
            sampled=pl.Series(count.astype(np.uint32)),
        ).select(list(CONCEPT_COUNTS))
        stats = _sample_stats(opts, count, candidates, chosen,
                              after_filter=base.select(pl.len()).collect().item(),
                              n_concepts=concept_ids.height, not_kg=not_kg) | {
            "balance_seconds": round(balance_s, 2),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        bar.set_postfix(f"{opts.strategy}, k {opts.k}: sampled {stats['sampled_sentences']:,} "
                        f"of {cand.height:,} candidate sentences, "
                        f"{stats['concepts_above_k']:,} concepts above k")
    return sample, counts, stats


def _candidate_pairs(sentences: pl.LazyFrame | pl.DataFrame, kg_nodes: pl.Series,
                     opts: SampleOptions) -> tuple[pl.LazyFrame, pl.DataFrame, int]:
    """(sentences within the length limits, their (doc_id, sentence_id, start, end, cui)
    mentions of KG nodes, the number of mentions of other CUIs)."""
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
    return base, pairs, int(not_kg.item())


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
    priority = _mix(string_hash(concept_ids["cui"], opts.seed)[pair_c]
                    ^ _sentence_keys(cand["doc_id"], cand["sentence_id"])[pair_s])
    chosen, count = union_balance(pair_c, pair_s, priority, n_concepts, cand.height, opts.k)
    progress(n_concepts)
    return chosen, count, np.bincount(pair_c, minlength=n_concepts)


def _sample_table(base: pl.LazyFrame, pairs: pl.DataFrame, cand: pl.DataFrame,
                  chosen: np.ndarray) -> pl.DataFrame:
    """The chosen sentences (:data:`SAMPLE`), sorted by (doc_id, sentence_id), each with its
    KG mentions sorted by (start, end, cui)."""
    picked = cand.filter(pl.Series(chosen)).select("doc_id", "sentence_id")
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


def _sample_stats(opts: SampleOptions, count: np.ndarray, candidates: np.ndarray,
                  chosen: np.ndarray, *, after_filter: int, n_concepts: int,
                  not_kg: int) -> dict:
    """The statistics of the sample (the keys of ``sample_stats.json``, in order): draws =
    sum_c min(k, candidates[c]); overshoot = count[c] - k over the concepts above k."""
    over = count[count > opts.k] - opts.k
    return {
        "strategy": opts.strategy, "k": opts.k, "seed": opts.seed,
        "sentences_after_length_filter": after_filter,
        "candidate_sentences": len(chosen),
        "concepts_with_candidates": int(n_concepts),
        "draws": int(np.minimum(candidates, opts.k).sum()),
        "sampled_sentences": int(chosen.sum()),
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
