"""The table rows that benchmarks/README.md quotes and that the benchmark scripts print from run
files, on small hand-made inputs: ``what_moves_linking.py --variants`` ("Paper variants") and
``dev_check.py --full``/``--seen-steps`` (the seed spread and the seen-concept split)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(relpath: str):
    path = ROOT / "benchmarks" / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def test_variant_row_from_a_resumed_run(tmp_path):
    wml = _load("train/what_moves_linking.py")
    rows = [{"step": 0, "dev_acc1": 0.5048, "dev_acc5": 0.7698, "elapsed_s": 1.0}]
    rows += [{"step": s, "loss": 1.0, "elapsed_s": 2.0 * s} for s in range(1, 51)]
    rows[-1] |= {"dev_acc1": 0.5222, "dev_acc5": 0.7776}
    rows += [{"step": s, "loss": 1.0, "elapsed_s": 3.0 * (s - 50)} for s in range(51, 101)]
    rows[-1] |= {"dev_acc1": 0.5184, "dev_acc5": 0.7795, "dev_align_acc": 0.89}
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # a resume restarts the clock: 100 s + 150 s over two segments
    assert wml.variant_row("gat", tmp_path) == (
        "| gat | 52.22 / 77.76 | 51.84 / 77.95 | 0.89 | 250 (2 segments) |")


def test_full_dictionary_and_seen_concept_rows():
    dev_check = _load("linking/dev_check.py")
    ids = ["a||C1", "b||C2", "c||C3", "d||C4"]
    base = {"items": {"id": ids, "hit@1": [0, 1, 0, 1], "hit@5": [1, 1, 0, 1]},
            "metrics": {"acc@1": 0.5, "acc@5": 0.75}}
    bali = {"items": {"id": ids, "hit@1": [1, 0, 1, 1], "hit@5": [1, 1, 1, 1]},
            "metrics": {"acc@1": 0.75, "acc@5": 1.0}}
    row = dev_check.full_row("m", "dev", base, bali).split(" | ")
    assert row[1:4] == ["dev", "50.00 / 75.00", "75.00 / 100.00"]
    assert row[4].startswith("+25.00 [") and row[5].startswith("+25.00 [")
    assert dev_check.seen_rows("test", base, bali, {"C1", "C4"}) == [
        "| test | yes | 2 | 1 | 0 | +1 (+25.00) |", "| test | no | 2 | 1 | 1 | +0 (+0.00) |"]
