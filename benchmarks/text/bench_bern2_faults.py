"""BERN2 client under persistent faults: seconds until ``bali text annotate`` gives up.

Four cases, each a ``python -m bali text annotate --annotator bern2`` subprocess on
``--docs`` synthetic documents with the default options (the table in benchmarks/README.md):
HTTP 500 on every request of the loopback stand-in server (``tests/bern2_standin.py``), a
URL without a scheme, a closed port, and SIGINT (Ctrl-C) once the workers hang in requests
to a server that delays a third of its answers by 60 s. Prints one Markdown row per case:
seconds, exit status, requests served, documents listed in ``--failed``, and the last line
of stderr (with whether a traceback was printed). Reports the load average.

    OMP_NUM_THREADS=1 python benchmarks/text/bench_bern2_faults.py --docs 1000
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: benchlib
import benchlib  # noqa: E402

benchlib.use_tests()
ROOT = benchlib.ROOT

from bern2_standin import Bern2StandIn, FaultPlan  # noqa: E402
from test_bern2 import annotate_argv, dead_url, write_docs  # noqa: E402


def run(tmp: Path, docs: Path, url: str, server=None, interrupt: bool = False) -> dict:
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    t0 = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "bali", *annotate_argv(tmp, docs, url)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if interrupt:  # wait until the workers block in hanging requests, then Ctrl-C
        time.sleep(3)
        t0 = time.monotonic()
        child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=900)
    seconds = time.monotonic() - t0
    failed = tmp / "failed.txt"
    lines = err.decode().strip().splitlines()
    return {"seconds": seconds, "rc": child.returncode,
            "requests": server.total_requests if server else 0,
            "failed": len(failed.read_text().split()) if failed.exists() else 0,
            "traceback": any(ln.startswith("Traceback") for ln in lines),
            "last": lines[-1][:120] if lines else ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1000)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| case | seconds | exit | requests | in --failed | traceback | last stderr line |")
    print("|---|---:|---:|---:|---:|---|---|")
    cases = [
        ("HTTP 500 on every request", lambda: Bern2StandIn(faults=FaultPlan(http_500=1.0))),
        ("URL without a scheme", None), ("nothing listening", None),
        ("Ctrl-C, server hanging", lambda: Bern2StandIn(faults=FaultPlan(slow=0.3, slow_s=60),
                                                        seed=3)),
    ]
    for name, make in cases:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            docs = write_docs(tmp, args.docs)
            if make is None:
                url = "127.0.0.1:8888" if "scheme" in name else dead_url()
                r = run(tmp, docs, url)
            else:
                with make() as server:
                    r = run(tmp, docs, server.url, server, interrupt="Ctrl-C" in name)
        print(f"| {name} | {r['seconds']:.2f} | {r['rc']} | {r['requests']} | {r['failed']} | "
              f"{'yes' if r['traceback'] else 'no'} | `{r['last']}` |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
