"""Write files in the layout of BERN2's annotated PubMed dump, at any size, from real data.

    python benchmarks/text/gen_bern2_dump.py --docs 30000 --out /tmp/dump/pubmed22n0001.json

Each line is one document as BERN2's dump has it (a ``/plain`` response object)::

    {"pmid": "...", "text": "<title> <abstract>", "annotations": [...], "timestamp": "..."}

Texts are the 1,000 real PubMed abstracts of ``../shared/data/bern2/pubmed_abstracts_1k.jsonl``
(cycled, each copy under a new pmid). Annotations: every whole-word match of the real
annotations in ``plain_response_samples.json`` (their ids, types, probabilities and
``is_neural_normalized``), plus the test stand-in's lexicon (``tests/bern2_standin.py``: genes,
species, drugs, cell lines, ``CUI-less`` ids, two-id mentions), plus protein mutations
(``V600E``-like tokens, with ``mutationType``/``normalizedName``/``hgvs`` and a tmVar id),
non-overlapping, longest first, exact spans. ``--nested`` of the annotations get their id
list nested one level (``[["mesh:D1", "mim:2"]]``) and ``--bad-spans`` get a span shifted by
one character (what the reader must drop). ``--id-pool FILE`` (one ``prefix:code`` a line,
e.g. the MeSH, NCBI Taxonomy and OMIM codes of a generated KG) re-draws the ids so that a
corpus of many files mentions as many distinct concepts as PubMed does rather than the
samples' few thousand: a ``mesh:`` id becomes a Zipf(``--zipf``) draw from the pool's
``mesh:`` codes (each annotation anew), any other id with pool codes of its prefix becomes
one fixed code of them (``NCBITaxon:9606`` always the same: few concepts, many mentions, as
species in PubMed); id kinds and the share of unnormalised (``CUI-less``) and mutation ids
stay those of the samples. Without the shared data, synthetic
sentences are used. Deterministic for a given ``--seed``. Prints one JSON line of counts.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: benchlib
import benchlib  # noqa: E402

benchlib.use_tests()  # the stand-in lives with the tests

from bern2_standin import annotate_text  # noqa: E402

SHARED = benchlib.SHARED
ABSTRACTS = SHARED / "bern2" / "pubmed_abstracts_1k.jsonl"
SAMPLES = SHARED / "bern2" / "plain_response_samples.json"
TIMESTAMP = "Thu Mar 03 04:52:21 +0000 2022"
_AA = "ACDEFGHIKLMNPQRSTVWY"
_MUTATION = re.compile(rf"\b([{_AA}])(\d{{2,4}})([{_AA}])\b")
_FALLBACK = ("A woman with palpitations and headaches was treated with insulin. "
             "The BRAF V600E mutation in HeLa cells was studied in mice. "
             "Patients with breast cancer and diabetes had nausea.")


def load_texts() -> tuple[list[str], str]:
    if ABSTRACTS.exists():
        texts = []
        with open(ABSTRACTS, encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                title, abstract = r["title"].strip(), r["abstract"].strip()
                texts.append(f"{title} {abstract}" if title and abstract else title or abstract)
        return texts, f"{ABSTRACTS.name} ({len(texts)} real abstracts)"
    return [f"Study {i}. {_FALLBACK}" for i in range(100)], "synthetic sentences"


def sample_lexicon() -> dict[str, dict]:
    """mention (lower case) -> a real annotation of it from the /plain samples."""
    if not SAMPLES.exists():
        return {}
    data = json.loads(SAMPLES.read_text(encoding="utf-8"))
    lexicon = {}
    for resp in data if isinstance(data, list) else [data]:
        for a in resp["annotations"]:
            lexicon.setdefault(a["mention"].lower(), a)
    return lexicon


def annotate(text: str, lexicon: dict[str, dict], pattern: re.Pattern | None) -> list[dict]:
    """Non-overlapping annotations of ``text`` in /plain format, sorted by begin."""
    cands = []
    if pattern is not None:
        for m in pattern.finditer(text):
            real = lexicon[m.group(0).lower()]
            cands.append({"id": list(real["id"]), "is_neural_normalized":
                          real["is_neural_normalized"], "mention": m.group(0),
                          "obj": real["obj"], "prob": real["prob"],
                          "span": {"begin": m.start(), "end": m.end()}})
    for m in _MUTATION.finditer(text):
        wt, pos, mt = m.groups()
        hgvs = f"p.{wt}{pos}{mt}"
        cands.append({"id": [f"tmVar:p|SUB|{wt}|{pos}|{mt};HGVS:{hgvs};VariantGroup:0"],
                      "is_neural_normalized": False, "mention": m.group(0), "obj": "mutation",
                      "prob": None, "span": {"begin": m.start(), "end": m.end()},
                      "mutationType": "ProteinMutation", "normalizedName": hgvs, "hgvs": hgvs})
    cands += annotate_text(text)
    cands.sort(key=lambda a: (a["span"]["begin"], -(a["span"]["end"] - a["span"]["begin"])))
    out, last_end = [], -1
    for a in cands:
        if a["span"]["begin"] >= last_end:
            out.append(a)
            last_end = a["span"]["end"]
    return out


def _id_redraw(path: Path | None, a: float, seed: int):
    """A function re-drawing an annotation's id list from ``path``'s pool (module docstring),
    or None without a pool."""
    if path is None:
        return None
    import zlib

    import numpy as np

    pool: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").split():
        prefix, _, code = line.partition(":")
        pool.setdefault(prefix, []).append(code)
    mesh = pool.get("mesh", [])
    rng = np.random.default_rng([seed, 7])
    ranks = np.random.default_rng(7).permutation(len(mesh))  # code -> popularity rank
    cdf = np.cumsum(np.arange(1, len(mesh) + 1, dtype=np.float64) ** -a)
    cdf /= cdf[-1] if len(mesh) else 1
    buffer: list[int] = []

    def one(curie):
        if isinstance(curie, list):  # a nested id list
            return [one(c) for c in curie]
        prefix, _, code = str(curie).partition(":")
        if prefix == "mesh" and mesh:
            if not buffer:
                buffer.extend(np.searchsorted(cdf, rng.random(1 << 16)).tolist())
            return f"mesh:{mesh[ranks[buffer.pop()]]}"
        codes = pool.get(prefix)
        if not codes or not code:
            return curie
        return f"{prefix}:{codes[zlib.crc32(curie.encode()) % len(codes)]}"

    return lambda ids: [one(i) for i in ids]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=30000, help="documents (lines) to write")
    ap.add_argument("--out", type=Path, required=True,
                    help="output file, e.g. pubmed22n0001.json (.gz: gzip)")
    ap.add_argument("--first-pmid", type=int, default=40_000_000)
    ap.add_argument("--nested", type=float, default=0.02, help="share of nested id lists")
    ap.add_argument("--bad-spans", type=float, default=0.001, help="share of shifted spans")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--id-pool", type=Path, help="MeSH codes (one a line) for mesh: ids")
    ap.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent of the pool draw")
    args = ap.parse_args(argv)
    redraw = _id_redraw(args.id_pool, args.zipf, args.seed)

    texts, source = load_texts()
    lexicon = sample_lexicon()
    pattern = re.compile(r"\b(?:" + "|".join(
        re.escape(w) for w in sorted(lexicon, key=len, reverse=True)) + r")\b",
        re.IGNORECASE) if lexicon else None
    base = [annotate(t, lexicon, pattern) for t in texts]  # once per distinct text
    rng = random.Random(args.seed)
    counts = {"documents": 0, "annotations": 0, "nested_ids": 0, "bad_spans": 0,
              "mutations": 0, "cui_less": 0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if args.out.suffix == ".gz" else open
    with opener(args.out, "wt", encoding="utf-8") as fh:
        for k in range(args.docs):
            text, anns = texts[k % len(texts)], []
            for a in base[k % len(texts)]:
                a = dict(a, span=dict(a["span"]))
                u = rng.random()
                if u < args.bad_spans:
                    a["span"] = {"begin": a["span"]["begin"] + 1, "end": a["span"]["end"] + 1}
                    counts["bad_spans"] += 1
                else:  # what a reader keeps
                    counts["mutations"] += a["obj"] == "mutation"
                    counts["cui_less"] += a["id"] == ["CUI-less"]
                    if u < args.bad_spans + args.nested:
                        a["id"] = [list(a["id"])]
                        counts["nested_ids"] += 1
                if redraw is not None:
                    a["id"] = redraw(a["id"])
                anns.append(a)
            fh.write(json.dumps({"pmid": str(args.first_pmid + k), "text": text,
                                 "annotations": anns, "timestamp": TIMESTAMP},
                                ensure_ascii=False) + "\n")
            counts["documents"] += 1
            counts["annotations"] += len(anns)
    print(json.dumps({"out": str(args.out), "source": source, **counts,
                      "bytes": args.out.stat().st_size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
