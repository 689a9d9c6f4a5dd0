"""bali evaluate geometry: hand-computed metrics, the seeded draw, and the CLI end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import polars as pl
import pytest
import torch

from bali.evaluate.geometry import GeometryOptions, draw_names, geometry_metrics


def test_metrics_by_hand():
    # names 0,1 of concept A at 0 and 90 degrees; name 2 of concept B at 180 degrees
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    m = geometry_metrics(v, torch.tensor([0, 0, 1]))
    # P = {(0,1),(1,0)}: cos 0, ||.||^2 = 2 -> alignment 2, intra_cos 0
    assert m["alignment"] == pytest.approx(2.0)
    assert m["intra_cos"] == pytest.approx(0.0)
    # N = {(0,2),(2,0),(1,2),(2,1)}: cos -1, 0, -> mean -0.5
    assert m["inter_cos"] == pytest.approx(-0.5)
    assert m["gap"] == pytest.approx(0.5)
    # all 6 ordered pairs: sq = 2 (0-1), 4 (0-2), 2 (1-2), each twice
    assert m["uniformity"] == pytest.approx(math.log((2 * math.exp(-4) * 2 + 2 * math.exp(-8))
                                                      / 6))


def test_draw_is_seeded_and_needs_synonyms():
    d = pl.DataFrame({"name": ["a", "b", "c", "d", "e"],
                      "ids": [["X"], ["X"], ["Y"], ["Z"], ["Z"]]})
    opts = GeometryOptions(max_concepts=5, max_names_per_concept=4)
    drawn = draw_names(d, opts, 0)
    assert sorted(drawn["name"].to_list()) == ["a", "b", "d", "e"]  # Y has one name
    assert drawn.equals(draw_names(d, opts, 0))
    assert drawn["concept"].n_unique() == 2
    with pytest.raises(ValueError, match="two names"):
        draw_names(d.filter(pl.col("ids").list.first() == "Y"), opts, 0)


def test_cli_end_to_end(tmp_path, tiny_bert):
    lines = ["X||fever|pyrexia|high temperature", "Y||cough|tussis", "Z||rash"]
    model = tiny_bert([n for ln in lines for n in ln.split("||")[1].split("|")] * 5)
    (tmp_path / "dict.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "g.json"
    subprocess.run([sys.executable, "-m", "bali", "evaluate", "geometry", "--model", str(model),
                    "--dictionary", str(tmp_path / "dict.txt"), "--out", str(out)], check=True)
    rec = json.loads(out.read_text())
    assert rec["task"] == "geometry" and rec["counts"] == {"concepts": 2, "names": 5}
    m = rec["metrics"]
    assert 0 <= m["alignment"] <= 4 and m["uniformity"] <= 0
    assert m["gap"] == pytest.approx(m["intra_cos"] - m["inter_cos"])
