"""Canonical external-id sources, shared by the KG builders and the text normaliser.

An id such as ``MESH:D003920``, ``mesh:D003920`` (BERN2) or ``OMIM:600807`` is split into
(source, code) in the convention of UMLS MRCONSO (SAB, CODE): MeSH codes lose the prefix
(``MSH``, ``D003920``), ontologies whose UMLS codes keep it keep it (``HPO``, ``HP:0000118``).
"""

from __future__ import annotations

# lower-cased prefix -> (canonical source, code keeps the "PREFIX:" part)
_PREFIXES: dict[str, tuple[str, bool]] = {
    "mesh": ("MSH", False),
    "msh": ("MSH", False),
    "omim": ("OMIM", False),
    "mim": ("OMIM", False),
    "hp": ("HPO", True),
    "go": ("GO", True),
    "doid": ("DOID", True),
    "ncbitaxon": ("NCBI", False),
    "ncbi": ("NCBI", False),
    "ncbigene": ("NCBIGENE", False),
    "entrezgene": ("NCBIGENE", False),
    "chebi": ("CHEBI", True),
    "cl": ("CL", True),
    "cellosaurus": ("CVCL", False),
    "hgnc": ("HGNC", True),
    "snomedct_us": ("SNOMEDCT_US", False),
    "snomedct": ("SNOMEDCT_US", False),
    "icd10cm": ("ICD10CM", False),
    "icd9cm": ("ICD9CM", False),
    "nci": ("NCI", False),
    "ncit": ("NCI", False),
    "orpha": ("ORPHANET", False),
    "ordo": ("ORPHANET", False),
    "orphanet": ("ORPHANET", False),
    "umls": ("UMLS", False),
    "umls_cui": ("UMLS", False),
}


def split_curie(curie: str) -> tuple[str, str] | None:
    """``"MESH:D003920"`` -> ``("MSH", "D003920")``; None if there is no ``prefix:code``.

    Unknown prefixes keep their upper-cased prefix as source and the local part as code.
    Versioned SNOMED prefixes (``SNOMEDCT_US_2025_09_01``) fold into ``SNOMEDCT_US``.
    """
    prefix, sep, local = curie.strip().partition(":")
    if not sep or not prefix or not local:
        return None
    key = prefix.lower()
    if key.startswith("snomedct_us"):
        key = "snomedct_us"
    source, keep = _PREFIXES.get(key, (prefix.upper(), False))
    if source == "NCBI" and local.startswith("txid"):  # BERN2's old "NCBI:txid9606"
        local = local[4:]
    return source, (f"{prefix.upper()}:{local}" if keep else local)
