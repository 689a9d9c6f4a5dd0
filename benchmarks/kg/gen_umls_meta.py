"""Generate a synthetic UMLS META directory (MRCONSO, MRREL, MRSTY .RRF) for benchmarks.

    python benchmarks/kg/gen_umls_meta.py --out DIR --conso-rows N --rel-rows M [--seed 0]

The files follow the RRF format exactly (``|``-separated, trailing ``|``, no header, no
quoting, UTF-8) and are deterministic for a seed. Field distributions imitate a UMLS
release: ~3.3 atoms per CUI (long tail), ~55% English atoms, sources skewed as in UMLS and
tied to the language, ~96% SUPPRESS=N, strings of ~35-40 characters on average with a long
tail, some ``"``, ``,``, ``'`` and parentheses, multi-byte UTF-8 (accents, Japanese), and the
same string repeated across sources of one concept. MRREL lists every relationship in both
directions (SIB/SIB, PAR/CHD, RB/RN, AQ/QB, inverse RELA), the same pair from several sources,
a few self-loops and a few CUIs that have no MRCONSO row. MRSTY gives most concepts 1-2
semantic types.

Rows are generated in vectorised numpy chunks and written with polars, never row by row.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

CONSO_CHUNK_CUIS = 150_000  # CUIs per MRCONSO chunk (~500k atoms)
REL_CHUNK_PAIRS = 500_000  # relationship pairs per MRREL chunk (1M rows)
MAX_CUI = 9_999_999
U64 = np.uint64

# --- languages and sources -------------------------------------------------------------------
LAT_P = {
    "ENG": 0.55, "SPA": 0.10, "JPN": 0.06, "FRE": 0.05, "GER": 0.04, "POR": 0.04, "DUT": 0.03,
    "ITA": 0.03, "CZE": 0.02, "RUS": 0.02, "KOR": 0.02, "CHI": 0.01, "SWE": 0.01, "POL": 0.01,
    "HUN": 0.01,
}
# (SAB, weight within its language, SRL, code style, term types)
Sab = tuple[str, float, int, str, tuple[str, ...]]
ENG_SABS: list[Sab] = [
    ("SNOMEDCT_US", 16, 9, "digits", ("PT", "FN", "SY", "SY", "PT", "FN")),
    ("RXNORM", 12, 0, "rxnorm", ("IN", "SCD", "SBD", "SY", "SCDC", "PIN")),
    ("LNC", 12, 0, "lnc", ("LN", "LC", "OSN", "LPN", "LA", "LN")),
    ("MSH", 10, 0, "msh", ("MH", "ET", "PEP", "ET", "NM", "ENTRY")),
    ("MEDCIN", 10, 3, "medcin", ("PT", "FN", "XM", "PT")),
    ("NCI", 8, 0, "nci", ("PT", "SY", "SY", "AB")),
    ("MDR", 8, 3, "mdr", ("PT", "LLT", "LLT", "HT")),
    ("NCBI", 6, 0, "ncbi", ("SCN", "SY", "CMN", "EQ")),
    ("MTH", 5, 0, "nocode", ("PN", "PN", "SY")),
    ("ICD10PCS", 4, 0, "pcs", ("PT", "HT")),
    ("ICD10CM", 3, 4, "icd10", ("PT", "AB", "HT")),
    ("CHV", 3, 0, "chv", ("PT", "SY")),
    ("GO", 1.5, 0, "go", ("PT", "SY", "ET")),
    ("OMIM", 1.5, 0, "omim", ("PT", "PTAV", "ETAL")),
    ("HPO", 1, 0, "hpo", ("PT", "SY", "ET")),
    ("ICD9CM", 1, 0, "icd9", ("PT", "HT")),
    ("HCPCS", 1, 3, "hcpcs", ("PT", "MP")),
    ("MEDLINEPLUS", 0.3, 0, "digits", ("PT", "SY")),
]
FOREIGN_SABS: dict[str, list[Sab]] = {
    "SPA": [("MSHSPA", 4, 3, "msh", ("MH", "ET")), ("MDRSPA", 4, 3, "mdr", ("PT", "LLT")),
            ("SCTSPA", 5, 9, "digits", ("PT", "FN", "SY")), ("LNC-ES-ES", 2, 3, "lnc", ("LN",))],
    "JPN": [("MDRJPN", 5, 3, "mdr", ("PT", "LLT", "PTJKN")), ("MSHJPN", 3, 3, "msh", ("MH", "ET"))],
    "FRE": [("MSHFRE", 3, 3, "msh", ("MH", "ET")), ("MDRFRE", 4, 3, "mdr", ("PT", "LLT")),
            ("LNC-FR-FR", 2, 3, "lnc", ("LN",))],
    "GER": [("MSHGER", 3, 3, "msh", ("MH", "ET")), ("MDRGER", 4, 3, "mdr", ("PT", "LLT")),
            ("DMDICD10", 1, 3, "icd10", ("PT",))],
    "POR": [("MSHPOR", 3, 3, "msh", ("MH", "ET")), ("MDRPOR", 3, 3, "mdr", ("PT", "LLT")),
            ("LNC-PT-BR", 2, 3, "lnc", ("LN",))],
    "DUT": [("MSHDUT", 2, 3, "msh", ("MH", "ET")), ("MDRDUT", 3, 3, "mdr", ("PT", "LLT"))],
    "ITA": [("MSHITA", 2, 3, "msh", ("MH", "ET")), ("MDRITA", 3, 3, "mdr", ("PT", "LLT"))],
    "CZE": [("MSHCZE", 2, 3, "msh", ("MH", "ET")), ("MDRCZE", 2, 3, "mdr", ("PT", "LLT"))],
    "RUS": [("MSHRUS", 2, 3, "msh", ("MH", "ET"))],
    "KOR": [("MDRKO", 2, 3, "mdr", ("PT", "LLT"))],
    "CHI": [("MDRZHO", 2, 3, "mdr", ("PT", "LLT"))],
    "SWE": [("MSHSWE", 2, 3, "msh", ("MH", "ET"))],
    "POL": [("MSHPOL", 2, 3, "msh", ("MH", "ET"))],
    "HUN": [("MDRHUN", 2, 3, "mdr", ("PT", "LLT"))],
}
ALL_SABS: list[Sab] = ENG_SABS + [s for rows in FOREIGN_SABS.values() for s in rows]
SAB_LAT = ["ENG"] * len(ENG_SABS) + [lat for lat, rows in FOREIGN_SABS.items() for _ in rows]
REL_SABS = {
    "SNOMEDCT_US": 25, "RXNORM": 14, "MSH": 12, "NCI": 10, "MDR": 8, "LNC": 8, "MEDCIN": 8,
    "NCBI": 5, "MTH": 3, "GO": 2, "ICD10CM": 2, "HPO": 1, "OMIM": 1, "CHV": 1,
}
# (pair weight, REL, inverse REL, [(weight, RELA, inverse RELA)]); "" = empty RELA
REL_PAIRS: list[tuple[float, str, str, list[tuple[float, str, str]]]] = [
    (0.30, "SIB", "SIB", [(0.6, "", ""), (0.3, "sib_in_isa", "sib_in_isa"),
                          (0.1, "sib_in_part_of", "sib_in_part_of")]),
    (0.25, "RO", "RO", [(0.10, "", ""), (0.15, "has_finding_site", "finding_site_of"),
                        (0.12, "has_associated_morphology", "associated_morphology_of"),
                        (0.10, "may_treat", "may_be_treated_by"),
                        (0.12, "has_ingredient", "ingredient_of"),
                        (0.08, "has_causative_agent", "causative_agent_of"),
                        (0.08, "has_method", "method_of"),
                        (0.08, "has_component", "component_of"),
                        (0.07, "has_dose_form", "dose_form_of"),
                        (0.05, "occurs_in", "has_occurrence"),
                        (0.05, "mapped_to", "mapped_from")]),
    (0.20, "PAR", "CHD", [(0.55, "isa", "inverse_isa"), (0.35, "", ""),
                          (0.05, "branch_of", "has_branch"),
                          (0.05, "tributary_of", "has_tributary")]),
    (0.10, "RB", "RN", [(0.6, "", ""), (0.4, "has_member", "member_of")]),
    (0.05, "SY", "SY", [(0.5, "", ""), (0.3, "same_as", "same_as"),
                        (0.2, "expanded_form_of", "has_expanded_form")]),
    (0.06, "RQ", "RQ", [(0.4, "", ""), (0.3, "classified_as", "classifies"),
                        (0.3, "mapped_to", "mapped_from")]),
    (0.04, "AQ", "QB", [(1.0, "", "")]),
]
SEMANTIC_TYPES: list[tuple[str, str, str, float]] = [  # TUI, STN, STY, weight
    ("T047", "B2.2.1.2.1", "Disease or Syndrome", 12), ("T121", "A1.4.1.1.1",
    "Pharmacologic Substance", 10), ("T109", "A1.4.1.2.1", "Organic Chemical", 10),
    ("T116", "A1.4.1.2.1.7", "Amino Acid, Peptide, or Protein", 7),
    ("T023", "A1.2.3.1", "Body Part, Organ, or Organ Component", 5),
    ("T033", "A2.2", "Finding", 8), ("T184", "A2.2.2", "Sign or Symptom", 2),
    ("T061", "B1.3.1.3", "Therapeutic or Preventive Procedure", 5),
    ("T060", "B1.3.1.2", "Diagnostic Procedure", 3), ("T059", "B1.3.1.1", "Laboratory Procedure",
    4), ("T037", "B2.3", "Injury or Poisoning", 3), ("T191", "B2.2.1.2.1.2",
    "Neoplastic Process", 3), ("T046", "B2.2.1.2", "Pathologic Function", 2),
    ("T200", "A1.3.3", "Clinical Drug", 8), ("T074", "A1.3.1", "Medical Device", 2),
    ("T028", "A1.2.3.5", "Gene or Genome", 4), ("T044", "B2.2.1.1.4", "Molecular Function", 2),
    ("T043", "B2.2.1.1.3", "Cell Function", 1), ("T201", "A2.3", "Clinical Attribute", 3),
    ("T081", "A2.1.3", "Quantitative Concept", 1), ("T080", "A2.1.2", "Qualitative Concept", 1),
    ("T169", "A2.1.4.1", "Functional Concept", 1), ("T170", "A2.4", "Intellectual Product", 2),
    ("T204", "A1.1.3.1.1", "Eukaryote", 4), ("T007", "A1.1.2", "Bacterium", 1),
    ("T005", "A1.1.4", "Virus", 1), ("T129", "A1.4.1.1.4", "Immunologic Factor", 2),
    ("T126", "A1.4.1.1.3.3", "Enzyme", 1), ("T123", "A1.4.1.1.2",
    "Biologically Active Substance", 1), ("T029", "A1.2.3.3", "Body Location or Region", 1),
    ("T025", "A1.2.3.4", "Cell", 1), ("T019", "A1.2.2.1", "Congenital Abnormality", 1),
    ("T048", "B2.2.1.2.1.1", "Mental or Behavioral Dysfunction", 1),
    ("T034", "A2.3.1", "Laboratory or Test Result", 2), ("T196", "A1.4.1.2.3",
    "Element, Ion, or Isotope", 1), ("T195", "A1.4.1.1.1.1", "Antibiotic", 1),
    ("T168", "A1.4.3", "Food", 1), ("T058", "B1.3.1", "Health Care Activity", 1),
]

# --- vocabulary --------------------------------------------------------------------------------
MEDICAL_WORDS = """
acute chronic fracture femur tibia closed open disorder syndrome disease infection
carcinoma adenocarcinoma lymphoma leukemia neoplasm malignant benign primary secondary
left right bilateral upper lower anterior posterior lateral medial proximal distal
tablet capsule injection solution oral topical mg ml hydrochloride sodium potassium
chloride sulfate acetate protein receptor kinase gene antibody antigen cell tissue
blood serum plasma urine level measurement test assay count ratio concentration
pain swelling fever cough nausea vomiting headache dizziness fatigue rash lesion ulcer
artery vein nerve muscle bone joint skin liver kidney lung heart brain spinal cord
procedure surgery excision repair biopsy resection transplant therapy treatment
type stage grade severe mild moderate congenital hereditary familial idiopathic
without with due to of and in on by for from other unspecified complication injury
pregnancy neonatal pediatric adult elderly male female history family personal
diabetes mellitus hypertension asthma pneumonia sepsis anemia arthritis dermatitis
cardiomyopathy nephropathy neuropathy retinopathy encephalopathy hepatitis cirrhosis
insulin aspirin ibuprofen acetaminophen amoxicillin metformin atorvastatin lisinopril
examination finding observation history evaluation assessment screening monitoring
"""
ACCENTED = "état fémur niño córtex hígado rückenmark lésion órgão função éponyme"
SYLLABLES = (
    "car di o neu ro path hem at ic lymph om ost e my el card gastr enter col hep ren "
    "nephr pulm bronch derm cyt phag plas trop gen ase ine ide ol ane ene yl meth eth prop "
    "but pent hex tri di mono poly glyc ur ox hydr chlor fluor brom amin amid thi phen benz"
)
SUFFIXES = "itis osis oma emia pathy ectomy otomy plasty algia ase ine ol ide ate ium"
TAGS = ["(finding)", "(disorder)", "(procedure)", "(substance)", "(body structure)",
        "(observable entity)", "(qualifier value)", "(product)", "[X]", "[D]", "NOS", "&",
        "w/o", "10", "25", "100", "500", "0.5", "1.5", "mg/mL", "MG", "mL", "%", "24h",
        "2,4-dinitrophenol", "1,2-dipalmitoylphosphatidylcholine", "(131)I"]
EPONYMS = ("Crohn Alzheimer Parkinson Hodgkin Down Graves Addison Cushing Bell Wilms Ewing "
           "Kaposi Huntington Meniere Raynaud Sjogren Tourette Wilson Paget Burkitt")


def _vocabulary() -> tuple[pa.Array, np.ndarray, np.ndarray, int]:
    """Token table and two 65536-entry sampling tables (Latin, Japanese).

    Layout of the token array: ``[plain | Capitalised plain | punctuated | Japanese]``; a
    string's first Latin token is shifted by ``len(plain)`` to its capitalised form.
    """
    rng = np.random.default_rng(12345)  # the vocabulary is the same for every --seed
    syllables, suffixes = SYLLABLES.split(), SUFFIXES.split()
    plain = list(dict.fromkeys(MEDICAL_WORDS.split() + ACCENTED.split()))
    seen = set(plain)
    while len(plain) < 4000:
        n = int(rng.integers(1, 4))
        w = "".join(rng.choice(syllables, n)) + (rng.choice(suffixes) if rng.random() < .4 else "")
        if w not in seen:
            seen.add(w)
            plain.append(w)
    picks = rng.choice(plain, 800, replace=False)
    punct = (
        [f"{w}," for w in picks[:300]]
        + [f"({w})" for w in picks[300:500]]
        + [f'"{w}"' for w in picks[500:600]]
        + [f"{w}'s" for w in EPONYMS.split()]
        + [f"{w[:1].upper()}{w[1:]}'s" for w in picks[700:800]]
        + [f"{w}-{v}" for w, v in zip(picks[600:650], picks[650:700], strict=True)]
        + TAGS
    )
    kana = [chr(c) for c in range(0x30A1, 0x30FB)] + [chr(c) for c in range(0x4E00, 0x4F00)]
    jpn = sorted({"".join(rng.choice(kana, int(rng.integers(2, 7)))) for _ in range(600)})
    tokens = plain + [w[:1].upper() + w[1:] for w in plain] + punct + jpn
    n_plain, n_punct = len(plain), len(punct)

    def zipf(n: int, size: int) -> np.ndarray:
        p = 1.0 / (np.arange(n) + 20.0)
        return rng.choice(n, size, p=p / p.sum())

    size = 1 << 16
    is_punct = rng.random(size) < 0.08
    latin = np.where(is_punct, 2 * n_plain + zipf(n_punct, size), zipf(n_plain, size))
    japanese = 2 * n_plain + n_punct + zipf(len(jpn), size)
    return pa.array(tokens, pa.string()), latin.astype(np.int32), japanese.astype(np.int32), n_plain


def _length_table() -> np.ndarray:
    """4096 draws of "tokens per string" (1 + negative binomial, mean ~4.2, long tail)."""
    rng = np.random.default_rng(54321)
    k = 1 + rng.negative_binomial(2.0, 2.0 / (2.0 + 3.2), 4096)
    return np.minimum(k, 40).astype(np.int64)


# --- helpers -------------------------------------------------------------------------------
def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a deterministic, well-spread uint64 hash of each element."""
    x = x.astype(U64) + U64(0x9E3779B97F4A7C15)
    x ^= x >> U64(30)
    x *= U64(0xBF58476D1CE4E5B9)
    x ^= x >> U64(27)
    x *= U64(0x94D049BB133111EB)
    x ^= x >> U64(31)
    return x


