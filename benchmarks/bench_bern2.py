"""Benchmark the BERN2 client's concurrency against the loopback stand-in server.

    python benchmarks/bench_bern2.py --docs 200 --latency 0.05 --workers 1 4 8

The stand-in (``bali.text.bern2_standin``, in this process, 127.0.0.1) answers each request
after ``--latency`` seconds, like a remote BERN2 whose model time dominates. Each worker count
annotates the same documents (the first ``--docs`` real abstracts of
``../shared/data/bern2/pubmed_abstracts_1k.jsonl``, or synthetic ones if absent) into a fresh
cache; wall time covers ``annotate_bern2`` only (no server start). Prints a Markdown table:
docs/s and speed-up over the first worker count; with ``--faults`` a share of requests gets
injected faults (as in the tests). ``--json-out`` appends one JSON line per run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import polars as pl  # noqa: E402

from bali.text.bern2 import Bern2Options, annotate_bern2  # noqa: E402
from bali.text.bern2_standin import Bern2StandIn, FaultPlan  # noqa: E402
from bali.text.schema import make_document  # noqa: E402

HERE = Path(__file__).resolve().parent
ABSTRACTS = Path(os.environ.get("BALI_SHARED_DATA", HERE.parent.parent / "shared" / "data")) / (
    "bern2/pubmed_abstracts_1k.jsonl")


def load_docs(n: int) -> tuple[pl.DataFrame, str]:
    """The first ``n`` real abstracts, or ``n`` synthetic documents if the file is absent."""
    if ABSTRACTS.exists():
        rows = []
        with open(ABSTRACTS, encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                rows.append(make_document(str(r["pmid"]), r["title"], r["abstract"]))
                if len(rows) >= n:
                    break
        return pl.DataFrame(rows), f"real PubMed abstracts ({ABSTRACTS.name})"
    text = "insulin therapy in patients with breast cancer and p53 mutation in HeLa cells. "
    rows = [make_document(f"s{i}", f"Study {i}", text * (8 + i % 8)) for i in range(n)]
    return pl.DataFrame(rows), "synthetic documents"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--latency", type=float, default=0.05, help="server latency per request (s)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--faults", type=float, default=0.0, help="share of faulty requests")
    ap.add_argument("--json-out", type=Path, help="append one JSON line per run here")
    args = ap.parse_args(argv)

    docs, source = load_docs(args.docs)
    faults = FaultPlan.uniform(args.faults, slow_s=1.0) if args.faults else FaultPlan()
    rows = []
    with Bern2StandIn(latency_s=args.latency, faults=faults) as server:
        for workers in args.workers:
            opts = Bern2Options(url=server.url, workers=workers, timeout_s=0.5,
                                backoff_s=0.01, backoff_max_s=0.1)
            server.reset_counts()
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                result = annotate_bern2(docs, Path(tmp) / "cache.jsonl", opts, progress=False)
                wall = time.perf_counter() - t0
            if result.failed or result.done != docs.height:
                print(f"workers={workers}: {result.report()}", file=sys.stderr)
                return 1
            rows.append({"workers": workers, "docs": docs.height, "wall_s": wall,
                         "docs_per_s": docs.height / wall, "requests": server.total_requests,
                         "mentions": result.mentions.height})
    base = rows[0]["docs_per_s"]
    print(f"BERN2 client vs stand-in: {docs.height} {source}, latency {args.latency * 1000:.0f} "
          f"ms, faults {args.faults:.0%}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}\n")
    print("| workers | docs | requests | wall (s) | docs/s | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        r["speedup"] = r["docs_per_s"] / base
        print(f"| {r['workers']} | {r['docs']} | {r['requests']} | {r['wall_s']:.2f} | "
              f"{r['docs_per_s']:.1f} | {r['speedup']:.2f}x |")
    if args.json_out:
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with open(args.json_out, "a", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({"bench": "bern2", "time": stamp, "latency_s": args.latency,
                                     "faults": args.faults, "source": source, **r}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
