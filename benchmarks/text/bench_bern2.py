"""Benchmark the BERN2 client's concurrency against the loopback stand-in server, or the
BERN2 dump reader through the text and sampling stages.

    python benchmarks/text/bench_bern2.py --docs 200 --latency 0.05 --workers 1 4 8
    python benchmarks/text/bench_bern2.py --dump 30000

``--dump N``: one dump file of N documents written by ``gen_bern2_dump.py`` (real abstracts,
real /plain annotations), then the pipeline's own stage commands, in this process, timed one
by one: ``bali text read --format bern2-dump`` -> ``bali text annotate --annotator bern2-dump``
(reads the mentions, maps them through a KG whose xrefs cover the dump's ids) -> ``bali text
sentences`` -> ``bali sample``. Prints a Markdown table of seconds per stage.

The stand-in (``tests/bern2_standin.py``, in this process, 127.0.0.1) answers each request
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: benchlib
import benchlib  # noqa: E402

benchlib.use_tests()  # the stand-in lives with the tests

import polars as pl  # noqa: E402
from bern2_standin import Bern2StandIn, FaultPlan  # noqa: E402

from bali.text.bern2 import Bern2Options, annotate_bern2  # noqa: E402
from bali.text.schema import make_document  # noqa: E402

ABSTRACTS = benchlib.ABSTRACTS


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
    ap.add_argument("--dump", type=int, metavar="N",
                    help="instead: the dump reader on one file of N documents, per stage")
    args = ap.parse_args(argv)
    if args.dump:
        return bench_dump(args.dump, args.json_out)

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


def _dump_kg(kg: Path, mentions: Path) -> int:
    """A KG whose xrefs map every prefixed id in ``mentions`` to a concept of its own."""
    from bali.io import write_parquet
    from bali.kg.schema import CONCEPTS, XREFS
    from bali.text.normalize import id_key

    ids = pl.read_parquet(mentions, columns=["source_ids"])["source_ids"].explode().drop_nulls()
    keys = sorted({k for k in map(id_key, ids.unique().to_list()) if k})
    cuis = [f"C{k:07d}" for k in range(len(keys))]
    write_parquet(pl.DataFrame({"source": [a for a, _ in keys], "code": [b for _, b in keys],
                                "cui": cuis}, schema=XREFS), kg / "xrefs.parquet")
    write_parquet(pl.DataFrame({"cui": cuis, "preferred_name": cuis,
                                "semantic_types": [[] for _ in cuis]}, schema=CONCEPTS),
                  kg / "concepts.parquet")
    return len(cuis)


def bench_dump(n_docs: int, json_out: Path | None) -> int:
    """Generate one dump file of ``n_docs`` documents and time the stages on it."""
    import logging
    import resource
    import subprocess

    from bali.cli import main as bali

    logging.getLogger("bali.text.bern2_dump").setLevel(logging.ERROR)  # the planted bad spans
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        dump, kg = d / "pubmed22n0001.json", d / "kg"
        t0 = time.perf_counter()
        gen = subprocess.run([sys.executable, str(HERE / "gen_bern2_dump.py"), "--docs",
                              str(n_docs), "--out", str(dump)], check=True,
                             capture_output=True, text=True)
        made = json.loads(gen.stdout)
        gen_s = time.perf_counter() - t0
        # the KG's xrefs come from the dump's ids (setup, not timed)
        from bali.text.bern2_dump import read_bern2_dump

        read_bern2_dump(dump)[1].write_parquet(d / "ids.parquet")
        n_concepts = _dump_kg(kg, d / "ids.parquet")
        stages = [
            ("read", ["text", "read", "--input", str(dump), "--format", "bern2-dump",
                      "--out", str(d / "documents.parquet"), "--deleted-out",
                      str(d / "deleted_pmids.txt")]),
            ("annotate", ["text", "annotate", "--annotator", "bern2-dump", "--corpus",
                          str(dump), "--documents", str(d / "documents.parquet"), "--kg-dir",
                          str(kg), "--out", str(d / "mentions.parquet"), "--report",
                          str(d / "annotate.json")]),
            ("sentences", ["text", "sentences", "--documents", str(d / "documents.parquet"),
                           "--mentions", str(d / "mentions.parquet"), "--out",
                           str(d / "sentences.parquet"), "--stats", str(d / "sentences.json")]),
            ("sample", ["sample", "--text-dir", str(d.parent), "--shards", d.name, "--kg-dir",
                        str(kg), "--out-dir", str(d / "sample")]),
        ]
        rows = []
        for name, argv in stages:
            t0 = time.perf_counter()
            rc = bali(argv)
            rows.append((name, time.perf_counter() - t0))
            if rc:
                print(f"stage {name} failed ({rc})", file=sys.stderr)
                return rc
        report = json.loads((d / "annotate.json").read_text())
        sentences = pl.read_parquet(d / "sentences.parquet", columns=["doc_id"]).height
        sampled = json.loads((d / "sample" / "sample_stats.json").read_text())
    dump_stats = report["annotator_report"]
    total = sum(s for _, s in rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nBERN2 dump: {n_docs} documents ({made['bytes'] / 1e6:.1f} MB, "
          f"{made['annotations']} annotations, generated in {gen_s:.1f} s), "
          f"{n_concepts} KG concepts, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, POLARS_MAX_THREADS="
          f"{os.environ.get('POLARS_MAX_THREADS', 'all')}\n")
    print("| stage | seconds | docs/s |")
    print("|---|---:|---:|")
    for name, sec in rows:
        print(f"| {name} | {sec:.2f} | {n_docs / sec:,.0f} |")
    print(f"| **total** | **{total:.2f}** | {n_docs / total:,.0f} |")
    print(f"\nmentions kept {dump_stats['mentions']}, bad spans dropped "
          f"{dump_stats['bad_spans']}, nested ids {dump_stats['nested_ids']}, mapped "
          f"{report['normalization']['mapped']}; sentences {sentences}; sampled "
          f"{sampled['sampled_sentences']}; peak RSS {peak:.0f} MB")
    if json_out:
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with open(json_out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"bench": "bern2_dump", "time": stamp, "docs": n_docs,
                                 "stages_s": dict(rows), "dump": dump_stats}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
