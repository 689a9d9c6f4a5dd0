"""``bali kg tables``: PrimeKG, Hetionet and custom node/edge tables -> the four KG tables."""

from __future__ import annotations

import gzip
import json

import polars as pl
import pytest

from bali.cli import main
from bali.io import BaliInputError
from bali.kg.schema import TABLES, table_paths
from bali.kg.tables import TablesOptions, build_tables

# PrimeKG kg.csv: its real header and row layout (a name with a comma is quoted)
_GENE, _DRUG = "gene/protein", "drug"
_F2 = f"2147,2147,{_GENE},F2,NCBI"
_LEPIRUDIN = f"14012,DB00001,{_DRUG},Lepirudin,DrugBank"
_OI = "27165,13924,disease,osteogenesis imperfecta type 13,MONDO"
_SKELETON = '22000,2360,effect/phenotype,"Abnormality, of the skeleton",HPO'
PRIMEKG = "\n".join([
    "relation,display_relation,x_index,x_id,x_type,x_name,x_source,"
    "y_index,y_id,y_type,y_name,y_source",
    f"protein_protein,ppi,0,9796,{_GENE},PHYHIP,NCBI,8889,56992,{_GENE},KIF15,NCBI",
    f"protein_protein,ppi,8889,56992,{_GENE},KIF15,NCBI,0,9796,{_GENE},PHYHIP,NCBI",
    f"drug_protein,target,{_LEPIRUDIN},{_F2}",
    f"disease_phenotype_positive,phenotype present,{_OI},{_SKELETON}",
    f"indication,indication,{_LEPIRUDIN},{_OI}",
    f"indication,indication,{_LEPIRUDIN},{_OI}",  # a duplicate
    f"phenotype_phenotype,parent-child,{_SKELETON},{_SKELETON}",  # a self-loop
]) + "\n"

HETIONET_NODES = """id\tname\tkind
Gene::9796\tPHYHIP\tGene
Compound::DB00795\tSulfasalazine\tCompound
Disease::DOID:9352\ttype 2 diabetes mellitus\tDisease
Side Effect::C0000727\tAbdominal pain "acute"\tSide Effect
"""
HETIONET_EDGES = """source\tmetaedge\ttarget
Compound::DB00795\tCtD\tDisease::DOID:9352
Compound::DB00795\tCcSE\tSide Effect::C0000727
Disease::DOID:9352\tDaG\tGene::9796
Gene::9796\tGiG\tGene::9796
Compound::DB00795\tCbG\tGene::1
"""


def read(out):
    return {t: pl.read_parquet(p) for t, p in table_paths(out).items()}


def test_primekg_kg_csv(tmp_path):
    kg = tmp_path / "kg.csv"
    kg.write_text(PRIMEKG)
    counts = build_tables(kg, tmp_path / "out", TablesOptions(mapping="primekg"))
    t = read(tmp_path / "out")
    assert t["concepts"].rows() == [
        ("DrugBank:DB00001", "Lepirudin", ["drug"]),
        ("HPO:2360", "Abnormality, of the skeleton", ["effect/phenotype"]),
        ("MONDO:13924", "osteogenesis imperfecta type 13", ["disease"]),
        ("NCBI:2147", "F2", ["gene/protein"]),
        ("NCBI:56992", "KIF15", ["gene/protein"]),
        ("NCBI:9796", "PHYHIP", ["gene/protein"]),
    ]
    assert t["edges"].select("head", "relation", "relation_attr", "tail").rows() == [
        ("DrugBank:DB00001", "drug_protein", "target", "NCBI:2147"),
        ("DrugBank:DB00001", "indication", "indication", "MONDO:13924"),
        ("MONDO:13924", "disease_phenotype_positive", "phenotype present", "HPO:2360"),
        ("NCBI:56992", "protein_protein", "ppi", "NCBI:9796"),
        ("NCBI:9796", "protein_protein", "ppi", "NCBI:56992"),
    ]
    assert set(t["edges"]["source"]) == {"PRIMEKG"}
    xrefs = set(t["xrefs"].rows())
    assert {("NCBIGENE", "9796", "NCBI:9796"), ("MONDO", "MONDO:0013924", "MONDO:13924"),
            ("HPO", "HP:0002360", "HPO:2360"), ("DRUGBANK", "DB00001", "DrugBank:DB00001")
            } <= xrefs
    assert t["names"].filter(pl.col("is_preferred")).height == 6
    assert counts["self_loops_dropped"] == 1 and counts["duplicate_edges_merged"] == 1
    assert counts["edges_unknown_end_dropped"] == 0 and counts["nodes_without_name"] == 0
    for name, schema in TABLES.items():
        assert dict(t[name].schema) == schema


