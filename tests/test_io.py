"""Atomic writes and checked reads."""

from __future__ import annotations

import polars as pl
import pytest

from bali.io import BaliInputError, atomic_paths, read_table, write_parquet
from bali.kg.prefixes import split_curie
from bali.kg.schema import XREFS


def test_atomic_paths_all_or_nothing(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old")
    with pytest.raises(RuntimeError), atomic_paths(a, b) as (ta, tb):
        ta.write_text("new")
        tb.write_text("new")
        raise RuntimeError("crash before the rename")
    assert a.read_text() == "old" and not b.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    with atomic_paths(a, b) as (ta, tb):
        ta.write_text("new")
        tb.write_text("new")
    assert a.read_text() == b.read_text() == "new"


def test_read_table_checks_schema(tmp_path):
    good = pl.DataFrame({"source": ["MSH"], "code": ["D1"], "cui": ["C0000001"], "extra": [1]})
    write_parquet(good, tmp_path / "x.parquet")
    assert read_table(tmp_path / "x.parquet", XREFS).columns == ["source", "code", "cui"]
    write_parquet(good.drop("cui"), tmp_path / "y.parquet")
    with pytest.raises(BaliInputError, match=r"y.parquet: missing column\(s\) cui"):
        read_table(tmp_path / "y.parquet", XREFS)
    write_parquet(good.with_columns(pl.col("code").cast(pl.Categorical)), tmp_path / "z.parquet")
    with pytest.raises(BaliInputError, match="wrong column type: code is Categorical"):
        read_table(tmp_path / "z.parquet", XREFS)
    (tmp_path / "n.parquet").write_text("not parquet")
    with pytest.raises(BaliInputError, match="not a readable Parquet file"):
        read_table(tmp_path / "n.parquet", XREFS)


@pytest.mark.parametrize(
    ("curie", "expected"),
    [
        ("MESH:D003920", ("MSH", "D003920")),
        ("mesh:D003920", ("MSH", "D003920")),
        ("mim:115000", ("OMIM", "115000")),
        ("OMIM:600807", ("OMIM", "600807")),
        ("HP:0000118", ("HPO", "HP:0000118")),
        ("NCBITaxon:9606", ("NCBI", "9606")),
        ("NCBI:txid9606", ("NCBI", "9606")),
        ("NCBIGene:7157", ("NCBIGENE", "7157")),
        ("EntrezGene:7157", ("NCBIGENE", "7157")),
        ("CHEBI:15377", ("CHEBI", "CHEBI:15377")),
        ("UMLS_CUI:C0263591", ("UMLS", "C0263591")),
        ("SNOMEDCT_US_2025_09_01:80258006", ("SNOMEDCT_US", "80258006")),
        ("GARD:6038", ("GARD", "6038")),
        ("no-colon", None),
        ("MESH:", None),
    ],
)
def test_split_curie(curie, expected):
    assert split_curie(curie) == expected
