"""UMLS RRF -> KG tables: real fixture rows, every filter with known answers, bad input."""

from __future__ import annotations

import shutil

import polars as pl
import pytest
from conftest import conso, rel, rrf_line, sty, write_meta

from bali.io import BaliInputError
from bali.kg.schema import TABLES, table_paths
from bali.kg.umls import UmlsOptions, build_umls

A, B, C, D = "C0000001", "C0000002", "C0000003", "C0000004"


def read(out):
    return {t: pl.read_parquet(p) for t, p in table_paths(out).items()}


@pytest.fixture
def meta(tmp_path):
    """A small META directory exercising every filter."""
    conso_rows = [
        conso(A, "alpha syndrome", aui="A10", tty="PT", code="D001"),
        conso(A, "Alpha", ts="S", stt="VO", ispref="N", aui="A11", tty="SY", code="D001"),
        conso(A, "alpha syndrome", sab="SNOMEDCT_US", aui="A12", code="123"),  # dup (cui, name)
        conso(A, "síndrome alfa", lat="SPA", sab="MSHSPA", aui="A13"),
        conso(B, 'beta "quoted" disease', aui="A20", code="D002"),
        conso(B, "beta obsolete", aui="A21", suppress="O"),
        conso(B, "beta from MDR", sab="MDR", aui="A22", code="100"),
        conso(C, "gamma", ts="S", stt="VO", ispref="N", aui="A31", code="NOCODE"),
        conso(C, "gamma preferred", ts="P", stt="VC", ispref="Y", aui="A32", code="NOCODE"),
        conso(D, "delta suppressed only", aui="A40", suppress="E"),
    ]
    rel_rows = [
        rel(A, "CHD", B, rela="isa"),          # B isa A   -> (B, CHD, isa, A)
        rel(A, "CHD", B, rela="isa", sab="SNOMEDCT_US"),  # duplicate from another SAB
        rel(B, "PAR", A, rela="inverse_isa"),
        rel(A, "RO", C, rela="has_finding_site"),
        rel(A, "SIB", C),
        rel(A, "RO", A, rela="self"),          # self-loop
        rel(A, "RO", D),                       # D has no kept names -> dropped
        rel(A, "RO", "C9999999"),              # unknown CUI -> dropped
        rel(B, "RB", C, sab="MDR"),
        rel(B, "RN", C, suppress="O"),
    ]
    sty_rows = [sty(A, "T047", "Disease or Syndrome"), sty(A, "T191", "Neoplastic Process"),
                sty(B, "T047", "Disease or Syndrome")]
    return write_meta(tmp_path / "META", conso_rows, rel_rows, sty_rows)


def test_default_filters_known_answer(meta, tmp_path):
    counts = build_umls(meta, tmp_path / "kg", UmlsOptions())
    t = read(tmp_path / "kg")
    assert t["concepts"].rows() == [
        (A, "alpha syndrome", ["Disease or Syndrome", "Neoplastic Process"]),
        (B, 'beta "quoted" disease', ["Disease or Syndrome"]),
        (C, "gamma preferred", []),
    ]
    names = {(r["cui"], r["name"]): r for r in t["names"].iter_rows(named=True)}
    assert set(names) == {(A, "alpha syndrome"), (A, "Alpha"), (B, 'beta "quoted" disease'),
                          (B, "beta from MDR"), (C, "gamma"), (C, "gamma preferred")}
    assert names[(A, "alpha syndrome")]["source"] == "MSH"  # best-ranked atom wins the dedupe
    assert names[(A, "alpha syndrome")]["is_preferred"]
    assert not names[(A, "Alpha")]["is_preferred"]
    assert t["edges"].rows() == [
        (A, "PAR", "inverse_isa", B, "MSH"),
        (B, "CHD", "isa", A, "MSH"),
        (C, "RB", None, B, "MDR"),
        (C, "RO", "has_finding_site", A, "MSH"),
        (C, "SIB", None, A, "MSH"),
    ]
    assert t["xrefs"].rows() == [("MDR", "100", B), ("MSH", "D001", A), ("MSH", "D002", B),
                                 ("SNOMEDCT_US", "123", A)]
    assert counts == {"concepts": 3, "names": 6, "edges": 5, "xrefs": 4,
                      "edges_unknown_end_dropped": 2, "self_loops_dropped": 1}
    for name, schema in TABLES.items():
        assert dict(t[name].schema) == schema


