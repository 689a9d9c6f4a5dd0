"""Rule-based sentence splitting with exact character offsets (no model download), linear time.

A candidate boundary is ``.``, ``!`` or ``?`` (plus closing quotes/brackets), whitespace, then
an upper-case letter, a digit, an opening bracket/quote, or a lower-case token holding a
capital, digit or bracket (``c-Fos``, ``p53``, ``mRNA``; not ``the``). ``!`` and ``?`` always
split. Before a ``.`` the word decides (read from the 48 characters around the stop, never
from the start of the text: linear time):

- ``MAY_END`` (``et al.``, lower-case units and routes: ``min``, ``ms``, ``i.v.``) split only
  before a capitalised word (``The``, ``Thermal``; not ``(2001)``, ``2001``, ``IL-2``) or a
  word of ``STARTERS``;
- a single capital is an initial (``E. coli``, ``J. Smith``) and does not split, except before
  a word of ``STARTERS`` (``D. The``), or before a capitalised word when the word before the
  capital is a lower-case word or number, not ``and``/``by`` nor ending in punctuation
  (``degrees C. Thermal``; not ``and N. Tomassini``, ``ions. J. Bacteriol``, ``(J. Breuer``,
  ``J. A. Lake``);
- any other all-capitals word is an acronym (``MS``, ``ED``, ``NO``) and splits, except a
  dotted initialism (``U.S.``, ``C.I.``), which splits only before a word of ``STARTERS``;
- ``ABBREVIATIONS`` in lower or title case (``e.g.``, ``vs.``, ``Fig.``, ``Ms.``, ``No.``)
  never split.

Decimal numbers never split (no whitespace). The title (``text[:len(title)]``) is always its
own sentence 0. Sentences are trimmed of surrounding whitespace; ``text[start:end]`` is the
sentence.

Mentions get sentence-local offsets; a mention that crosses a boundary is dropped and
counted.
"""

from __future__ import annotations

import re

import polars as pl

from bali.text.schema import SENTENCES

# Never end a sentence (lower or title case: ``Ms.``, ``no.``; ``MS.``, ``NO.`` are acronyms).
ABBREVIATIONS = frozenset(
    "e.g eg i.e ie vs v fig figs ref refs eq eqs dr mr mrs ms prof approx ca cf no nos vol vols "
    "sp spp var subsp inc ltd co corp jr sr st mt dept univ ed eds suppl resp pp".split()
)
# End a sentence only before a new one (lower case only: ``ms`` is milliseconds, ``Ms`` a title).
MAY_END = frozenset("al min max avg est ms p.o i.v i.m s.c b.i.d t.i.d q.i.d".split())
# Function words that start sentences and do not continue a name (``J. The`` is no name).
STARTERS = frozenset(
    "The This These That Those There Their They It Its In On At Of For To By With From As "
    "After Before During Although Though While When Where Whereas Since Because If Despite "
    "Unlike Among Between Within Through Under Upon Using Compared Based According Here We "
    "Our I He She A An All Both Each Every Either Neither No None Most Many Several Some Such "
    "Other Only One Two Three Four Five Six Seven Eight Nine Ten However Thus Therefore "
    "Moreover Furthermore Further Finally Also Additionally Overall Consequently Nevertheless "
    "Hence Similarly Conversely Interestingly Importantly Indeed Instead Recently Then But".split()
)
_NOT_BEFORE_INITIAL = frozenset(["and", "by", "&"])
_BOUNDARY = re.compile(r"[.!?][\"')\]]*(\s+)(?=[A-Z0-9(\[\"']|[a-z]\S*?[A-Z0-9(])")
_INITIALISM = re.compile(r"[A-Z](?:\.[A-Z])+")
_LOOK = 48  # characters looked at before a stop and after a boundary: words are shorter


