"""Neighbour-capped 1-hop subgraphs (paper §3: G_v with <= 3 sampled neighbours).

For each concept of the sample, its neighbours come from the KG ``edges``:
``direction="in"`` uses edges (u, r, v) only (the paper's E_v), ``"out"`` edges (v, r, u),
``"both"`` (default) either, tagged ``in``/``out``. UMLS lists inverse relations as rows of
their own (PAR/CHD, RB/RN), so ``in`` alone already sees both sides there; OBO ontologies
store only child -> parent ``is_a``, so ``both`` gives parents and children. Self-loops and
relations failing ``relation_include``/``relation_exclude`` (matched against
``relation_attr`` if set, else ``relation``) are dropped; (neighbour, relation, direction)
triples are distinct.

Each candidate triple gets a seeded random priority (a permutation of all triples sorted by
(cui, neighbour, relation, direction)); a concept keeps its ``pool_size`` lowest-priority
neighbours in priority order, from which training draws ``pretrain.max_neighbors`` per concept
and batch (:mod:`bali.train.data`). ``nodes`` lists every name of every
concept and pool neighbour (preferred name first).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from bali.errors import OptionError
from bali.progress import Progress
from bali.sample.schema import NODES, SUBGRAPHS

DIRECTIONS = ("in", "out", "both")


@dataclass(frozen=True)
class SubgraphOptions:
    """Options of :func:`build_subgraphs`."""

    pool_size: int = field(default=32, metadata={
        "help": "neighbours kept per concept, from which training samples max_neighbors"})
    seed: int = field(default=0, metadata={"help": "seed of the neighbour priorities"})
    direction: str = field(default="both", metadata={"help": "edges used: in, out or both",
                                                      "choices": ("in", "out", "both")})
    relation_include: tuple[str, ...] = field(
        default=(), metadata={"help": "relations kept; empty = all"})
    relation_exclude: tuple[str, ...] = field(
        default=(), metadata={"help": "relations dropped"})


def _candidate_edges(edges: pl.LazyFrame, centres: pl.LazyFrame, opts: SubgraphOptions):
    label = pl.coalesce("relation_attr", "relation").alias("relation")
    parts = []
    if opts.direction in ("out", "both"):
        parts.append(edges.select(pl.col("head").alias("cui"), pl.col("tail").alias("neighbor"),
                                  label, direction=pl.lit("out")))
    if opts.direction in ("in", "both"):
        parts.append(edges.select(pl.col("tail").alias("cui"), pl.col("head").alias("neighbor"),
                                  label, direction=pl.lit("in")))
    lf = pl.concat(parts).join(centres, on="cui", how="semi")
    lf = lf.filter(pl.col("cui") != pl.col("neighbor"))
    if opts.relation_include:
        lf = lf.filter(pl.col("relation").is_in(opts.relation_include))
    if opts.relation_exclude:
        lf = lf.filter(~pl.col("relation").is_in(opts.relation_exclude))
    return lf.unique().sort("cui", "neighbor", "relation", "direction")


def build_subgraphs(
    centres: pl.Series, edges: pl.LazyFrame, names: pl.LazyFrame, opts: SubgraphOptions
) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """Return (subgraphs, nodes, stats) for the concepts ``centres``. Logs one summary line
    (:class:`bali.progress.Progress`, counting the centres)."""
    if opts.direction not in DIRECTIONS:
        raise OptionError(f"direction must be one of {DIRECTIONS}, not {opts.direction!r}")
    if opts.pool_size < 1:
        raise OptionError(f"pool_size must be >= 1, not {opts.pool_size}")
    t0 = time.perf_counter()
    centre_df = pl.DataFrame({"cui": centres.unique().sort()})
    with Progress("subgraphs", total=centre_df.height, unit="concept") as bar:
        cand = _candidate_edges(edges.lazy(), centre_df.lazy(), opts).collect(engine="streaming")
        rng = np.random.default_rng(opts.seed)
        cand = cand.with_columns(
            priority=pl.Series(rng.permutation(cand.height), dtype=pl.UInt32))
        subgraphs = _pools(centre_df, cand, opts)
        bar.update(centre_df.height)
        node_ids, nodes = _node_names(centre_df, subgraphs, names)
        degree = subgraphs["degree"].to_numpy()
        stats = {
            "centres": centre_df.height,
            "centres_without_neighbors": int((degree == 0).sum()),
            "centres_with_full_pool": int((degree >= opts.pool_size).sum()),
            "degree_median": float(np.median(degree)) if degree.size else 0.0,
            "degree_max": int(degree.max()) if degree.size else 0,
            "candidate_triples": cand.height,
            "nodes": nodes.height,
            "nodes_without_names": node_ids.height - nodes.height,
            "options": {k: v for k, v in vars(opts).items()},
            "seconds": round(time.perf_counter() - t0, 2),
        }
        bar.set_postfix(f"{nodes.height:,} nodes, {cand.height:,} candidate triples, "
                        f"{stats['centres_without_neighbors']:,} centres without neighbours")
    return subgraphs, nodes, stats


def _pools(centre_df: pl.DataFrame, cand: pl.DataFrame, opts: SubgraphOptions) -> pl.DataFrame:
    """:data:`SUBGRAPHS` rows, one per centre: its degree (candidate triples) and its
    ``pool_size`` lowest-priority neighbours in priority order (empty: no neighbour)."""
    pools = (
        cand.sort("cui", "priority")
        .group_by("cui", maintain_order=True)
        .agg(
            degree=pl.len().cast(pl.UInt32),
            neighbors=pl.struct("neighbor", "relation", "direction")
            .head(opts.pool_size)
            .struct.rename_fields(["cui", "relation", "direction"]),
        )
    )
    return (
        centre_df.join(pools, on="cui", how="left")
        .with_columns(
            pl.col("degree").fill_null(0),
            pl.col("neighbors").fill_null(pl.lit([], dtype=SUBGRAPHS["neighbors"])),
        )
        .select(list(SUBGRAPHS))
    )


def _node_names(centre_df: pl.DataFrame, subgraphs: pl.DataFrame, names: pl.LazyFrame
                ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(node ids = centres and pool neighbours, :data:`NODES` rows: every name of each node
    that has one, preferred name first, then by name; sorted by cui)."""
    node_ids = pl.concat([
        centre_df,
        subgraphs.select(pl.col("neighbors").explode().struct.field("cui")).drop_nulls(),
    ]).unique()
    nodes = (
        names.lazy().join(node_ids.lazy(), on="cui", how="semi")
        .sort("cui", pl.col("is_preferred").not_(), "name")
        .group_by("cui", maintain_order=True)
        .agg(names=pl.col("name"))
        .select(list(NODES))
        .collect(engine="streaming")
    )
    return node_ids, nodes
