"""Share of batch concepts whose centre name spells one of their mentions in the batch, under
``centre_name`` random (the paper) and unlike-mention, on the demo's shards (first N batches
of batch 8, as the demo trains). benchmarks/README.md "What moves linking" quotes it.

    python benchmarks/centre_names.py --shards results/shards/minilm --batches 100
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shards", type=Path, default=Path("results/shards/minilm"))
    p.add_argument("--batches", type=int, default=100)
    args = p.parse_args()
    from bali.train.data import BatchDataset, SpecialIds, _pad

    meta = json.loads((args.shards / "meta.json").read_text())
    sp = SpecialIds(meta["pad_token_id"], meta["cls_token_id"], meta["sep_token_id"],
                    meta["mask_token_id"], meta["vocab_size"])
    for mode in ("random", "unlike-mention"):
        ds = BatchDataset(args.shards, sp, 8, 0, 3, 0.15, mask_mentions=False,
                          num_batches=args.batches, bucket=64, centre_name=mode)
        spelled = total = 0
        for n in range(args.batches):
            batch = ds[n]
            ids, _ = _pad(ds._rows["sentences"].rows("input_ids", ds.indices(n)), sp.pad)
            mentions = ds._mention_strings(ids, batch)  # from the unmasked sentences
            for c, slot in enumerate(batch["centre"].tolist()):
                name = batch["name_input_ids"][batch["slot_name"][slot]].tolist()
                total += 1
                spelled += tuple(t for t in name if t not in (sp.cls, sp.sep, sp.pad)) \
                    in mentions[c]
        print(f"{mode}: {spelled} of {total} centre names spell a mention ({spelled / total:.0%})")


if __name__ == "__main__":
    main()
