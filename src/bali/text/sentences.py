"""Rule-based sentence splitting with exact character offsets (no model download).

A boundary is ``.``, ``!`` or ``?`` (plus closing quotes/brackets) followed by whitespace and
an upper-case letter, digit or opening bracket/quote, unless the word before the stop is a
known abbreviation (``et al.``, ``e.g.``, ``i.e.``, ``vs.``, ``Fig.``, ``approx.`` ...) or a
single capital letter (``E. coli``, ``J. Smith``). Decimal numbers never split (no
whitespace). The title (``text[:len(title)]``) is always its own sentence 0. Sentences are
trimmed of surrounding whitespace; ``text[start:end]`` is the sentence.

Mentions get sentence-local offsets; a mention that crosses a boundary is dropped and
counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import polars as pl

from bali.text.schema import SENTENCES

ABBREVIATIONS = frozenset(
    [
        "al",
        "e.g",
        "eg",
        "i.e",
        "ie",
        "vs",
        "v",
        "fig",
        "figs",
        "ref",
        "refs",
        "eq",
        "eqs",
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "approx",
        "ca",
        "cf",
        "no",
        "nos",
        "vol",
        "vols",
        "sp",
        "spp",
        "var",
        "subsp",
        "inc",
        "ltd",
        "co",
        "corp",
        "jr",
        "sr",
        "st",
        "mt",
        "dept",
        "univ",
        "ed",
        "eds",
        "suppl",
        "resp",
        "pp",
        "p.o",
        "i.v",
        "i.m",
        "s.c",
        "b.i.d",
        "t.i.d",
        "q.i.d",
        "min",
        "max",
        "avg",
        "est",
    ]
)
_BOUNDARY = re.compile(r"[.!?][\"')\]]*\s+(?=[A-Z0-9(\[\"'])")
_WORD_BEFORE = re.compile(r"(\S+)$")


def _is_abbreviation(text: str, stop: int) -> bool:
    """True if the stop character at ``stop`` ends an abbreviation or an initial."""
    if text[stop] != ".":
        return False
    m = _WORD_BEFORE.search(text, 0, stop)
    if not m:
        return False
    word = m.group(1).lstrip("([\"'")
    if len(word) == 1 and word.isalpha() and word.isupper():
        return True  # initial or genus abbreviation: "E. coli", "J. Smith"
    return word.lower() in ABBREVIATIONS


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def sentence_spans(text: str, title_length: int = 0) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of the sentences of ``text``; the first ``title_length``
    characters form one sentence of their own."""
    spans: list[tuple[int, int]] = []
    if title_length:
        span = _trim(text, 0, title_length)
        if span:
            spans.append(span)
    begin = title_length
    for m in _BOUNDARY.finditer(text, title_length):
        if _is_abbreviation(text, m.start()):
            continue
        end = m.end()
        span = _trim(text, begin, end)
        if span:
            spans.append(span)
        begin = end
    span = _trim(text, begin, len(text))
    if span:
        spans.append(span)
    return spans


def split_documents(
    documents: pl.DataFrame, mentions: pl.DataFrame
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Split ``documents`` into the ``sentences`` table, attaching mapped ``mentions``.

    Returns the table and counts: documents, sentences, mentions_kept,
    mentions_crossing_boundary (dropped), mentions_unmapped (not attached).
    """
    mapped = mentions.filter(pl.col("cui").is_not_null())
    by_doc: dict[str, list[tuple[int, int, str]]] = {}
    for doc_id, start, end, cui in mapped.select("doc_id", "start", "end", "cui").iter_rows():
        by_doc.setdefault(doc_id, []).append((start, end, cui))
    stats = {
        "documents": documents.height,
        "sentences": 0,
        "mentions_kept": 0,
        "mentions_crossing_boundary": 0,
        "mentions_unmapped": mentions.height - mapped.height,
    }
    rows = {k: [] for k in SENTENCES}
    for doc_id, title, text in documents.select("doc_id", "title", "text").iter_rows():
        spans = sentence_spans(text, len(title))
        attached = _attach(spans, sorted(by_doc.get(doc_id, ())), stats)
        for i, ((s, e), local) in enumerate(zip(spans, attached, strict=True)):
            rows["doc_id"].append(doc_id)
            rows["sentence_id"].append(i)
            rows["start"].append(s)
            rows["end"].append(e)
            rows["text"].append(text[s:e])
            rows["mentions"].append(local)
    stats["sentences"] = len(rows["doc_id"])
    return pl.DataFrame(rows, schema=SENTENCES), stats


def _attach(
    spans: list[tuple[int, int]], mentions: Iterable[tuple[int, int, str]], stats: dict
) -> list[list[dict]]:
    """Sentence-local mention lists for ``spans`` (both sorted by start)."""
    out: list[list[dict]] = [[] for _ in spans]
    i = 0
    for start, end, cui in mentions:
        while i < len(spans) and spans[i][1] <= start:
            i += 1
        if i < len(spans) and spans[i][0] <= start and end <= spans[i][1]:
            s0 = spans[i][0]
            out[i].append({"start": start - s0, "end": end - s0, "cui": cui})
            stats["mentions_kept"] += 1
        else:
            stats["mentions_crossing_boundary"] += 1
    return out
