"""What lexical negatives add to a demo batch: names and name tokens encoded per batch.

Builds the first ``--batches`` training batches of the demo's shards (``results/shards/minilm``,
demo settings) with and without ``lexical_negatives`` k, and prints the mean number of distinct
names, of their tokens and of the sentence tokens per batch, and the mining time.

    OMP_NUM_THREADS=1 python benchmarks/lexical_batch.py --k 8
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from bali.model.config import ModelConfig
    from bali.train.config import TrainConfig
    from bali.train.data import BatchDataset, SpecialIds
    from bali.train.loop import _lexical_confusers

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shards", type=Path, default=Path("results/shards/minilm"))
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--batches", type=int, default=50)
    args = p.parse_args()
    meta = json.loads((args.shards / "meta.json").read_text())
    special = SpecialIds(meta["pad_token_id"], meta["cls_token_id"], meta["sep_token_id"],
                         meta["mask_token_id"], meta["vocab_size"])
    tcfg = TrainConfig(steps=400, batch_size=8, validate_every=200)
    t0 = time.perf_counter()
    lexical = _lexical_confusers(args.shards, meta["tokenizer_dir"], args.k)
    print(f"mining: {time.perf_counter() - t0:.1f} s, {lexical[1].size} names")
    for label, mcfg, lex in (("demo", ModelConfig(), None),
                             (f"lexical_negatives {args.k}",
                              ModelConfig(lexical_negatives=args.k), lexical)):
        data = BatchDataset.from_configs(args.shards, mcfg, tcfg, special, lexical=lex)
        rows = [data[n] for n in range(args.batches)]
        names = np.mean([b["name_input_ids"].shape[0] for b in rows])
        tokens = np.mean([int(b["name_attention_mask"].sum()) for b in rows])
        sentence = np.mean([int(b["attention_mask"].sum()) for b in rows])
        print(f"{label}: {names:.1f} names, {tokens:.0f} name tokens, {sentence:.0f} sentence "
              "tokens per batch")


if __name__ == "__main__":
    main()
