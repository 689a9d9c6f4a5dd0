"""``bali`` command line: one sub-command per pipeline stage.

Every stage reads and writes documented files, so each runs alone (``bali kg obo --help``;
every module that registers commands has one ``add_parser(subparsers)``)
and Snakemake rules are thin calls of these commands. Bad input ends with one line
``bali: error: <file>[:<line>]: <what>`` and exit status 2; no partial output is left.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bali import __version__
from bali.errors import BaliError

log = logging.getLogger("bali")


def _config_check(args: argparse.Namespace) -> None:
    from bali.config import load_config

    config = load_config(args.config, args.schema) if args.schema else load_config(args.config)
    print(json.dumps(config, indent=2))


#: the module that registers each command (``add_parser``); ``bali CMD`` imports only its own,
#: so a command that needs no model imports no torch
COMMANDS = {"kg": "kg", "text": "text", "sample": "sample", "subgraphs": "sample",
            "tokenize": "sample", "pretrain": "train", "export": "train", "card": "train",
            "evaluate": "evaluate", "report": "report"}
STAGE_ORDER = ("kg", "text", "sample", "train", "evaluate", "report")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or, when ``argv`` names one, of that command's stage."""
    import importlib

    command = next((a for a in argv or () if not a.startswith("-")), None)
    stage = COMMANDS.get(command) if command != "config" else ()
    parser = argparse.ArgumentParser(prog="bali", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"bali {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    stages = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name in STAGE_ORDER if stage is None else (stage,) if stage else ():
        importlib.import_module(f"bali.{name}.commands").add_parser(stages)

    cfg = stages.add_parser("config", help="validate a workflow config file")
    cfg_cmds = cfg.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = cfg_cmds.add_parser("check", help="validate, fill defaults and print as JSON")
    check.add_argument("config", type=Path)
    check.add_argument("--schema", type=Path, help="JSON schema (default: the workflow's)")
    check.set_defaults(func=_config_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        args.func(args)
    except BaliError as err:  # the one error path (bali.errors)
        print(f"bali: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
