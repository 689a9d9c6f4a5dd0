"""Which held-out concepts a demo pretraining run trained on, and where its linking changed.

For the demo (``results/``), lists the concepts that the first ``--steps`` training batches
mention (the batches of ``bali.train.data.BatchDataset`` with the run's own configuration,
rebuilt without a model) and splits the per-mention Acc@1 changes, base -> BALI, of the test
half (``results/eval/hpo-synonyms/minilm/{base,gat}/seed0.json``) and, if given, of the dev
half (two ``bali evaluate el-zeroshot`` JSONs on ``kg/heldout_dev.concept``) by whether the
mention's concept was in a training batch: wins (0 -> 1), losses (1 -> 0), unchanged.

    python benchmarks/seen_concepts.py --steps 400 \\
        --dev /tmp/dev_base.json /tmp/dev_gat.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np


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


def changes(base: Path, bali: Path, seen: set[str]) -> Counter:
    """(concept seen?, hit@1 change) -> mentions."""
    a, b = (json.loads(p.read_text())["items"] for p in (base, bali))
    out: Counter = Counter()
    for key, h0, h1 in zip(a["id"], a["hit@1"], b["hit@1"], strict=True):
        out[(key.rsplit("||", 1)[-1] in seen, h1 - h0)] += 1
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--dev", type=Path, nargs=2, metavar=("BASE", "BALI"))
    args = p.parse_args()
    seen, per_epoch, total = seen_concepts(args.results, args.steps)
    print(f"{args.steps} steps ({per_epoch} per epoch): {len(seen)} of the {total} concepts "
          "the training sentences mention")
    ev = args.results / "eval/hpo-synonyms/minilm"
    halves = {"test": (ev / "base/seed0.json", ev / "gat/seed0.json")}
    if args.dev:
        halves["dev"] = tuple(args.dev)
    print("| half | concept in a training batch | mentions | wins | losses | net (points) |")
    print("|---|---|---:|---:|---:|---:|")
    for half, (base, bali) in halves.items():
        c = changes(base, bali, seen)
        n_all = sum(c.values())
        for flag in (True, False):
            n = sum(v for (s, _), v in c.items() if s == flag)
            win, loss = c[(flag, 1)], c[(flag, -1)]
            print(f"| {half} | {'yes' if flag else 'no'} | {n} | {win} | {loss} | "
                  f"{win - loss:+d} ({100 * (win - loss) / n_all:+.2f}) |")


if __name__ == "__main__":
    main()