def _weighted(rng: np.random.Generator, weights: Sequence[float], n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(p), n, p=p / p.sum())


def _ids(prefix: str, col: str, width: int) -> pl.Expr:
    """``prefix`` + zero-padded decimal of an unsigned integer column."""
    return (pl.lit(prefix) + pl.col(col).cast(pl.String).str.zfill(width)).alias(col)


def _permute(index: np.ndarray, modulus: int) -> np.ndarray:
    """Bijection of [0, modulus) (modulus = 10**k): unique ids that look unordered."""
    return (index.astype(U64) * U64(48_271_207) + U64(1_234_567)) % U64(modulus)


def _write(df: pl.DataFrame, fh: BinaryIO) -> None:
    """Append ``df`` as RRF lines (an empty last column gives the trailing ``|``)."""
    df.with_columns(pl.lit(None, pl.String).alias("_")).write_csv(
        fh, separator="|", include_header=False, quote_style="never", line_terminator="\n"
    )


class _Progress:
    def __init__(self, name: str, total: int) -> None:
        self.name, self.total, self.t0, self.last = name, total, time.perf_counter(), 0.0

    def update(self, done: int, force: bool = False) -> None:
        now = time.perf_counter()
        if force or now - self.last >= 5:
            self.last = now
            el = now - self.t0
            print(f"  {self.name}: {done:,}/{self.total:,} rows ({100 * done / self.total:.0f}%, "
                  f"{el:.0f}s, {done / max(el, 1e-9) / 1e6:.2f}M rows/s)", flush=True)


