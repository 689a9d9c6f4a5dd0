"""The union draw as map -> merge: a bottom-k sketch per concept (Cohen & Kaplan, PODC 2007).

The union draw keeps, for each concept ``c``, the ``k`` candidate pairs (c, doc_id,
sentence_id) of lowest priority (:mod:`bali.sample.priority`; ties by doc_id, sentence_id).
For any split of the candidates, ``bottom_k(A | B) = bottom_k(bottom_k(A) | bottom_k(B))``:

- map, one job per text shard (:func:`reduce_shard`): the shard's ``K = k + slack`` lowest
  pairs per concept (``bottomk.parquet``: cui, doc_id, sentence_id, priority), its candidate
  sentences per concept (``counts.parquet``: cui, candidates) and its filter totals
  (``reduction.json``);
- merge (:func:`merge_reductions`): a running bottom-k over the shards in order, in batches
  of at most ``max(running rows, FLUSH_ROWS)`` rows, so it holds ~concepts x k pairs; then the
  chosen sentences are read back from their shards and counted.

Revisions and deletions (:func:`bali.sample.supersede.dead_versions`) are resolved in the
merge, so a shard's reduction depends on its own file alone. A shard with dead documents has
their candidate pairs re-read from its sentences and subtracted from its counts and totals,
their rows dropped from its bottom list; a concept then left with fewer than ``k`` rows where
the shard had more than ``K`` candidates (the short case) is drawn again from the shard's
live sentences. The result equals :func:`bali.sample.balanced.sample_sentences` (union) on
:func:`bali.sample.balanced.load_sentences`, row for row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from bali.errors import OptionError
from bali.io import BaliInputError, atomic_paths, owned, read_table, scan_table, write_parquet
from bali.progress import Progress
from bali.sample.balanced import (
    SampleOptions,
    candidate_pairs,
    kg_table,
    sample_stats,
    sample_table,
)
from bali.sample.priority import DRAW_ORDER, bottom_k, with_priorities
from bali.sample.schema import CONCEPT_COUNTS
from bali.sample.supersede import TextShard, dead_versions, live_sentences
from bali.text.schema import SENTENCES

BOTTOM = {"cui": pl.String(), "doc_id": pl.String(), "sentence_id": pl.Int32(),
          "priority": pl.UInt64()}
COUNTS = {"cui": pl.String(), "candidates": pl.UInt32()}
TOTALS = ("after_filter", "candidate_sentences", "not_kg")
FLUSH_ROWS = 1 << 18  # pending shard rows folded into the running draw at max(this, running)
_DRAW_OPTIONS = ("k", "seed", "min_tokens", "max_tokens", "slack")


@dataclass
class Reduction:
    """One shard's (or a subset's) bottom list, candidates per concept and totals."""

    bottom: pl.DataFrame
    counts: pl.DataFrame
    totals: dict[str, int]
    redrawn: int = 0  # concepts drawn again (the short case of :func:`without_dead`)


def reduce_sentences(sentences: pl.LazyFrame, kg_nodes: pl.Series | pl.DataFrame,
                     opts: SampleOptions, keep: int | None) -> Reduction:
    """The reduction of ``sentences``: the ``keep`` lowest pairs per concept (all if None)."""
    _, pairs, not_kg, after_filter = candidate_pairs(sentences, kg_nodes, opts)
    pairs = with_priorities(pairs.select("cui", "doc_id", "sentence_id").unique(), opts.seed)
    counts = (pairs.group_by("cui").agg(candidates=pl.len().cast(pl.UInt32)).sort("cui"))
    totals = {"after_filter": after_filter,
              "candidate_sentences": pairs.select("doc_id", "sentence_id").n_unique(),
              "not_kg": not_kg}
    bottom = bottom_k(pairs, keep) if keep is not None else pairs.sort(*DRAW_ORDER)
    return Reduction(bottom.select(list(BOTTOM)), counts, totals)


def reduce_shard(sentences: pl.LazyFrame, kg_nodes: pl.Series, opts: SampleOptions
                 ) -> Reduction:
    """The map step: :func:`reduce_sentences` keeping ``k + slack`` pairs per concept."""
    _check(opts)
    return reduce_sentences(sentences, kg_nodes, opts, opts.k + opts.slack)


def write_reduction(red: Reduction, opts: SampleOptions, out_dir: Path) -> None:
    """``bottomk.parquet``, ``counts.parquet`` and ``reduction.json`` (totals + options)."""
    write_parquet(red.bottom, out_dir / "bottomk.parquet")
    write_parquet(red.counts, out_dir / "counts.parquet")
    meta = {"options": {k: asdict(opts)[k] for k in _DRAW_OPTIONS}, **red.totals}
    with atomic_paths(out_dir / "reduction.json") as (tmp,):
        tmp.write_text(json.dumps(meta, indent=1) + "\n")


def read_reduction(out_dir: Path, opts: SampleOptions) -> Reduction:
    """A shard's reduction, refused when it was drawn with other options."""
    meta_path = Path(out_dir) / "reduction.json"
    if not meta_path.is_file():
        raise BaliInputError(meta_path, "missing: run the sample_shard job of this shard")
    meta = json.loads(meta_path.read_text())
    want = {k: asdict(opts)[k] for k in _DRAW_OPTIONS}
    if meta.get("options") != want:
        raise BaliInputError(meta_path, f"drawn with {meta.get('options')}, not {want}: "
                             "rerun the shard's sample_shard job")
    return Reduction(read_table(Path(out_dir) / "bottomk.parquet", BOTTOM),
                     read_table(Path(out_dir) / "counts.parquet", COUNTS),
                     {k: int(meta[k]) for k in TOTALS})


