"""What the benchmark scripts share: the repository's paths and one output format.

Each script of ``benchmarks/<stage>/`` starts with::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: benchlib
    import benchlib

so it runs as ``python benchmarks/<stage>/<script>.py`` from any directory, and imports
(``sys.path.insert(0, "benchmarks/text"); import gen_bern2_dump``) as well.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

#: the repository root
ROOT = Path(__file__).resolve().parents[1]
#: the real public data the benchmarks read (``$BALI_SHARED_DATA``, else ``../shared/data``)
SHARED = Path(os.environ.get("BALI_SHARED_DATA", ROOT.parent / "shared" / "data"))
#: the 1,000 real PubMed abstracts (JSON lines ``{pmid, title, abstract}``)
ABSTRACTS = SHARED / "bern2" / "pubmed_abstracts_1k.jsonl"
#: where results, logs and generated data go (git-ignored)
OUT = ROOT / "benchmarks" / "out"
#: the tests' directory: the BERN2 stand-in server and test helpers live there
TESTS = ROOT / "tests"


def use_tests() -> None:
    """Make ``tests/`` importable (``bern2_standin``, ``test_bern2``)."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))


def emit(result: dict, columns: dict[str, str], json_path: Path | None = None) -> None:
    """Print ``columns`` (key -> header) of ``result`` as a Markdown table (integers with
    thousands separators); append the whole result as a JSON line to ``json_path``."""
    def fmt(v):
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)

    print("| " + " | ".join(columns.values()) + " |")
    print("|" + "---|" * len(columns))
    print("| " + " | ".join(fmt(result[k]) for k in columns) + " |")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        with open(json_path, "a") as fh:
            fh.write(json.dumps(result) + "\n")
