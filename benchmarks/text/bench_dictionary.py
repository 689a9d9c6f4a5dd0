"""Dictionary annotator throughput with a large generated dictionary.

    python benchmarks/text/bench_dictionary.py --names 1000000 --megabytes 20

Names: ``--names`` distinct multi-word biomedical-looking names (1-5 words from a
generated vocabulary of 60k word forms, realistic length distribution), spread over
concepts with ~3 names each, as a UMLS-scale ``names`` table would be. Text: the real
abstracts of ``../shared/data/bern2/pubmed_abstracts_1k.jsonl`` (repeated to
``--megabytes``; synthetic sentences with dictionary names inserted when the file is
absent), with a share of sentences carrying generated names so that matches are dense.
Reports automaton build time, its memory (RSS growth), and annotation throughput in MB/s
of text on one core (``annotate_dictionary``, the code the pipeline runs).

``--compare`` also times, alternately in the same process, best of ``--repeat`` runs each,
with the load average before and after: the automaton call alone on the haystacks the
annotator searches (every overlapping match, no post-processing: the floor) and an earlier
implementation, and checks that it finds the same rows. The earlier one is the module given
by ``--previous`` (a copy of an earlier ``src/bali/text/dictionary.py``, e.g.
``git show HEAD:src/bali/text/dictionary.py > /tmp/old_dictionary.py``; it builds its own
automaton, and its automaton alone is timed too), else the per-document Python annotator
kept here (``annotate_previous``: per document the automaton call, then the word boundaries,
leftmost-longest and the rows in Python).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: benchlib
from benchlib import ABSTRACTS, emit  # noqa: E402

from bali.text.dictionary import DictionaryOptions, annotate_dictionary, build_dictionary
from bali.text.readers import iter_documents
from bali.text.schema import DOCUMENTS

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
            for cui in dictionary.concept_ids(idx):
                rows["doc_id"].append(doc_id)
                rows["start"].append(start)
                rows["end"].append(end)
                rows["mention"].append(text[start:end])
                rows["entity_type"].append("concept")
                rows["source_ids"].append([cui if ":" in cui else f"UMLS:{cui}"])
                rows["cui"].append(cui)
                rows["annotator"].append("dictionary")
    return pl.DataFrame(rows, schema=MENTIONS)


def load_previous(path: Path):
    """The module of an earlier ``dictionary.py`` (imported under its own name)."""
    spec = importlib.util.spec_from_file_location(f"previous_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


def haystacks(docs: pl.DataFrame, dictionary) -> list:
    """What the current annotator hands the automaton: per chunk, the marked UTF-8 bytes."""
    from bali.text.dictionary import _chunks, _haystack

    texts = docs["text"].to_list()
    return [_haystack(texts[i:j], dictionary)[-1] for i, j in _chunks(texts)]


def previous_haystacks(docs: pl.DataFrame, module, dictionary) -> list[str]:
    """What the previous (pre-marking) annotator hands its automaton: per chunk, the
    lower-cased texts joined by the separator."""
    from bali.text.dictionary import _chunks

    texts = docs["text"].to_list()
    return [dictionary.separator.join(map(module._lower_same_length, texts[i:j]))
            for i, j in _chunks(texts)]


def compare(docs: pl.DataFrame, dictionary, text_mb: float, repeat: int,
            previous=None) -> dict:
    """Best-of-``repeat`` seconds of each, run alternately; the annotators' rows must agree.
    ``previous``: (module, its dictionary) of an earlier implementation."""
    hay = haystacks(docs, dictionary)
    find = dictionary.automaton.find_marked
    runs = {"automaton_only": lambda: sum(len(find(h)) for h in hay)}
    if previous is not None:
        module, prev = previous
        prev_hay = previous_haystacks(docs, module, prev)
        prev_find = prev.automaton.find_matches_as_indexes
        runs["previous_automaton_only"] = lambda: sum(len(prev_find(h, overlapping=True))
                                                      for h in prev_hay)
        runs["previous"] = lambda: module.annotate_dictionary(docs, prev)
    else:
        runs["previous"] = lambda: annotate_previous(docs, dictionary)
    runs["current"] = lambda: annotate_dictionary(docs, dictionary)
    load_before = os.getloadavg()
    best = dict.fromkeys(runs, float("inf"))
    outputs = {}
    for _, (name, fn) in itertools.product(range(repeat), runs.items()):
        t = time.perf_counter()
        outputs[name] = fn()
        best[name] = min(best[name], time.perf_counter() - t)
    if not outputs["previous"].equals(outputs["current"]):
        raise AssertionError("the current annotator's rows differ from the previous one's")
    out = {f"{k}_s": round(v, 3) for k, v in best.items()}
    out |= {f"{k}_mb_per_s": round(text_mb / v, 2) for k, v in best.items()}
    out |= {"overlapping_matches": outputs["automaton_only"],
            "previous_overlapping_matches": outputs.get("previous_automaton_only"),
            "rows_equal": True, "previous": "--previous" if previous else "annotate_previous",
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
    parser.add_argument("--previous", type=Path, help="with --compare: an earlier "
                        "dictionary.py to time against (default: annotate_previous here)")
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
        previous = None
        if args.previous:
            module = load_previous(args.previous)
            previous = module, module.build_dictionary(names, module.DictionaryOptions())
        result |= compare(docs, dictionary, text_mb, args.repeat, previous)
        columns = {"text_mb": "text MB", "mentions": "mentions",
                   "loadavg_before": "load avg before", "loadavg_after": "load avg after"}
        if previous:
            columns["previous_automaton_only_mb_per_s"] = "previous: automaton alone MB/s"
        columns |= {"previous_mb_per_s": "previous MB/s",
                    "automaton_only_mb_per_s": "current: automaton alone MB/s",
                    "current_mb_per_s": "current MB/s"}
    result["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    emit(result, columns, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