def without_dead(red: Reduction, shard: TextShard, dead_docs: pl.Series,
                 kg_nodes: pl.Series | pl.DataFrame, opts: SampleOptions) -> Reduction:
    """``red`` less the shard's dead documents, exactly (module docstring)."""
    lf = scan_table(shard.sentences, SENTENCES)
    gone = reduce_sentences(lf.filter(pl.col("doc_id").is_in(dead_docs.implode())),
                            kg_nodes, opts, keep=None)
    counts = (red.counts.join(gone.counts, on="cui", how="left", suffix="_gone")
              .with_columns(pl.col("candidates") - pl.col("candidates_gone").fill_null(0))
              .filter(pl.col("candidates") > 0).select(list(COUNTS)))
    totals = {k: red.totals[k] - gone.totals[k] for k in TOTALS}
    bottom = red.bottom.filter(~pl.col("doc_id").is_in(dead_docs.implode()))
    truncated = red.counts.filter(pl.col("candidates") > opts.k + opts.slack)["cui"]
    kept = bottom.group_by("cui").len()
    short = (pl.DataFrame({"cui": truncated}).join(kept, on="cui", how="left")
             .filter(pl.col("len").fill_null(0) < opts.k)["cui"])
    if short.len():  # drawn again from the shard's live sentences
        redrawn = reduce_sentences(live_sentences(shard, dead_docs), short, opts, opts.k)
        bottom = pl.concat([bottom.filter(~pl.col("cui").is_in(short.implode())),
                            redrawn.bottom]).sort(*DRAW_ORDER)
    return Reduction(bottom, counts, totals, redrawn=short.len())


def _check(opts: SampleOptions) -> None:
    if opts.strategy != "union":
        raise OptionError("the sharded sampler draws strategy 'union' only; 'greedy' runs as "
                          "one job (bali sample)")
    if opts.k < 1 or opts.slack < 0:
        raise OptionError("k must be >= 1 and slack >= 0")