def _is_boundary(text: str, stop: int, nxt: int) -> bool:
    """Whether the stop at ``stop`` ends a sentence whose successor starts at ``nxt``."""
    if text[stop] != ".":
        return True
    before = text[max(0, stop - _LOOK) : stop]
    if not before or before[-1].isspace():
        return True
    words = before.rsplit(None, 2)
    word = words[-1].lstrip("([\"'")
    if word in MAY_END:
        return _titled(text, nxt) or _starter(text, nxt)
    if len(word) == 1 and word.isalpha() and word.isupper():
        if _starter(text, nxt):
            return True
        prev = words[-2] if len(words) > 1 else ""
        return (
            word == words[-1]
            and _titled(text, nxt)
            and prev not in _NOT_BEFORE_INITIAL
            and (prev[:1].islower() or prev[:1].isdigit())
            and prev[-1].isalnum()
        )
    if word.isupper():
        return not _INITIALISM.fullmatch(word) or _starter(text, nxt)
    return word.lower() not in ABBREVIATIONS


def _titled(text: str, i: int) -> bool:
    """A capitalised word (``The``, ``Thermal``; not ``IL-2``, ``A``) starts at ``i``."""
    return text[i].isupper() and text[i + 1 : i + 2].islower()


def _starter(text: str, i: int) -> bool:
    """A word of ``STARTERS`` (``,;:`` after it allowed) starts at ``i``."""
    return text[i : i + _LOOK].split(None, 1)[0].rstrip(",;:") in STARTERS


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
        end = m.end()
        if not _is_boundary(text, m.start(), end):
            continue
        span = _trim(text, begin, m.start(1))
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

    A mapped mention belongs to the sentence with the largest start <= its start when it
    ends within that sentence (else it crosses a boundary and is dropped); its offsets become
    sentence-local, and a sentence's mentions are in (start, end, cui) order. Mentions of
    documents not in ``documents`` are ignored. Returns the table and counts: documents,
    sentences, mentions_kept, mentions_crossing_boundary (dropped), mentions_unmapped (not
    attached).
    """
    doc_ids, sentence_ids, starts, ends, texts = [], [], [], [], []
    for doc_id, title, text in documents.select("doc_id", "title", "text").iter_rows():
        for i, (s, e) in enumerate(sentence_spans(text, len(title))):
            doc_ids.append(doc_id)
            sentence_ids.append(i)
            starts.append(s)
            ends.append(e)
            texts.append(text[s:e])
    sentences = pl.DataFrame(
        {"doc_id": doc_ids, "sentence_id": sentence_ids, "start": starts, "end": ends,
         "text": texts}, schema={k: v for k, v in SENTENCES.items() if k != "mentions"})
    mapped = mentions.filter(pl.col("cui").is_not_null())
    located = (
        mapped.select("doc_id", "start", "end", "cui")
        .join(documents.select("doc_id"), on="doc_id", how="semi")
        .sort("doc_id", "start", "end", "cui").sort("start", maintain_order=True)
        .join_asof(sentences.select("doc_id", "sentence_id", s0="start", s1="end")
                   .sort("s0", maintain_order=True),
                   left_on="start", right_on="s0", by="doc_id", strategy="backward",
                   check_sortedness=False)
    )
    inside = pl.col("s1").is_not_null() & (pl.col("end") <= pl.col("s1"))
    kept = located.filter(inside).sort("doc_id", "start", "end", "cui")
    attached = kept.group_by("doc_id", "sentence_id", maintain_order=True).agg(
        pl.struct(start=pl.col("start") - pl.col("s0"), end=pl.col("end") - pl.col("s0"),
                  cui="cui").alias("mentions"))
    table = (sentences.join(attached, on=["doc_id", "sentence_id"], how="left",
                            maintain_order="left")
             .with_columns(pl.col("mentions").fill_null([]))
             .select(list(SENTENCES)).cast(SENTENCES))
    stats = {"documents": documents.height, "sentences": sentences.height,
             "mentions_kept": kept.height,
             "mentions_crossing_boundary": located.height - kept.height,
             "mentions_unmapped": mentions.height - mapped.height}
    return table, stats
