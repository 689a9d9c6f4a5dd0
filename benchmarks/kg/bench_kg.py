"""Benchmark the UMLS -> KG stage: bali (polars) against a plain pandas implementation.

    python benchmarks/kg/bench_kg.py --conso-rows 2000000 --rel-rows 10000000 --threads 2

Steps: generate a synthetic META directory (``gen_umls_meta.py``; reused when the work
directory already holds one for the same sizes and seed), run ``build_umls`` and
``kg_pandas_reference.py`` on the same files, each in its own child process (``--repeat N``
alternates them N times and keeps each one's fastest run), check that their outputs are
equal, print a Markdown table and append one JSON line to ``benchmarks/out/kg_results.jsonl``.
Generated data is deleted at the end unless ``--keep-data``. ``--rss-limit-gb`` kills a
child that outgrows a shared machine.

Per child: wall time (from spawn to exit, interpreter start and imports included); rows/s
= (MRCONSO + MRREL rows) / wall; CPU time (user + sys, from ``os.wait4``); peak RSS as
``ru_maxrss`` from ``os.wait4`` (the kernel's high-water mark of the child; both children
are single processes) and, as a cross-check, the peak of the process tree's RSS polled
from ``/proc/<pid>/status`` every 0.1 s, split into anonymous and file-backed pages.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: benchlib
import benchlib  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = benchlib.OUT
RESULTS = OUT / "kg_results.jsonl"
BALI_CHILD = """
import json, logging, sys
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
from bali.kg.umls import UmlsOptions, build_umls
print(json.dumps(build_umls(sys.argv[1], sys.argv[2], UmlsOptions())))
"""


def _status_kb(pid: int) -> dict[str, int]:
    """VmRSS / RssAnon / RssFile of one process in kB (empty if it is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    out[key] = int(line.split()[1])
    except OSError:
        pass
    return out


def run_child(cmd: list[str], env: dict[str, str], log: Path,
              rss_limit_gb: float | None = None) -> dict[str, Any]:
    """Run ``cmd``; return wall/CPU time, peak RSS (wait4 and polled) and exit code.

    With ``rss_limit_gb`` the child is killed (SIGKILL) once its polled RSS exceeds it.
    """
    t0 = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        ps = psutil.Process(proc.pid)
        peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
        killed = False
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            try:
                pids = [proc.pid] + [c.pid for c in ps.children(recursive=True)]
            except psutil.Error:
                pids = [proc.pid]
            total = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
            for p in pids:
                for k, v in _status_kb(p).items():
                    total[k] += v
            peak = {k: max(peak[k], total[k]) for k in peak}
            if rss_limit_gb and total["VmRSS"] > rss_limit_gb * 2**20 and not killed:
                proc.kill()
                killed = True
            time.sleep(0.1)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "rc": proc.returncode,
        "killed_over_rss_limit": killed,
        "wall_s": round(wall, 2),
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
        "peak_rss_gb": round(ru.ru_maxrss / 2**20, 3),  # ru_maxrss is in KiB on Linux
        "polled_peak_rss_gb": round(peak["VmRSS"] / 2**20, 3),
        "polled_peak_anon_gb": round(peak["RssAnon"] / 2**20, 3),
        "polled_peak_file_gb": round(peak["RssFile"] / 2**20, 3),
    }


def machine() -> dict[str, Any]:
    """CPU model, cores, memory and library versions."""
    import numpy
    import pandas
    import polars
    import pyarrow

    model = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "mem_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "polars": polars.__version__,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "pyarrow": pyarrow.__version__,
    }


