"""``bali evaluate``: benchmark evaluations of a Hugging Face model directory.

Every task takes ``--model --out --seed --label`` (:func:`bali.evaluate.results.add_run_arguments`)
and writes one results record; ``bali evaluate aggregate`` gives mean +- std over seeds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bali.config import add_options, options_from_args


def _el_zeroshot(args: argparse.Namespace) -> None:
    from bali.evaluate.el_zeroshot import ELOptions, evaluate_zeroshot
    from bali.evaluate.results import parse_labels, write_record
    from bali.paths import resolve_model

    rec = evaluate_zeroshot(resolve_model(args.model), args.dictionary, args.test, args.seen,
                            options_from_args(ELOptions, args), args.cache_dir,
                            benchmark=args.benchmark, seed=args.seed,
                            labels=parse_labels(args.label))
    write_record(args.out, rec)
    print(json.dumps({**rec["metrics"], **rec["counts"]}))


def _geometry(args: argparse.Namespace) -> None:
    from bali.evaluate.geometry import GeometryOptions, evaluate_geometry
    from bali.evaluate.results import parse_labels, write_record
    from bali.paths import resolve_model

    rec = evaluate_geometry(resolve_model(args.model), args.dictionary,
                            options_from_args(GeometryOptions, args), benchmark=args.benchmark,
                            seed=args.seed, labels=parse_labels(args.label))
    write_record(args.out, rec)
    print(json.dumps({**rec["metrics"], **rec["counts"]}))


def _aggregate(args: argparse.Namespace) -> None:
    from bali.evaluate.results import aggregate, aggregate_csv, read_records
    from bali.io import atomic_paths

    table = aggregate(read_records(args.results))
    with atomic_paths(args.out) as (tmp,):
        tmp.write_text(aggregate_csv(table))
    print(table.filter("primary").select("benchmark", "model", "variant", "metric", "n",
                                         "mean", "std"))


def add_parser(stages: argparse._SubParsersAction) -> None:
    """Register ``bali evaluate``."""
    from bali.evaluate import el_biosyn, finetune_cli
    from bali.evaluate.el_zeroshot import ELOptions
    from bali.evaluate.geometry import GeometryOptions
    from bali.evaluate.results import add_task_parser

    ev = stages.add_parser("evaluate", help="evaluate a model on a benchmark")
    tasks = ev.add_subparsers(dest="task", required=True, metavar="TASK")
    el = add_task_parser(
        tasks, "el-zeroshot", "zero-shot entity linking, Acc@1/@5 (BioSyn formats)",
        "Nearest dictionary name by cosine on the refined test set (see "
        "bali.evaluate.el_zeroshot for the protocol).", "el")
    el.add_argument("--dictionary", type=Path,
                    help="BioSyn dictionary 'ids||name' or KG names.parquet; default: built "
                    "from the --seen mentions")
    el.add_argument("--test", required=True, type=Path,
                    help="test mentions: BioSyn .concept or PubTator")
    el.add_argument("--seen", nargs="*", default=[], type=Path,
                    help="train (and dev) .concept files, for the refinement")
    el.add_argument("--cache-dir", type=Path, help="cache of dictionary embeddings")
    add_options(el, ELOptions)
    el.set_defaults(func=_el_zeroshot)
    geo = add_task_parser(
        tasks, "geometry", "alignment/uniformity and intra/inter-concept cosine of names",
        "Geometry of the concept-name embedding space (Wang & Isola 2020; see "
        "bali.evaluate.geometry).", "geometry")
    geo.add_argument("--dictionary", required=True, type=Path,
                     help="BioSyn dictionary 'ids||name|name...' or KG names.parquet")
    add_options(geo, GeometryOptions)
    geo.set_defaults(func=_geometry)
    el_biosyn.add_parser(tasks)
    finetune_cli.add_parser(tasks)

    agg = tasks.add_parser("aggregate", help="mean +- std over seeds of results JSONs (CSV)")
    agg.add_argument("results", nargs="+", type=Path, help="results JSON files")
    agg.add_argument("--out", required=True, type=Path, help="CSV of the aggregate")
    agg.set_defaults(func=_aggregate)
