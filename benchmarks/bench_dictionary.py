"""Dictionary annotator throughput with a large generated dictionary.

    python benchmarks/bench_dictionary.py --names 1000000 --megabytes 20

Names: ``--names`` distinct multi-word biomedical-looking names (1-5 words from a
generated vocabulary of 60k word forms, realistic length distribution), spread over
concepts with ~3 names each, as a UMLS-scale ``names`` table would be. Text: the real
abstracts of ``../shared/data/bern2/pubmed_abstracts_1k.jsonl`` (repeated to
``--megabytes``; synthetic sentences with dictionary names inserted when the file is
absent), with a share of sentences carrying generated names so that matches are dense.
Reports automaton build time, its memory (RSS growth), and annotation throughput in MB/s
of text on one core (``annotate_dictionary``, the code the pipeline runs).

``--compare`` also times, alternately in the same process on the same automaton, the
automaton call alone (every overlapping match of every document, no post-processing: the
floor) and the previous implementation (per document: the automaton call, then the word
boundaries, leftmost-longest and the rows in Python), checks that it finds the same rows,
and reports the best of ``--repeat`` runs of each with the load average before and after.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
from benchlib import emit

from bali.text.dictionary import DictionaryOptions, annotate_dictionary, build_dictionary
from bali.text.readers import iter_documents
from bali.text.schema import DOCUMENTS

ABSTRACTS = Path(__file__).resolve().parents[2] / "shared/data/bern2/pubmed_abstracts_1k.jsonl"
SYLLABLES = ("ab ac ad al am an ar as at ba be bi bo ca ce ci co cy da de di do du el em en "
             "er es et ex fa fe fi fo ga ge gi go ha he hi ho hy id il im in ir is it la le "
             "li lo lu ly ma me mi mo mu my na ne ni no nu ob oc od ol om on op or os ox pa "
             "pe pi po pr ra re ri ro ru sa se si so st ta te ti to tr tu ty ul um un ur us "
             "va ve vi vo xa xe yl za ze zo").split()
SUFFIXES = ("itis", "osis", "emia", "oma", "ase", "ine", "ide", "ol", "in", "ia", "al", "ic",
            "ase", "gen", "cyte", "pathy", "plasia", "trophy", "algia", "uria")


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_names(n: int, seed: int) -> pl.DataFrame:
    """``n`` distinct names over ~n/3 concepts."""
    rng = np.random.default_rng(seed)
    vocab = sorted({
        "".join(rng.choice(SYLLABLES, size=rng.integers(2, 5))) + rng.choice(SUFFIXES)
        for _ in range(80_000)
    })[:60_000]
    vocab_arr = np.array(vocab)
    names: set[str] = set()
    while len(names) < n:
        k = n - len(names)
        lengths = rng.choice([1, 2, 3, 4, 5], size=k, p=[0.15, 0.35, 0.3, 0.13, 0.07])
        words = vocab_arr[rng.integers(0, len(vocab_arr), size=lengths.sum())]
        pos = 0
        for length in lengths:
            names.add(" ".join(words[pos:pos + length]))
            pos += length
    ordered = sorted(names)[:n]
    cuis = [f"C{i // 3:07d}" for i in range(n)]
    return pl.DataFrame({"cui": cuis, "name": ordered})


def make_text(names: pl.DataFrame, megabytes: float, seed: int) -> pl.DataFrame:
    """Documents totalling ~``megabytes`` MB: real abstracts with generated names spliced in."""
    rng = np.random.default_rng(seed)
    base = ([d["text"] for d in iter_documents(ABSTRACTS)] if ABSTRACTS.exists()
            else ["Patients were treated and the outcome improved. " * 20] * 1000)
    sample = names["name"].to_list()
    docs, size, i = [], 0, 0
    target = megabytes * 1e6
    while size < target:
        text = base[i % len(base)]
        picks = rng.integers(0, len(sample), size=8)
        text = text + " " + " ".join(f"The {sample[p]} was observed." for p in picks)
        docs.append({"doc_id": str(i), "title": "", "text": text})
        size += len(text.encode())
        i += 1
    return pl.DataFrame(docs, schema=DOCUMENTS)


def annotate_previous(documents: pl.DataFrame, dictionary) -> pl.DataFrame:
    """The annotator before the vectorised post-processing (kept here for the comparison)."""
    from bali.text.dictionary import _lower_same_length
    from bali.text.schema import MENTIONS

    rows = {k: [] for k in MENTIONS}
    for doc_id, text in documents.select("doc_id", "text").iter_rows():
        low = _lower_same_length(text)
        found = dictionary.automaton.find_matches_as_indexes(low, overlapping=True)
        n = len(low)
        candidates = sorted(((s, e, i) for i, s, e in found
                             if (s == 0 or not low[s - 1].isalnum())
                             and (e == n or not low[e].isalnum())),
                            key=lambda m: (m[0], -m[1]))
        last_end = 0
        for start, end, idx in candidates:
            if start < last_end:
                continue
            last_end = end
            for cui in dictionary.cuis[idx]:
                rows["doc_id"].append(doc_id)
                rows["start"].append(start)
                rows["end"].append(end)
                rows["mention"].append(text[start:end])
                rows["entity_type"].append("concept")
                rows["source_ids"].append([cui if ":" in cui else f"UMLS:{cui}"])
                rows["cui"].append(cui)
                rows["annotator"].append("dictionary")
    return pl.DataFrame(rows, schema=MENTIONS)


def automaton_only(documents: pl.DataFrame, dictionary) -> int:
    """Every overlapping match of every lower-cased document; no post-processing."""
    from bali.text.dictionary import _lower_same_length

    find = dictionary.automaton.find_matches_as_indexes
    return sum(len(find(_lower_same_length(t), overlapping=True)) for t in documents["text"])


def compare(docs: pl.DataFrame, dictionary, text_mb: float, repeat: int) -> dict:
    """Best-of-``repeat`` seconds of the three, run alternately; the outputs must agree."""
    load_before = os.getloadavg()
    runs = {"automaton_only": automaton_only, "previous": annotate_previous,
            "vectorised": annotate_dictionary}
    best = dict.fromkeys(runs, float("inf"))
    outputs = {}
    for _, (name, fn) in itertools.product(range(repeat), runs.items()):
        t = time.perf_counter()
        outputs[name] = fn(docs, dictionary)
        best[name] = min(best[name], time.perf_counter() - t)
    if not outputs["previous"].equals(outputs["vectorised"]):
        raise AssertionError("the vectorised annotator's rows differ from the previous one's")
    out = {f"{k}_s": round(v, 2) for k, v in best.items()}
    out |= {f"{k}_mb_per_s": round(text_mb / v, 2) for k, v in best.items()}
    out |= {"overlapping_matches": outputs["automaton_only"],
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=1_000_000)
    parser.add_argument("--megabytes", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="append the result as a JSON line here")
    parser.add_argument("--compare", action="store_true",
                        help="also time the automaton alone and the previous implementation")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each with --compare")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    t0 = time.perf_counter()
    names = make_names(args.names, args.seed)
    docs = make_text(names, args.megabytes, args.seed)
    gen_s = time.perf_counter() - t0
    before = rss_mb()
    dictionary = build_dictionary(names, DictionaryOptions())
    build_s = dictionary.build_seconds
    automaton_mb = rss_mb() - before
    text_mb = sum(len(t.encode()) for t in docs["text"]) / 1e6
    t1 = time.perf_counter()
    mentions = annotate_dictionary(docs, dictionary)
    annotate_s = time.perf_counter() - t1
    result = {
        "names": dictionary.names, "text_mb": round(text_mb, 1), "documents": docs.height,
        "mentions": mentions.height, "generate_s": round(gen_s, 1),
        "build_s": round(build_s, 1), "automaton_rss_mb": round(automaton_mb),
        "annotate_s": round(annotate_s, 2), "mb_per_s_one_core": round(text_mb / annotate_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    columns = {"names": "names", "text_mb": "text MB", "mentions": "mentions",
               "build_s": "build s", "automaton_rss_mb": "automaton RSS MB",
               "annotate_s": "annotate s", "mb_per_s_one_core": "MB/s (1 core)"}
    if args.compare:
        result |= compare(docs, dictionary, text_mb, args.repeat)
        columns = {"text_mb": "text MB", "mentions": "mentions",
                   "automaton_only_mb_per_s": "automaton alone MB/s",
                   "previous_mb_per_s": "previous MB/s", "vectorised_mb_per_s": "vectorised MB/s",
                   "loadavg_before": "load avg before", "loadavg_after": "load avg after"}
    result["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    emit(result, columns, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
