"""The table of benchmarks/README.md "Paper variants": per variant run, dev Acc@1/@5 at each
validated step, the dev alignment accuracy at the last one, and the run's elapsed seconds.

    python benchmarks/variants_table.py [--runs results/variants/pretrain/minilm]

Reads each run's ``metrics.jsonl`` (``metrics.live.jsonl`` for an unfinished run), in the
order of ``config/variants.yaml``; prints one Markdown row per run. A resumed run restarts its
``elapsed_s`` clock: its time is the sum over segments (steps redone after a resume
included), and the row says how many segments.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def row(name: str, run: Path) -> str:
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=ROOT / "results/variants/pretrain/minilm")
    args = p.parse_args()
    variants = yaml.safe_load((ROOT / "config/variants.yaml").read_text())["variants"]
    for name in variants:
        if (args.runs / name).is_dir():
            print(row(name, args.runs / name))


if __name__ == "__main__":
    main()