def test_hetionet_nodes_and_gzipped_sif(tmp_path):
    nodes = tmp_path / "hetionet-v1.0-nodes.tsv"
    nodes.write_text(HETIONET_NODES)
    edges = tmp_path / "hetionet-v1.0-edges.sif.gz"
    edges.write_bytes(gzip.compress(HETIONET_EDGES.encode()))
    counts = build_tables(edges, tmp_path / "out", TablesOptions(mapping="hetionet"),
                          nodes_file=nodes)
    t = read(tmp_path / "out")
    concepts = {r[0]: r for r in t["concepts"].rows()}
    assert concepts["Side Effect::C0000727"][1:] == ('Abdominal pain "acute"', ["Side Effect"])
    assert t["edges"].select("head", "relation", "relation_attr", "tail").rows() == [
        ("Compound::DB00795", "CcSE", "causes", "Side Effect::C0000727"),
        ("Compound::DB00795", "CtD", "treats", "Disease::DOID:9352"),
        ("Disease::DOID:9352", "DaG", "associates", "Gene::9796"),
    ]
    assert counts["edges_unknown_end_dropped"] == 1 and counts["self_loops_dropped"] == 1
    xrefs = set(t["xrefs"].rows())
    assert {("NCBIGENE", "9796", "Gene::9796"), ("DRUGBANK", "DB00795", "Compound::DB00795"),
            ("DOID", "DOID:9352", "Disease::DOID:9352"),
            ("UMLS", "C0000727", "Side Effect::C0000727")} <= xrefs


def test_custom_mapping_parquet_with_synonyms(tmp_path):
    pl.DataFrame({"curie": ["MESH:D003920", "MESH:D007333", "X:1"],
                  "label": ["Diabetes Mellitus", "Insulin Resistance", None],
                  "syns": ["diabetes|DM", None, "x one"]}).write_parquet(tmp_path / "n.parquet")
    pl.DataFrame({"s": ["MESH:D007333", "MESH:D007333"], "p": ["risk_for", "risk_for"],
                  "o": ["MESH:D003920", "MESH:D000000"]}).write_parquet(tmp_path / "e.parquet")
    opts = TablesOptions(id_column="curie", name_column="label", synonyms_column="syns",
                         head_column="s", relation_column="p", tail_column="o", kg_name="MYKG")
    counts = build_tables(tmp_path / "e.parquet", tmp_path / "out", opts,
                          nodes_file=tmp_path / "n.parquet")
    t = read(tmp_path / "out")
    assert set(t["names"].select("cui", "name", "term_type", "is_preferred").rows()) == {
        ("MESH:D003920", "Diabetes Mellitus", "name", True),
        ("MESH:D003920", "diabetes", "synonym", False),
        ("MESH:D003920", "DM", "synonym", False),
        ("MESH:D007333", "Insulin Resistance", "name", True),
        ("X:1", "x one", "synonym", False),
    }
    assert t["concepts"].filter(pl.col("cui") == "X:1")["preferred_name"].item() == "X:1"
    assert t["edges"].rows() == [("MESH:D007333", "risk_for", None, "MESH:D003920", "MYKG")]
    assert ("MSH", "D003920", "MESH:D003920") in set(t["xrefs"].rows())
    assert counts["nodes_without_name"] == 1 and counts["edges_unknown_end_dropped"] == 1


def test_bad_tables_name_the_file(tmp_path):
    kg = tmp_path / "kg.csv"
    kg.write_text(PRIMEKG.replace("relation,display_relation", "rel,display_relation", 1))
    with pytest.raises(BaliInputError, match=r"kg.csv: missing column\(s\) relation"):
        build_tables(kg, tmp_path / "out", TablesOptions(mapping="primekg"))
    nodes = tmp_path / "nodes.tsv"
    nodes.write_text(HETIONET_NODES.replace("Gene::9796\t", "\t", 1))
    edges = tmp_path / "edges.sif"
    edges.write_text(HETIONET_EDGES)
    with pytest.raises(BaliInputError, match=r"nodes.tsv:2: empty id"):
        build_tables(edges, tmp_path / "out", TablesOptions(mapping="hetionet"), nodes)
    with pytest.raises(BaliInputError, match="needs a nodes file"):
        build_tables(edges, tmp_path / "out", TablesOptions(mapping="hetionet"))
    (tmp_path / "nodes.json").write_text("{}")
    with pytest.raises(BaliInputError, match="nodes.json: cannot tell the table format"):
        build_tables(edges, tmp_path / "out", TablesOptions(mapping="hetionet"),
                     nodes_file=tmp_path / "nodes.json")
    assert not (tmp_path / "out").exists()


def test_cli_kg_tables_writes_stats(tmp_path):
    kg = tmp_path / "kg.csv"
    kg.write_text(PRIMEKG)
    out = tmp_path / "out"
    assert main(["kg", "tables", "--edges", str(kg), "--mapping", "primekg",
                 "--out-dir", str(out)]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["source"] == "tables" and stats["options"]["mapping"] == "primekg"
    assert stats["counts"]["concepts"] == 6 and stats["counts"]["self_loops_dropped"] == 1