def test_language_and_source_filters(meta, tmp_path):
    build_umls(meta, tmp_path / "kg", UmlsOptions(languages=("SPA",)))
    t = read(tmp_path / "kg")
    assert t["names"]["name"].to_list() == ["síndrome alfa"]
    assert t["edges"].height == 0  # only A is left: no edge has two kept ends

    build_umls(meta, tmp_path / "kg2", UmlsOptions(sab_include=("MSH",)))
    t = read(tmp_path / "kg2")
    assert set(t["names"]["source"]) == {"MSH"}
    assert "SNOMEDCT_US" not in set(t["edges"]["source"]) and "MDR" not in set(
        t["edges"]["source"])

    build_umls(meta, tmp_path / "kg3", UmlsOptions(sab_exclude=("MDR",)))
    t = read(tmp_path / "kg3")
    assert "beta from MDR" not in t["names"]["name"].to_list()
    assert (C, "RB", None, B, "MDR") not in t["edges"].rows()


def test_suppression_flag(meta, tmp_path):
    build_umls(meta, tmp_path / "kg", UmlsOptions(keep_suppressed=True))
    t = read(tmp_path / "kg")
    assert {"beta obsolete", "delta suppressed only"} <= set(t["names"]["name"])
    assert D in t["concepts"]["cui"].to_list()
    assert (D, "RO", None, A, "MSH") in t["edges"].rows()
    assert (C, "RN", None, B, "MSH") in t["edges"].rows()


def test_relation_filters(meta, tmp_path):
    build_umls(meta, tmp_path / "a", UmlsOptions(rel_exclude=("SIB", "RO")))
    assert set(read(tmp_path / "a")["edges"]["relation"]) == {"CHD", "PAR", "RB"}
    build_umls(meta, tmp_path / "b", UmlsOptions(rel_include=("RO",)))
    assert read(tmp_path / "b")["edges"]["relation_attr"].to_list() == ["has_finding_site"]
    build_umls(meta, tmp_path / "c", UmlsOptions(rela_include=("isa",)))
    assert read(tmp_path / "c")["edges"].rows() == [(B, "CHD", "isa", A, "MSH")]
    build_umls(meta, tmp_path / "d", UmlsOptions(rela_exclude=("isa", "inverse_isa")))
    assert set(read(tmp_path / "d")["edges"]["relation"]) == {"RB", "RO", "SIB"}


def test_output_is_byte_identical_across_runs(meta, tmp_path):
    build_umls(meta, tmp_path / "x", UmlsOptions())
    build_umls(meta, tmp_path / "y", UmlsOptions())
    for t in TABLES:
        assert (tmp_path / "x" / f"{t}.parquet").read_bytes() == (
            tmp_path / "y" / f"{t}.parquet").read_bytes()


def test_real_fixture_rows(shared_data, tmp_path):
    fixture = shared_data("umls-fixture")
    meta = tmp_path / "META"
    meta.mkdir()
    for name in ("MRCONSO.RRF", "MRSTY.RRF"):
        shutil.copy(fixture / name, meta / name)
    (meta / "MRREL.RRF").write_text(rel("C0000005", "RO", "C0000039", rela="related_to"))
    build_umls(meta, tmp_path / "kg", UmlsOptions())
    t = read(tmp_path / "kg")
    concepts = {r[0]: r for r in t["concepts"].rows()}
    assert concepts["C0000005"][1] == "(131)I-Macroaggregated Albumin"
    assert "Amino Acid, Peptide, or Protein" in concepts["C0000005"][2]
    assert concepts["C0000039"][1] == "1,2-Dipalmitoylphosphatidylcholine"
    assert ("MSH", "D012711", "C0000005") in t["xrefs"].rows()
    assert t["edges"].rows() == [("C0000039", "RO", "related_to", "C0000005", "MSH")]


# ---- bad input: one line naming file, line and problem; no partial output -----------------

def _expect_error(meta, tmp_path, fragment, line=None):
    out = tmp_path / "kg"
    with pytest.raises(BaliInputError) as info:
        build_umls(meta, out, UmlsOptions())
    message = str(info.value)
    assert "\n" not in message
    assert fragment in message
    if line is not None:
        assert info.value.line == line
    assert not out.exists() or not any(out.iterdir())  # no partial output
    return info.value


