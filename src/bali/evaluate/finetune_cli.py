"""``bali evaluate {pubmedqa,bioasq,medqa,chemprot,ddi,gad}``: one seeded fine-tuning run.

Data flags: PubMedQA takes ``--data ori_pqal.json --test-ids test_ground_truth.json`` and uses
CV fold ``seed mod 10`` as dev, the other 9 folds as train (:func:`bali.evaluate.qa.read_pubmedqa`);
the others take ``--train F.. [--dev F..] --test F..`` (several files are concatenated, e.g.
BioASQ's ``11B1_golden.json .. 11B4_golden.json``); without ``--dev`` a ``--dev-share`` (10%) of
train, drawn with ``--seed``, is held out as dev. The record (task ``qa`` or ``re``) holds the
test metrics plus ``dev_<primary>`` (the best dev score, whose epoch was tested), the per-epoch
``history``, ``best_epoch``, counts (``train``/``dev``/``test`` used, ``*_read`` before caps),
the options and the digests of the data files.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from bali.config import add_options, options_from_args
from bali.io import BaliInputError


def _read_splits(spec, args: argparse.Namespace) -> tuple[dict, list[Path], dict, list[str]]:
    """(splits, data files, reader options, notes) of a run."""
    from bali.evaluate.finetune import hold_out
    from bali.evaluate.qa import read_bioasq, read_medqa, read_pubmedqa
    from bali.evaluate.re import read_re

    if spec.name == "pubmedqa":
        fold = args.seed % 10
        splits = read_pubmedqa(args.data, args.test_ids, fold, split_seed=args.split_seed)
        return splits, [args.data, args.test_ids], {"fold": fold, "split_seed": args.split_seed}, \
            [f"dev: PubMedQA CV fold {fold} (seed mod 10); train: the other 9 folds"]
    if spec.name == "bioasq":
        def read(path):
            return read_bioasq(path, args.question_only)
        reader_options = {"question_only": args.question_only}
    elif spec.name == "medqa":
        read, reader_options = read_medqa, {}
    else:
        def read(path):
            return read_re(path, spec.labels, spec.aliases)
        reader_options = {}

    def read_all(paths: list[Path]) -> tuple[list, list]:
        examples, labels = [], []
        for path in paths:
            ex, ys = read(path)
            examples += ex
            labels += ys
        if not examples:
            raise BaliInputError(paths[0], f"no {spec.name} examples")
        return examples, labels

    train, test = read_all(args.train), read_all(args.test)
    notes = []
    if args.dev:
        dev = read_all(args.dev)
    else:
        try:
            train, dev = hold_out(train, args.dev_share, args.seed)
        except ValueError as err:
            raise BaliInputError(args.train[0], str(err)) from None
        reader_options["dev_share"] = args.dev_share
        notes.append(f"dev: {args.dev_share:.0%} of train held out (shuffle seeded {args.seed})")
    return {"train": train, "dev": dev, "test": test}, \
        [*args.train, *args.dev, *args.test], reader_options, notes


def _run(args: argparse.Namespace) -> None:
    from bali.evaluate.benchmarks import BENCHMARKS
    from bali.evaluate.finetune import run_finetune
    from bali.evaluate.results import parse_labels, record, write_record
    from bali.paths import resolve_model

    started = time.perf_counter()
    spec = BENCHMARKS[args.benchmark]
    options = options_from_args(spec.options, args)
    labels = parse_labels(args.label)
    model_dir = resolve_model(args.model)
    splits, files, reader_options, notes = _read_splits(spec, args)
    if options.max_train or options.max_eval:
        notes.append(f"capped: max_train {options.max_train}, max_eval {options.max_eval} "
                     "(first N of a shuffle seeded 0)")
    out = run_finetune(model_dir, spec.head, spec.labels, splits, options, args.seed,
                       spec.metrics, spec.primary)
    rec = record(task=spec.task, benchmark=spec.name, model=model_dir, seed=args.seed,
                 metrics=out["metrics"], primary=spec.primary,
                 options={**dataclasses.asdict(options), **reader_options},
                 counts=out["counts"], data=files, labels=labels, notes=notes, started=started)
    rec["history"], rec["best_epoch"] = out["history"], out["best_epoch"]
    rec["items"] = out["items"]  # per-example scores (bali.report.headline, bali report diff)
    write_record(args.out, rec)
    print(json.dumps({**rec["metrics"], **rec["counts"], "best_epoch": out["best_epoch"]}))


_HELP = {
    "pubmedqa": "PubMedQA PQA-L yes/no/maybe, accuracy (10 CV folds, fold = seed mod 10)",
    "bioasq": "BioASQ yes/no, accuracy (BLURB JSON lines or official BioASQ JSON)",
    "medqa": "MedQA-USMLE 4 options, accuracy (original or LinkBERT JSON lines)",
    "chemprot": "ChemProt relations, micro-F1 (BLURB JSON lines or BioBERT TSV)",
    "ddi": "DDI relations, micro-F1 (BLURB JSON lines or BioBERT TSV)",
    "gad": "GAD relations, micro-F1 (BLURB JSON lines or BioBERT TSV)",
}


def add_parser(tasks: argparse._SubParsersAction) -> None:
    """Register one ``bali evaluate BENCHMARK`` sub-command per fine-tuning benchmark."""
    from bali.evaluate.benchmarks import BENCHMARKS
    from bali.evaluate.results import add_run_arguments

    for spec in BENCHMARKS.values():
        p = tasks.add_parser(spec.name, help=_HELP[spec.name], description=__doc__.split("\n\n")[1])
        add_run_arguments(p)
        if spec.name == "pubmedqa":
            p.add_argument("--data", required=True, type=Path, help="ori_pqal.json")
            p.add_argument("--test-ids", required=True, type=Path, help="test_ground_truth.json")
            p.add_argument("--split-seed", type=int, default=0,
                           help="seed of PubMedQA's fold split (0: the official folds)")
        else:
            p.add_argument("--train", required=True, nargs="+", type=Path, help="train file(s)")
            p.add_argument("--dev", nargs="+", default=[], type=Path,
                           help="dev file(s); default: --dev-share of train held out")
            p.add_argument("--test", required=True, nargs="+", type=Path, help="test file(s)")
            p.add_argument("--dev-share", type=float, default=0.1,
                           help="share of train held out as dev without --dev (default: 0.1)")
        if spec.name == "bioasq":
            p.add_argument("--question-only", action=argparse.BooleanOptionalAction,
                           default=False, help="encode the question without its passage "
                           "(as the paper's authors did on BioASQ 2023)")
        add_options(p, spec.options)
        p.set_defaults(func=_run, benchmark=spec.name)
