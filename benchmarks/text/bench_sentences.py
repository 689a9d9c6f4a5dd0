"""Sentence splitting: speed on one core, time vs document size, quality against other tools.

    python benchmarks/text/bench_sentences.py speed [--max-kb 1024] [--module OLD.py]
    python benchmarks/text/bench_sentences.py quality [--docs 100] [--all] [--module OLD.py]
    python benchmarks/text/bench_sentences.py compare OLD.py

Text: the real abstracts of ``../shared/data/bern2/pubmed_abstracts_1k.jsonl``.

``speed`` pins the process to one core (``os.sched_setaffinity``), prints the load average,
the throughput (MB/s of UTF-8 text, best of ``--repeat``) of ``sentence_spans`` over the 1,000
documents (title + abstract, as the pipeline calls it), and the time for single documents of
2 KB to ``--max-kb`` made of abstracts joined end to end: linear time means a constant time per
KB. ``--module`` times the ``sentence_spans`` of another file instead (e.g. an old version:
``git show REV:src/bali/text/sentences.py > /tmp/old.py``).

``quality`` splits the first ``--docs`` abstracts with bali, NLTK punkt, spaCy's sentencizer
(``spacy.blank("en")``) and pysbd (the ``bench`` extra: ``pip install -e .[bench]``; a missing
tool is skipped). Boundaries are sentence start offsets. Each tool is scored against the
boundaries that a majority of the *other* tools find: extra + missed = errors. Every bali
disagreement is printed (``--all``: every tool's). Punkt uses NLTK's ``punkt_tab`` English
model when it is installed (``nltk.download("punkt_tab")``); without it, Punkt is trained
(unsupervised, as Punkt is meant to be) on the 1,000 abstracts and reported as
``punkt(trained)``.

``compare`` prints every boundary of the 1,000 documents that differs between another file's
``sentence_spans`` and bali's, and the counts.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: benchlib
from benchlib import ABSTRACTS, OUT, emit  # noqa: E402

from bali.text.sentences import sentence_spans


def load_abstracts() -> list[dict]:
    if not ABSTRACTS.exists():
        sys.exit(f"{ABSTRACTS} not found (the shared data is not on this machine)")
    with open(ABSTRACTS) as fh:
        return [json.loads(line) for line in fh]


def load_splitter(module: str | None):
    if not module:
        return sentence_spans
    spec = importlib.util.spec_from_file_location("other_sentences", module)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.sentence_spans


def best_time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def speed(args) -> None:
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    split = load_splitter(args.module)
    docs = [(d["title"] + " " + d["abstract"], len(d["title"])) for d in load_abstracts()]
    size = sum(len(t.encode()) for t, _ in docs)
    load = tuple(round(x, 2) for x in os.getloadavg())
    print(f"pinned to core {core}; load average {load} "
          f"on {os.cpu_count()} cores; module {args.module or 'bali.text.sentences'}")
    seconds = best_time(lambda: [split(t, n) for t, n in docs], args.repeat)
    result = {"what": "sentences_speed", "module": args.module or "bali", "documents": len(docs),
              "megabytes": round(size / 1e6, 3), "seconds": round(seconds, 4),
              "mb_per_s": round(size / 1e6 / seconds, 2),
              "load_average": load[0], "sizes": []}
    emit(result, {"documents": "documents", "megabytes": "MB", "seconds": "s (best)",
                  "mb_per_s": "MB/s (1 core)", "load_average": "load"})
    joined = " ".join(t for t, _ in docs)
    print("\n| document | sentences | s (best) | µs per KB | MB/s |\n|---|---|---|---|---|")
    kb = 2
    while kb <= args.max_kb:
        text = (joined * (1 + kb * 1024 // len(joined)))[:kb * 1024]
        start = time.perf_counter()
        n = len(split(text))
        s = time.perf_counter() - start
        if s < 1:  # repeat the fast ones; a quadratic splitter's large sizes run once
            s = min(s, best_time(lambda t=text: split(t), args.repeat - 1))
        print(f"| {kb:,} KB | {n:,} | {s:.5f} | {s * 1e6 / kb:.1f} | {kb * 1024 / 1e6 / s:.1f} |")
        result["sizes"].append({"kb": kb, "sentences": n, "seconds": s})
        kb *= 4 if kb < 512 else 2
    OUT.mkdir(exist_ok=True)
    with open(OUT / "sentences_results.jsonl", "a") as fh:
        fh.write(json.dumps(result) + "\n")


def _starts(text: str, starts) -> set[int]:
    """Sentence starts moved onto the next non-space character; 0 and the end dropped."""
    out = set()
    for s in starts:
        while s < len(text) and text[s].isspace():
            s += 1
        if 0 < s < len(text):
            out.add(s)
    return out


def tools(docs: list[dict], module: str | None = None) -> dict:
    """Name -> function(text) -> sentence starts, for each installed tool."""
    split = load_splitter(module)
    found = {"bali": lambda t: [s for s, _ in split(t)]}
    try:
        import nltk
        from nltk.tokenize.punkt import PunktSentenceTokenizer, PunktTrainer
        try:
            nltk.data.find("tokenizers/punkt_tab/english/")
            punkt, name = nltk.tokenize.PunktTokenizer("english"), "punkt"
        except LookupError:
            print("punkt: no punkt_tab model installed; training Punkt on the 1,000 abstracts")
            trainer = PunktTrainer()
            trainer.train("\n\n".join(d["abstract"] for d in docs), finalize=True)
            punkt, name = PunktSentenceTokenizer(trainer.get_params()), "punkt(trained)"
        found[name] = lambda t: [s for s, _ in punkt.span_tokenize(t)]
    except ImportError:
        print("punkt: nltk not installed, skipped (pip install -e .[bench])")
    try:
        import spacy
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        found["spacy"] = lambda t: [s.start_char for s in nlp(t).sents]
    except ImportError:
        print("spacy: not installed, skipped (pip install -e .[bench])")
    try:
        import pysbd
        seg = pysbd.Segmenter(language="en", clean=False)

        def pysbd_starts(t):
            starts, pos = [], 0
            for sent in seg.segment(t):  # located in order: pysbd's char_span is unreliable
                pos = t.index(sent.strip(), pos)
                starts.append(pos)
            return starts
        found["pysbd"] = pysbd_starts
    except ImportError:
        print("pysbd: not installed, skipped (pip install -e .[bench])")
    return found


def quality(args) -> None:
    docs = load_abstracts()
    splitters = tools(docs, args.module)
    texts = [d["abstract"] for d in docs[:args.docs]]
    found = {name: [_starts(t, fn(t)) for t in texts] for name, fn in splitters.items()}
    if len(found) < 3:
        sys.exit(f"only {sorted(found)}: a majority reference needs two other tools")
    print(f"\n{len(texts)} abstracts; reference for each tool: boundaries found by more than "
          "half of the other tools\n")
    rows = []
    for name in found:
        others = [o for o in found if o != name]
        extra = missed = total = 0
        for i, text in enumerate(texts):
            votes = {}
            for o in others:
                for b in found[o][i]:
                    votes[b] = votes.get(b, 0) + 1
            ref = {b for b, v in votes.items() if 2 * v > len(others)}
            mine = found[name][i]
            total += len(ref)
            extra += len(mine - ref)
            missed += len(ref - mine)
            if name == "bali" or args.all:
                for b in sorted(mine ^ ref):
                    agree = ",".join(o for o in others if b in found[o][i]) or "-"
                    print(f"{name} {'extra ' if b in mine else 'missed'} doc {i:3d} [{agree}] "
                          f"{text[max(0, b - 45):b]!r} | {text[b:b + 25]!r}")
        rows.append({"tool": name, "reference": total, "extra": extra, "missed": missed,
                     "errors": extra + missed})
    print("\n| tool | reference boundaries | extra | missed | errors |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['tool']} | {r['reference']} | {r['extra']} | {r['missed']} | {r['errors']} |")
    best = min(r["errors"] for r in rows if r["tool"] != "bali")
    mine = next(r["errors"] for r in rows if r["tool"] == "bali")
    print(f"\nbali {mine} errors, best other tool {best}: {'OK' if mine <= best else 'WORSE'}")
    OUT.mkdir(exist_ok=True)
    with open(OUT / "sentences_results.jsonl", "a") as fh:
        fh.write(json.dumps({"what": "sentences_quality", "docs": len(texts), "rows": rows}) + "\n")


def compare(args) -> None:
    other = load_splitter(args.module)
    added = removed = sentences = 0
    for d in load_abstracts():
        text, n = d["title"] + " " + d["abstract"], len(d["title"])
        old = {e for _, e in other(text, n)[:-1]}
        new = {e for _, e in sentence_spans(text, n)[:-1]}
        sentences += len(old) + 1
        for b in sorted(old ^ new):
            print(f"{'+split' if b in new else '-split'} {d['pmid']} "
                  f"{text[max(0, b - 45):b]!r} | {text[b:b + 25]!r}")
        added += len(new - old)
        removed += len(old - new)
    print(f"\n{added} boundaries added, {removed} removed ({sentences:,} sentences before)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--max-kb", type=int, default=1024)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--module", help="time the sentence_spans of this file instead")
    p = sub.add_parser("quality")
    p.add_argument("--docs", type=int, default=100)
    p.add_argument("--all", action="store_true", help="print every tool's disagreements")
    p.add_argument("--module", help="score the sentence_spans of this file as bali")
    p = sub.add_parser("compare")
    p.add_argument("module", help="a file with another sentence_spans")
    args = parser.parse_args()
    {"speed": speed, "quality": quality, "compare": compare}[args.command](args)


if __name__ == "__main__":
    main()
