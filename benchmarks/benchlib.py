"""Shared output of the benchmark scripts: one Markdown table row and a JSON line."""

from __future__ import annotations

import json
from pathlib import Path


def emit(result: dict, columns: dict[str, str], json_path: Path | None = None) -> None:
    """Print ``columns`` (key -> header) of ``result`` as a Markdown table (integers with
    thousands separators); append the whole result as a JSON line to ``json_path``."""
    def fmt(v):
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)

    print("| " + " | ".join(columns.values()) + " |")
    print("|" + "---|" * len(columns))
    print("| " + " | ".join(fmt(result[k]) for k in columns) + " |")
    if json_path:
        with open(json_path, "a") as fh:
            fh.write(json.dumps(result) + "\n")