def fmt_rate(x: float) -> str:
    return f"{x / 1e6:.2f}M"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conso-rows", type=int, default=2_000_000)
    ap.add_argument("--rel-rows", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2,
                    help="POLARS_MAX_THREADS / OMP_NUM_THREADS for the children")
    ap.add_argument("--skip-pandas", action="store_true")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each implementation N times (alternating); report the fastest")
    ap.add_argument("--work", type=Path, default=None,
                    help="work directory (default benchmarks/out/kg-work-<sizes>)")
    ap.add_argument("--keep-data", action="store_true", help="keep generated files and outputs")
    ap.add_argument("--rss-limit-gb", type=float, default=None,
                    help="kill a child whose RSS exceeds this (protects a shared machine)")
    ap.add_argument("--note", default="", help="free text stored with the result")
    args = ap.parse_args(argv)

    tag = f"{args.conso_rows}-{args.rel_rows}-s{args.seed}"
    work = args.work or OUT / f"kg-work-{tag}"
    meta, outs = work / "meta", {"bali": work / "bali", "pandas": work / "pandas"}
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    logs = OUT / f"kg-logs-{tag}-{stamp}"
    logs.mkdir(parents=True)

    marker = meta / "generated.json"
    params = {"conso_rows": args.conso_rows, "rel_rows": args.rel_rows, "seed": args.seed}
    t0 = time.perf_counter()
    if marker.exists() and json.loads(marker.read_text()) == params:
        print(f"reusing {meta}")
        gen_s = None
    else:
        shutil.rmtree(meta, ignore_errors=True)
        print(f"generating {meta} ...", flush=True)
        subprocess.run([sys.executable, str(HERE / "gen_umls_meta.py"), "--out", str(meta),
                        "--conso-rows", str(args.conso_rows), "--rel-rows",
                        str(args.rel_rows), "--seed", str(args.seed)], check=True)
        marker.write_text(json.dumps(params))
        gen_s = round(time.perf_counter() - t0, 1)
    os.sync()  # flush the generated files so write-back does not overlap the timed runs
    data_gb = sum(f.stat().st_size for f in meta.glob("*.RRF")) / 1e9
    rows = args.conso_rows + args.rel_rows // 2 * 2

    env = os.environ | {
        "POLARS_MAX_THREADS": str(args.threads),
        "OMP_NUM_THREADS": str(args.threads),
        "PYTHONUNBUFFERED": "1",
    }
    cmds = {
        "bali": [sys.executable, "-c", BALI_CHILD, str(meta), str(outs["bali"])],
        "pandas": [sys.executable, str(HERE / "kg_pandas_reference.py"), "--meta", str(meta),
                   "--out-dir", str(outs["pandas"])],
    }
    runs: dict[str, list[dict[str, Any]]] = {}
    for rep in range(args.repeat):
        for impl, cmd in cmds.items():
            if impl == "pandas" and args.skip_pandas:
                continue
            if runs.get(impl) and runs[impl][-1]["rc"] != 0:
                continue  # failed or killed once: do not retry
            shutil.rmtree(outs[impl], ignore_errors=True)
            load = os.getloadavg()[0]
            print(f"running {impl} #{rep + 1} (load average {load:.2f}) ...", flush=True)
            log = logs / f"{impl}-{rep + 1}.log"
            r = run_child(cmd, env, log, args.rss_limit_gb)
            r["load_before"] = round(load, 2)
            r["load_after"] = round(os.getloadavg()[0], 2)
            r["rows_per_s"] = round(rows / r["wall_s"])
            runs.setdefault(impl, []).append(r)
            print(f"  {impl}: {r}", flush=True)
            if r["rc"] != 0:
                print(log.read_text()[-3000:])
    if runs["bali"][-1]["rc"] != 0:
        return 1
    # per implementation: the fastest successful run, peak RSS over all runs
    results: dict[str, dict[str, Any]] = {}
    for impl, rs in runs.items():
        ok = [r for r in rs if r["rc"] == 0] or rs
        results[impl] = min(ok, key=lambda r: r["wall_s"]) | {
            "peak_rss_gb": max(r["peak_rss_gb"] for r in rs),
            "wall_s_all": [r["wall_s"] for r in rs],
        }

    equal = None
    if results.get("pandas", {}).get("rc") == 0:
        check = subprocess.run([sys.executable, str(HERE / "kg_pandas_reference.py"), "--check",
                                str(outs["pandas"]), str(outs["bali"])],
                               capture_output=True, text=True, env=env)
        print(check.stdout.strip())
        equal = check.returncode == 0
    counts = json.loads((logs / "bali-1.log").read_text().strip().splitlines()[-1])

    print()
    print(f"MRCONSO {args.conso_rows:,} rows + MRREL {args.rel_rows:,} rows ({data_gb:.2f} GB),"
          f" threads={args.threads}, best of {args.repeat}, outputs equal: {equal}")
    print()
    print("| implementation | wall (s) | rows/s | CPU (s) | peak RSS (GB) | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    base = results.get("pandas", {}).get("wall_s") if equal else None
    for impl, r in results.items():
        speed = f"{base / r['wall_s']:.1f}x" if base else "-"
        status = "" if r["rc"] == 0 else " (failed)" if not r["killed_over_rss_limit"] else (
            f" (killed at {args.rss_limit_gb} GB)")
        print(f"| {impl}{status} | {r['wall_s']:.1f} | {fmt_rate(r['rows_per_s'])} | "
              f"{r['cpu_s']:.0f} | {r['peak_rss_gb']:.2f} | {speed} |")

    record = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        **params,
        "data_gb": round(data_gb, 2),
        "gen_s": gen_s,
        "threads": args.threads,
        "kg_counts": counts,
        "results": results,
        "repeat": args.repeat,
        "outputs_equal": equal,
        "machine": machine(),
        "note": args.note,
    }
    with open(RESULTS, "a") as fh:
        fh.write(json.dumps(record) + "\n")
    print(f"\nappended to {RESULTS}; logs in {logs}")
    if not args.keep_data:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if equal in (None, True) else 1


if __name__ == "__main__":
    sys.exit(main())
