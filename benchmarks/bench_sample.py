"""Balanced sampling at the paper's scale: generated sentences -> ``bali sample``.

    python benchmarks/bench_sample.py --sentences 1700000 --concepts 600000

Generates a ``sentences`` shard in the pipeline's schema: 8-40 words per sentence, 1-5
mentions per sentence, concepts drawn 60% Zipf-like (a few very frequent concepts, as
"patients" or "cancer" in PubMed) and 40% uniform (the long tail), plus 2% mentions of CUIs
that are not KG nodes; then runs ``bali sample`` in a subprocess and reports its wall time
and peak RSS (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of the finished child).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from benchlib import emit

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
    sentences.write_parquet(out / "sentences.parquet")
    concepts = pl.DataFrame({"cui": [f"C{i:07d}" for i in range(n_concepts)]}).with_columns(
        preferred_name=pl.col("cui"), semantic_types=pl.lit([], dtype=pl.List(pl.String)))
    (out / "kg").mkdir()
    concepts.write_parquet(out / "kg" / "concepts.parquet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1_700_000)
    parser.add_argument("--concepts", type=int, default=600_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="append the result as a JSON line here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        generate(args.sentences, args.concepts, args.seed, work)
        gen_s = time.perf_counter() - t0
        cmd = [sys.executable, "-m", "bali", "sample", "--sentences",
               str(work / "sentences.parquet"), "--kg-dir", str(work / "kg"),
               "--out-dir", str(work / "out")]
        t1 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              env=os.environ | {"POLARS_MAX_THREADS": "2"})
        wall = time.perf_counter() - t1
        if proc.returncode:
            print(proc.stderr[-2000:], file=sys.stderr)
            return proc.returncode
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        stats = json.loads((work / "out" / "sample_stats.json").read_text())
    result = {"sentences": args.sentences, "concepts": args.concepts,
              "generate_s": round(gen_s, 1), "wall_s": round(wall, 1),
              "peak_rss_mb": round(peak_mb), **{k: stats[k] for k in (
                  "candidate_sentences", "concepts_with_candidates", "sampled_sentences",
                  "concepts_above_k", "greedy_seconds")}}
    emit(result, {"sentences": "sentences", "concepts_with_candidates": "concepts w/ candidates",
                  "sampled_sentences": "sampled", "wall_s": "wall s",
                  "greedy_seconds": "greedy s", "peak_rss_mb": "peak RSS MB"}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
