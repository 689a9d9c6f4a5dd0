"""The data figures of benchmarks/README.md "Disease configuration", from the real files.

    python benchmarks/linking/disease_overlap.py [--data ../shared/data] [--kg results/disease/kg]

1. The training text: PMIDs of the configured JSON-lines and PubTator corpora that are BC5CDR
   train, dev or test documents.
2. The refined BC5CDR-disease test set (``refine``: exact text, train/dev and MEDIC
   intersections removed) and how many of its mentions have a gold id that a concept of the
   disease KG cross-references (MeSH, or OMIM for a bare number): those concepts' names were
   trained on.
3. The dev split as validation reads it (unrefined), and what the test's refinement (train
   seen, MEDIC filter) would remove from it.

Needs ``snakemake --configfile config/disease.yaml --until build_kg`` for ``--kg``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import polars as pl
import yaml

from bali.evaluate.el_zeroshot import read_dictionary, read_mentions, refine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: benchlib
from benchlib import ROOT, SHARED  # noqa: E402


def _pmids(path: Path) -> set[str]:
    pattern = r"^(\d+)\|t\|" if path.suffix == ".pubtator" else r'"pmid": "(\d+)"'
    return set(re.findall(pattern, path.read_text(), re.M))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=SHARED)
    p.add_argument("--kg", type=Path, default=ROOT / "results/disease/kg")
    args = p.parse_args()
    el = args.data / "el"
    split = {s: read_mentions(el / f"bc5cdr-disease/{s}.concept")
             for s in ("train", "dev", "test")}
    docs = {s: set(m["doc_id"]) for s, m in split.items()}
    config = yaml.safe_load((ROOT / "config/disease.yaml").read_text())
    out = {"text": {}}
    for entry in config["text"]["corpus"]:
        if entry.endswith((".jsonl", ".pubtator")):
            pmids = _pmids((ROOT / entry).resolve())
            out["text"][Path(entry).name] = {"documents": len(pmids),
                                             **{s: len(pmids & d) for s, d in docs.items()}}
    medic = read_dictionary(el / "medic_06Jul2012.txt")
    test = refine(split["test"], [split["train"], split["dev"]], medic, match="exact",
                  filter_dictionary=True)
    xrefs = pl.read_parquet(args.kg / "xrefs.parquet")
    known = set(xrefs.filter(pl.col("source").is_in(["MSH", "OMIM"]))["code"])
    in_kg = sum(any(i in known for i in ids) for ids in test["ids"].to_list())
    out["test"] = {"refined": test.height, "gold_id_cross_referenced_by_kg": in_kg}
    stats: dict = {}
    dev_refined = refine(split["dev"], [split["train"]], medic, match="exact",
                         filter_dictionary=True, stats=stats)
    names = medic["name"].unique().to_list()
    out["dev"] = {"mentions": split["dev"].height, "refined": dev_refined.height, **stats,
                  "spelled_as_a_dictionary_name": int(split["dev"]["mention"].is_in(names).sum())}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