def test_missing_file(meta, tmp_path):
    (meta / "MRREL.RRF").unlink()
    err = _expect_error(meta, tmp_path, "file not found")
    assert err.path.endswith("MRREL.RRF")


def test_empty_file(meta, tmp_path):
    (meta / "MRSTY.RRF").write_text("")
    err = _expect_error(meta, tmp_path, "file is empty")
    assert err.path.endswith("MRSTY.RRF")


def test_too_many_fields(meta, tmp_path):
    lines = (meta / "MRREL.RRF").read_text().splitlines(keepends=True)
    lines.insert(3, rrf_line([A, "A1", "SCUI", "RO", B] + [""] * 12))
    (meta / "MRREL.RRF").write_text("".join(lines))
    err = _expect_error(meta, tmp_path, "expected 16 '|'-terminated fields, found 17", line=4)
    assert err.path.endswith("MRREL.RRF")


def test_too_few_fields(meta, tmp_path):
    lines = (meta / "MRCONSO.RRF").read_text().splitlines(keepends=True)
    lines[5] = "|".join(lines[5].split("|")[:10] + lines[5].split("|")[11:])  # drop one field
    (meta / "MRCONSO.RRF").write_text("".join(lines))
    err = _expect_error(meta, tmp_path, "found 17", line=6)
    assert err.path.endswith("MRCONSO.RRF")


def test_not_utf8(meta, tmp_path):
    data = (meta / "MRCONSO.RRF").read_bytes().splitlines(keepends=True)
    data[1] = data[1].replace(b"Alpha", b"Alph\xe9")  # latin-1 byte
    (meta / "MRCONSO.RRF").write_bytes(b"".join(data))
    err = _expect_error(meta, tmp_path, "not UTF-8", line=2)
    assert err.path.endswith("MRCONSO.RRF")


def test_failed_run_keeps_previous_outputs(meta, tmp_path):
    out = tmp_path / "kg"
    build_umls(meta, out, UmlsOptions())
    before = {t: p.read_bytes() for t, p in table_paths(out).items()}
    (meta / "MRSTY.RRF").write_text(rrf_line([A, "T047", "A1"]))  # too few fields
    with pytest.raises(BaliInputError):
        build_umls(meta, out, UmlsOptions())
    assert {t: p.read_bytes() for t, p in table_paths(out).items()} == before
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.parquet" for t in TABLES)


def test_chunked_writes_are_byte_identical(meta, tmp_path, monkeypatch):
    """Row groups of a fixed size (here 2 rows, so every table spans several) give the same
    bytes on every run; the edges table, written slice by slice, included."""
    import pyarrow.parquet as pq

    from bali.kg import umls as umls_module

    write_kg = umls_module.write_kg
    monkeypatch.setattr(umls_module, "write_kg",
                        lambda *a, **kw: write_kg(*a, **(kw | {"row_group_size": 2})))
    build_umls(meta, tmp_path / "x", UmlsOptions())
    build_umls(meta, tmp_path / "y", UmlsOptions())
    assert pq.ParquetFile(tmp_path / "x" / "edges.parquet").num_row_groups == 3
    for t in TABLES:
        assert (tmp_path / "x" / f"{t}.parquet").read_bytes() == (
            tmp_path / "y" / f"{t}.parquet").read_bytes()
    assert read(tmp_path / "x")["edges"].height == 5


def test_mrrel_rows_naming_unknown_cuis_are_counted_in_stats_json(meta, tmp_path):
    """MRREL rows whose CUI has no kept MRCONSO name (C9999999 absent, D only suppressed)
    and self-loops are dropped, and counted in stats.json as the OBO source counts them."""
    import json

    from bali.cli import main

    assert main(["kg", "umls", "--meta", str(meta), "--out-dir", str(tmp_path / "kg")]) == 0
    counts = json.loads((tmp_path / "kg" / "stats.json").read_text())["counts"]
    assert counts["edges_unknown_end_dropped"] == 2 and counts["self_loops_dropped"] == 1
    kept_d = build_umls(meta, tmp_path / "kg2", UmlsOptions(keep_suppressed=True))
    assert kept_d["edges_unknown_end_dropped"] == 1  # D is a concept now