# --- MRCONSO + MRSTY ---------------------------------------------------------------------------
def _sab_tables() -> tuple[dict[str, list[int]], dict[str, list[float]]]:
    """Per language: indices into ALL_SABS and their weights."""
    by_lat: dict[str, list[int]] = {}
    for i, lat in enumerate(SAB_LAT):
        by_lat.setdefault(lat, []).append(i)
    return by_lat, {lat: [ALL_SABS[i][1] for i in idx] for lat, idx in by_lat.items()}


def _code_expr() -> pl.Expr:
    """CODE in the style of its source, from the hash column ``h`` and style column."""
    h = pl.col("h")

    def d(modulus: int, offset: int = 0) -> pl.Expr:
        return ((h % modulus) + offset).cast(pl.String)

    def z(modulus: int, width: int, shift: int = 0) -> pl.Expr:
        return ((h // (10**shift)) % modulus).cast(pl.String).str.zfill(width)

    styles = {
        "msh": pl.lit("D") + z(1_000_000, 6),
        "digits": d(10**15 - 100_000, 100_000),
        "rxnorm": d(2_500_000, 1),
        "lnc": d(99_999, 1) + pl.lit("-") + z(10, 1, 7),
        "medcin": d(400_000, 1),
        "nci": pl.lit("C") + d(200_000, 1),
        "mdr": d(90_000_000, 10_000_000),
        "ncbi": d(3_000_000, 1),
        "nocode": pl.lit("NOCODE"),
        "pcs": z(10**7, 7),
        "icd10": pl.lit("A") + z(100, 2) + pl.lit(".") + z(100, 2, 3),
        "chv": z(10**10, 10),
        "go": pl.lit("GO:") + z(10**7, 7),
        "omim": d(600_000, 100_000),
        "hpo": pl.lit("HP:") + z(10**7, 7),
        "icd9": z(1000, 3) + pl.lit(".") + z(100, 2, 4),
        "hcpcs": pl.lit("J") + z(10_000, 4),
    }
    expr = pl.when(pl.col("nocode")).then(pl.lit("NOCODE"))
    for name, e in styles.items():
        expr = expr.when(pl.col("style") == name).then(e)
    return expr.otherwise(pl.lit("NOCODE")).alias("CODE")


def gen_conso(out: Path, n_rows: int, seed: int) -> np.ndarray:
    """Write MRCONSO.RRF and MRSTY.RRF; return the CUIs (as int) that have atoms."""
    tokens, latin_tab, jpn_tab, n_plain = _vocabulary()
    len_tab = _length_table()
    sab_names = [s[0] for s in ALL_SABS]
    by_lat, sab_w = _sab_tables()
    lats = list(LAT_P)
    lat_p = np.array(list(LAT_P.values()))
    jpn = lats.index("JPN")
    sab_style = pl.Series([s[3] for s in ALL_SABS])
    sab_srl = pl.Series([str(s[2]) for s in ALL_SABS])
    tty_tab = np.array([[i * 8 + j % len(s[4]) for j in range(8)] for i, s in enumerate(ALL_SABS)])
    tty_names = pl.Series([s[4][j % len(s[4])] for s in ALL_SABS for j in range(8)])
    sdui_sabs = [i for i, s in enumerate(ALL_SABS) if s[3] in ("msh", "go", "hpo")]
    sty_w = [s[3] for s in SEMANTIC_TYPES]
    salt = U64(seed * 0x100000001B3 + 0x5EED)
    aui_mod = 10**8 if n_rows < 10**8 else 10**10

    est_cuis = n_rows / 3.3 * 1.1
    max_gap = int(np.clip(2 * 9_000_000 / max(est_cuis, 1) - 1, 1, 60))
    prev_cui, done, chunk = 0, 0, 0
    cuis_out: list[np.ndarray] = []
    prog = _Progress("MRCONSO", n_rows)
    with open(out / "MRCONSO.RRF", "wb") as fc, open(out / "MRSTY.RRF", "wb") as fs:
        while done < n_rows:
            rng = np.random.default_rng([seed, 1, chunk])
            cuis = prev_cui + np.cumsum(rng.integers(1, max_gap + 1, CONSO_CHUNK_CUIS))
            counts = 1 + rng.negative_binomial(0.8, 0.8 / (0.8 + 2.3), CONSO_CHUNK_CUIS)
            counts = np.minimum(counts, 500)
            keep = np.cumsum(counts) <= n_rows - done
            if not keep.all():  # last chunk: cut at exactly n_rows atoms
                last = int(keep.sum())
                counts[last] = n_rows - done - int(counts[:last].sum())
                cuis, counts = cuis[: last + 1], counts[: last + 1]
                counts = counts[counts > 0]
                cuis = cuis[: len(counts)]
            prev_cui = int(cuis[-1])
            if prev_cui > MAX_CUI - 200_000:
                raise SystemExit("too many concepts for 7-digit CUIs; lower --conso-rows")
            cuis_out.append(cuis.astype(np.uint32))
            n = int(counts.sum())
            cui = np.repeat(cuis, counts)
            count = np.repeat(counts, counts)
            lat = _weighted(rng, lat_p, n)
            sab = np.empty(n, dtype=np.int64)
            for li, name in enumerate(lats):
                m = lat == li
                sab[m] = np.asarray(by_lat[name])[_weighted(rng, sab_w[name], int(m.sum()))]
            # strings: one per (CUI, variant, LAT); variant 0 is shared by many atoms
            variant = (rng.random(n) * np.ceil(0.7 * count)).astype(np.int64)
            key = _mix((cui.astype(U64) << U64(24)) ^ (variant.astype(U64) << U64(8))
                       ^ lat.astype(U64) ^ salt)
            k = len_tab[(key & U64(4095)).astype(np.int64)]
            offsets = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(k, out=offsets[1:])
            pos = np.arange(offsets[-1]) - np.repeat(offsets[:-1], k)
            tkey = _mix(np.repeat(key, k) + pos.astype(U64) * U64(0x9E3779B97F4A7C15))
            slot = (tkey & U64(0xFFFF)).astype(np.int64)
            is_jpn = np.repeat(lat == jpn, k)
            word = np.where(is_jpn, jpn_tab[slot], latin_tab[slot]).astype(np.int64)
            word[pos == 0] += np.where(word[pos == 0] < n_plain, n_plain, 0)  # Capitalise
            values = tokens.take(pa.array(word))
            strs = pc.binary_join(pa.LargeListArray.from_arrays(pa.array(offsets), values), " ")
            code_variant = np.where(rng.random(n) < 0.85, 0, rng.integers(1, 4, n))
            g = np.arange(n, dtype=np.int64) + done
            df = pl.DataFrame({
                "CUI": cui.astype(U64),
                "LAT": pl.Series(lats).gather(lat),
                "TS": np.where(rng.random(n) < 0.35, "P", "S"),
                "LUI": _mix((cui.astype(U64) << U64(16)) ^ variant.astype(U64) ^ salt)
                % U64(12_000_000),
                "STT": pl.Series(["PF", "VO", "VC", "VCW"]).gather(
                    _weighted(rng, [72, 12, 10, 6], n)),
                "SUI": key % U64(20_000_000),
                "ISPREF": np.where(rng.random(n) < 0.7, "Y", "N"),
                "AUI": _permute(g, aui_mod),
                "SAUI": np.where(rng.random(n) < 0.35, _mix(g.astype(U64) ^ salt) % U64(10**9),
                                 U64(0)),
                "sab": sab,
                "TTY": tty_names.gather(tty_tab[sab, rng.integers(0, 8, n)]),
                "h": _mix((cui.astype(U64) << U64(12)) ^ (sab.astype(U64) << U64(3))
                          ^ code_variant.astype(U64) ^ salt) >> U64(4),
                "nocode": rng.random(n) < 0.02,
                "STR": pl.from_arrow(strs),
                "SUPPRESS": pl.Series(["N", "O", "E", "Y"]).gather(
                    _weighted(rng, [960, 25, 5, 10], n)),
                "CVF": pl.Series([None, "256", "4096"], dtype=pl.String).gather(
                    _weighted(rng, [80, 15, 5], n)),
                "SAB": pl.Series(sab_names).gather(sab),
                "style": sab_style.gather(sab),
                "SRL": sab_srl.gather(sab),
            }).with_columns(_code_expr())
            df = df.select(
                _ids("C", "CUI", 7), "LAT", "TS", _ids("L", "LUI", 7), "STT", _ids("S", "SUI", 7),
                "ISPREF", _ids("A", "AUI", 7),
                pl.when(pl.col("SAUI") > 0).then(pl.col("SAUI").cast(pl.String)).alias("SAUI"),
                pl.when(pl.col("style") != "nocode").then(pl.col("CODE")).alias("SCUI"),
                pl.when(pl.col("sab").is_in(sdui_sabs)).then(pl.col("CODE")).alias("SDUI"),
                "SAB", "TTY", "CODE", "STR", "SRL", "SUPPRESS", "CVF",
            )
            _write(df, fc)
            _write(_sty_chunk(rng, cuis, sty_w, chunk), fs)
            done += n
            chunk += 1
            prog.update(done, force=done >= n_rows)
    return np.concatenate(cuis_out)


def _sty_chunk(rng: np.random.Generator, cuis: np.ndarray, sty_w: list[float],
               chunk: int) -> pl.DataFrame:
    """MRSTY rows for one chunk of CUIs: 1 type (60%), 2 types (~40%), none (0.2%)."""
    n_types = _weighted(rng, [0.2, 60, 39.8], len(cuis))
    first = _weighted(rng, sty_w, len(cuis))
    second = (first + rng.integers(1, len(sty_w), len(cuis))) % len(sty_w)
    cui = np.concatenate([cuis[n_types >= 1], cuis[n_types == 2]])
    tui = np.concatenate([first[n_types >= 1], second[n_types == 2]])
    order = np.argsort(cui, kind="stable")
    cui, tui = cui[order], tui[order]
    start = chunk * CONSO_CHUNK_CUIS * 2
    return pl.DataFrame({
        "CUI": cui.astype(U64),
        "TUI": pl.Series([s[0] for s in SEMANTIC_TYPES]).gather(tui),
        "STN": pl.Series([s[1] for s in SEMANTIC_TYPES]).gather(tui),
        "STY": pl.Series([s[2] for s in SEMANTIC_TYPES]).gather(tui),
        "ATUI": _permute(np.arange(len(cui)) + start, 10**9),
        "CVF": pl.Series([None, "256"], dtype=pl.String).gather(rng.integers(0, 2, len(cui))),
    }).with_columns(_ids("C", "CUI", 7), _ids("AT", "ATUI", 8))


# --- MRREL ---------------------------------------------------------------------------------
def gen_rel(out: Path, n_rows: int, cui_pool: np.ndarray, seed: int) -> None:
    """Write MRREL.RRF: ``n_rows`` rows (rounded down to even), each relationship both ways."""
    variants = [(pw * rw, rel, irel, rela, irela)
                for pw, rel, irel, relas in REL_PAIRS for rw, rela, irela in relas]
    v_w = [v[0] for v in variants]
    rels = pl.Series([v[1] for v in variants] + [v[2] for v in variants])
    relas = pl.Series([v[3] or None for v in variants] + [v[4] or None for v in variants],
                      dtype=pl.String)
    sab_names = pl.Series(list(REL_SABS))
    pool = cui_pool.astype(np.int64)
    orphan_base = int(pool.max()) + 1
    salt = U64(seed * 0x100000001B3 + 0x7E1)
    rui_mod = 10**9 if n_rows < 10**9 else 10**11
    n_pairs_total = n_rows // 2
    done, chunk = 0, 0
    prog = _Progress("MRREL", 2 * n_pairs_total)
    with open(out / "MRREL.RRF", "wb") as fh:
        while done < n_pairs_total:
            rng = np.random.default_rng([seed, 2, chunk])
            p = min(REL_CHUNK_PAIRS, n_pairs_total - done)
            a = pool[rng.integers(0, len(pool), p)]
            b = pool[rng.integers(0, len(pool), p)]
            v = _weighted(rng, v_w, p)
            dup = rng.random(p) < 0.2  # same pair again, usually from another source
            src = rng.integers(0, p, int(dup.sum()))
            a[dup], b[dup], v[dup] = a[src], b[src], v[src]
            b = np.where(rng.random(p) < 0.001, a, b)  # self-loops
            orphan = rng.random(p) < 0.002  # CUIs without an MRCONSO row
            a = np.where(orphan, orphan_base + rng.integers(0, 100_000, p), a)
            sab = _weighted(rng, list(REL_SABS.values()), p)
            sup = _weighted(rng, [960, 25, 5, 10], p)
            # rows: forward then inverse, ordered by CUI1 within the chunk
            cui1 = np.concatenate([a, b])
            order = np.argsort(cui1, kind="stable")
            cui1, cui2 = cui1[order], np.concatenate([b, a])[order]
            # forward rows use variant v, inverse rows v + len(variants)
            rel_idx = np.concatenate([v, v + len(variants)])[order]
            sab2, sup2 = np.concatenate([sab, sab])[order], np.concatenate([sup, sup])[order]
            n = 2 * p
            g = np.arange(n, dtype=np.int64) + 2 * done
            stype = _weighted(rng, [55, 20, 10, 10, 5], n)
            stypes = pl.Series(["AUI", "SCUI", "SDUI", "CUI", "CODE"])
            has_aui = stype != 3
            df = pl.DataFrame({
                "CUI1": cui1.astype(U64),
                "AUI1": np.where(has_aui, _mix(g.astype(U64) ^ salt) % U64(10**8), U64(0)),
                "STYPE1": stypes.gather(stype),
                "REL": rels.gather(rel_idx),
                "CUI2": cui2.astype(U64),
                "AUI2": np.where(has_aui, _mix(g.astype(U64) ^ ~salt) % U64(10**8), U64(0)),
                "STYPE2": stypes.gather(stype),
                "RELA": relas.gather(rel_idx),
                "RUI": _permute(g, rui_mod),
                "SRUI": np.where(rng.random(n) < 0.2, _mix(g.astype(U64) + salt) % U64(10**9),
                                 U64(0)),
                "SAB": sab_names.gather(sab2),
                "RG": pl.Series([None, "0", "1", "2"], dtype=pl.String).gather(
                    _weighted(rng, [85, 8, 5, 2], n)),
                "DIR": pl.Series([None, "Y", "N"], dtype=pl.String).gather(
                    _weighted(rng, [70, 25, 5], n)),
                "SUPPRESS": pl.Series(["N", "O", "E", "Y"]).gather(sup2),
                "CVF": pl.Series([None, "4096"], dtype=pl.String).gather(
                    _weighted(rng, [90, 10], n)),
            })
            df = df.select(
                _ids("C", "CUI1", 7),
                pl.when(pl.col("AUI1") > 0).then(_ids("A", "AUI1", 7)).alias("AUI1"),
                "STYPE1", "REL", _ids("C", "CUI2", 7),
                pl.when(pl.col("AUI2") > 0).then(_ids("A", "AUI2", 7)).alias("AUI2"),
                "STYPE2", "RELA", _ids("R", "RUI", 8),
                pl.when(pl.col("SRUI") > 0).then(pl.col("SRUI").cast(pl.String)).alias("SRUI"),
                "SAB", pl.col("SAB").alias("SL"), "RG", "DIR", "SUPPRESS", "CVF",
            )
            _write(df, fh)
            done += p
            chunk += 1
            prog.update(2 * done, force=done >= n_pairs_total)


def generate(out: str | Path, conso_rows: int, rel_rows: int, seed: int = 0) -> dict[str, int]:
    """Write MRCONSO/MRREL/MRSTY.RRF into ``out``; return row counts."""
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    cuis = gen_conso(d, conso_rows, seed)
    gen_rel(d, rel_rows, cuis, seed)
    return {"MRCONSO": conso_rows, "MRREL": rel_rows // 2 * 2, "concepts_max": len(cuis)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path, help="output META directory")
    ap.add_argument("--conso-rows", type=int, required=True, help="MRCONSO rows (atoms)")
    ap.add_argument("--rel-rows", type=int, required=True, help="MRREL rows (even)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    counts = generate(args.out, args.conso_rows, args.rel_rows, args.seed)
    size = sum(f.stat().st_size for f in args.out.glob("*.RRF"))
    print(f"wrote {args.out}: {counts} ({size / 1e9:.2f} GB, {time.perf_counter() - t0:.0f}s)")


if __name__ == "__main__":
    main()