class _Running:
    """The running bottom-k and candidate counts of the merge."""

    def __init__(self, k: int):
        self.k = k
        self.bottom = pl.DataFrame(schema=BOTTOM | {"shard": pl.UInt32()})
        self.counts = pl.DataFrame(schema=COUNTS)
        self.pending: list[tuple[pl.DataFrame, pl.DataFrame]] = []
        self.rows = 0

    def add(self, red: Reduction, shard: int) -> None:
        self.pending.append((red.bottom.with_columns(shard=pl.lit(shard, pl.UInt32)),
                             red.counts))
        self.rows += red.bottom.height
        if self.rows >= max(self.bottom.height, FLUSH_ROWS):
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        bottoms, counts = zip(*self.pending, strict=True)
        # owned: else the kept rows' string views hold every folded shard's buffers
        self.bottom = owned(bottom_k(pl.concat([self.bottom, *bottoms]), self.k))
        self.counts = owned(pl.concat([self.counts, *counts]).group_by("cui")
                            .agg(pl.col("candidates").sum()).sort("cui"))
        self.pending, self.rows = [], 0


def merge_reductions(shards: Sequence[TextShard], reductions: Sequence[Path],
                     kg_nodes: pl.Series, opts: SampleOptions
                     ) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """(sample, concept_counts, stats) of the union draw over the shards, in order."""
    _check(opts)
    dead = dead_versions(shards, opts.docs_per_pass)
    kg = kg_table(kg_nodes)  # built once, not per shard
    run, totals = _Running(opts.k), dict.fromkeys(TOTALS, 0)
    redrawn = short = 0
    with Progress("sample-merge", total=len(shards), unit="shard") as bar:
        for i, (shard, red_dir) in enumerate(zip(shards, reductions, strict=True)):
            red = read_reduction(red_dir, opts)
            dead_docs = dead.filter(pl.col("shard") == i)["doc_id"]
            if dead_docs.len():
                red, redrawn = without_dead(red, shard, dead_docs, kg, opts), redrawn + 1
                short += red.redrawn
            run.add(red, i)
            totals = {k: totals[k] + red.totals[k] for k in TOTALS}
            bar.update(1)
        run.flush()
        if run.counts.is_empty():
            raise BaliInputError("<sentences>", "no sentence mentions a KG node within the "
                                 f"length limits ({opts.min_tokens}-{opts.max_tokens} words)")
        # a chosen sentence's KG mentions are all candidates: of concepts in the counts
        sample = _read_back(shards, run.bottom, run.counts.select("cui"), opts)
        bar.set_postfix(f"{sample.height:,} sentences from {len(shards):,} shards")
    sampled = (sample.select("doc_id", "sentence_id", "mentions").explode("mentions")
               .select("doc_id", "sentence_id", pl.col("mentions").struct.field("cui")).unique()
               .group_by("cui").agg(sampled=pl.len().cast(pl.UInt32)))
    counts = (run.counts.join(sampled, on="cui", how="left", maintain_order="left")
              .with_columns(pl.col("sampled").fill_null(0)).select(list(CONCEPT_COUNTS)))
    stats = sample_stats(opts, counts["sampled"].to_numpy(), counts["candidates"].to_numpy(),
                         candidate_sentences=totals["candidate_sentences"],
                         sampled_sentences=sample.height, after_filter=totals["after_filter"],
                         not_kg=totals["not_kg"])
    stats |= {"shards": len(shards), "dead_versions": dead.height,
              "shards_with_dead_versions": redrawn, "concepts_redrawn": short}
    return sample, counts, stats


def _read_back(shards: Sequence[TextShard], chosen: pl.DataFrame, kg: pl.DataFrame,
               opts: SampleOptions) -> pl.DataFrame:
    """The chosen sentences (:data:`bali.sample.schema.SAMPLE`), read from their shards."""
    picked = chosen.select("shard", "doc_id", "sentence_id").unique()
    parts = []
    for i in np.unique(picked["shard"].to_numpy()).tolist():
        keys = picked.filter(pl.col("shard") == i)
        lf = scan_table(shards[i].sentences, SENTENCES).filter(
            pl.col("doc_id").is_in(keys["doc_id"].unique().implode()))
        base, pairs, _, _ = candidate_pairs(lf, kg, opts)
        parts.append(owned(sample_table(base, pairs, keys)))
    return pl.concat(parts).sort("doc_id", "sentence_id")
