"""Balanced sampling at the paper's scale: generated sentences -> ``bali sample``.

    python benchmarks/sample/bench_sample.py --sentences 1700000 --concepts 600000

Generates a ``sentences`` shard in the pipeline's schema: 8-40 words per sentence, 1-5
mentions per sentence, concepts drawn 60% Zipf-like (a few very frequent concepts, as
"patients" or "cancer" in PubMed) and 40% uniform (the long tail), plus 2% mentions of CUIs
that are not KG nodes; then runs ``bali sample`` in a subprocess once per ``--strategies``
(default both, ``union`` and ``greedy``, alternately on the same shard) and reports, per
strategy, the sampled sentence count, wall time, balance-step time and peak RSS
(``ru_maxrss`` of that child, read in a fresh ``getrusage`` child of its own), with the
load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from bali.text.schema import SENTENCES


def generate(n_sent: int, n_concepts: int, seed: int, out: Path) -> None:
    """Write a sentences shard and a KG concepts table into ``out``."""
    rng = np.random.default_rng(seed)
    n_mentions = rng.integers(1, 6, size=n_sent)
    total = int(n_mentions.sum())
    zipf = np.minimum(rng.zipf(1.3, size=total) - 1, n_concepts - 1)
    uniform = rng.integers(0, n_concepts, size=total)
    concept = np.where(rng.random(total) < 0.6, zipf, uniform)
    foreign = rng.random(total) < 0.02
    cui = pl.Series(concept).cast(pl.String).str.zfill(7)
    cui = pl.select(pl.when(pl.Series(foreign)).then(pl.lit("X") + cui)
                    .otherwise(pl.lit("C") + cui)).to_series()
    sent = np.repeat(np.arange(n_sent), n_mentions)
    start = rng.integers(0, 40, size=total).astype(np.int32)
    mentions = (
        pl.DataFrame({"s": sent, "start": start, "end": start + 5, "cui": cui})
        .group_by("s", maintain_order=True)
        .agg(mentions=pl.struct("start", "end", "cui"))
    )
    words = rng.integers(8, 41, size=n_sent)
    sentences = pl.DataFrame({"s": np.arange(n_sent), "w": words}).select(
        doc_id=(pl.col("s") // 10).cast(pl.String),
        sentence_id=(pl.col("s") % 10).cast(pl.Int32),
        start=pl.lit(0, pl.Int32),
        end=(pl.col("w") * 6).cast(pl.Int32),
        text=pl.lit("token").repeat_by(pl.col("w")).list.join(" "),
        s=pl.col("s"),
    ).join(mentions, on="s").select(list(SENTENCES))
    shard = out / "text" / "s0"  # one text shard as the text stage leaves it
    shard.mkdir(parents=True)
    sentences.write_parquet(shard / "sentences.parquet")
    docs = sentences.select("doc_id").unique()
    docs.with_columns(title=pl.lit(""), text=pl.lit("")).write_parquet(shard / "documents.parquet")
    (shard / "deleted_pmids.txt").write_text("")
    concepts = pl.DataFrame({"cui": [f"C{i:07d}" for i in range(n_concepts)]}).with_columns(
        preferred_name=pl.col("cui"), semantic_types=pl.lit([], dtype=pl.List(pl.String)))
    (out / "kg").mkdir()
    concepts.write_parquet(out / "kg" / "concepts.parquet")


def run_sample(work: Path, strategy: str) -> dict:
    """One ``bali sample`` child; its stats, wall time and peak RSS."""
    out = work / f"out_{strategy}"
    cmd = [sys.executable, "-m", "bali", "sample", "--text-dir", str(work / "text"),
           "--shards", "s0", "--kg-dir", str(work / "kg"),
           "--out-dir", str(out), "--strategy", strategy]
    # a wrapper child reports the sampler's own ru_maxrss (RUSAGE_CHILDREN is cumulative max)
    wrapper = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)"
               "; sys.exit(p.returncode)")
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True,
                          env=os.environ | {"POLARS_MAX_THREADS": "2"})
    wall = time.perf_counter() - t
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    stats = json.loads((out / "sample_stats.json").read_text())
    return {"strategy": strategy, "wall_s": round(wall, 1),
            "peak_rss_mb": round(int(proc.stderr.split()[-1]) / 1024),
            **{k: stats[k] for k in ("candidate_sentences", "concepts_with_candidates", "draws",
                                     "sampled_sentences", "concepts_above_k", "balance_seconds",
                                     "seconds")}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1_700_000)
    parser.add_argument("--concepts", type=int, default=600_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategies", nargs="+", default=["union", "greedy"],
                        choices=["union", "greedy"])
    parser.add_argument("--json", type=Path, help="append each result as a JSON line here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        generate(args.sentences, args.concepts, args.seed, work)
        gen_s = time.perf_counter() - t0
        load_before = os.getloadavg()
        try:
            runs = [run_sample(work, strategy) for strategy in args.strategies]
        except RuntimeError as err:
            print(err, file=sys.stderr)
            return 1
        load_after = os.getloadavg()
    common = {"sentences": args.sentences, "concepts": args.concepts,
              "generate_s": round(gen_s, 1),
              "loadavg_before": [round(x, 2) for x in load_before],
              "loadavg_after": [round(x, 2) for x in load_after]}
    columns = {"strategy": "strategy", "sentences": "sentences",
               "concepts_with_candidates": "concepts w/ candidates", "draws": "draws",
               "sampled_sentences": "sampled", "concepts_above_k": "concepts above k",
               "wall_s": "wall s", "balance_seconds": "balance s", "peak_rss_mb": "peak RSS MB"}
    print("| " + " | ".join(columns.values()) + " |")
    print("|" + "---|" * len(columns))
    for run in runs:
        row = common | run
        print("| " + " | ".join(f"{row[k]:,}" if isinstance(row[k], int) else str(row[k])
                                for k in columns) + " |")
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(json.dumps(row) + "\n")
    print(f"load average before {common['loadavg_before']}, after {common['loadavg_after']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
