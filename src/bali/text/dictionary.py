"""Dictionary annotator: KG names matched in text with an Aho-Corasick automaton.

Matching is case-insensitive (``str.lower`` of name and text), on word boundaries (the
characters before and after a match are not letters or digits) and leftmost-longest: of
overlapping boundary-respecting matches the earliest start wins, then the longest. Names
shorter than ``min_length``, purely numeric names and ``stop_names`` are not matched. A name
of several concepts is linked to all of them (``ambiguous="all"``, one mention row per
concept) or skipped (``"skip"``). Uses ``ahocorasick_rs`` (Rust automaton).

Documents are lower-cased, joined by a separator that is no letter, digit or part of a name,
and searched in chunks of ~1M characters, one automaton call each for every overlapping
match; the word-boundary test, the leftmost-longest choice and the mention rows are numpy
and polars array operations (no Python loop over matches).
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field

import ahocorasick_rs
import numpy as np
import polars as pl

from bali.errors import OptionError
from bali.text.schema import MENTIONS

log = logging.getLogger(__name__)

STOP_NAMES = tuple(
    [
        "all",
        "and",
        "any",
        "are",
        "were",
        "can",
        "may",
        "has",
        "had",
        "have",
        "not",
        "for",
        "the",
        "with",
        "from",
        "this",
        "that",
        "these",
        "those",
        "was",
        "its",
        "our",
        "out",
        "one",
        "two",
        "three",
        "per",
        "via",
        "use",
        "used",
        "using",
        "other",
        "others",
        "well",
        "case",
        "cases",
        "type",
        "form",
        "part",
        "left",
        "right",
        "total",
        "mean",
        "rate",
        "high",
        "low",
        "normal",
        "onset",
        "age",
        "sex",
        "male",
        "female",
        "man",
        "men",
        "woman",
        "women",
        "child",
        "children",
        "adult",
        "adults",
        "patient",
        "patients",
        "human",
        "humans",
        "study",
    ]
)


@dataclass(frozen=True)
class DictionaryOptions:
    """Options of the dictionary annotator."""

    min_length: int = field(default=3, metadata={"help": "shortest name (characters) matched"})
    stop_names: tuple[str, ...] = field(
        default=STOP_NAMES, metadata={"help": "names never matched (case-insensitive)"}
    )
    ambiguous: str = field(
        default="all", metadata={"help": "a name of several concepts: 'all' or 'skip'",
                                 "choices": ("all", "skip")}
    )


@dataclass
class Dictionary:
    """An automaton over distinct lower-cased names and each name's concept ids.

    ``cuis[i]`` are the concept ids of name ``i``; ``cui_ptr``/``cui_flat`` hold the same in
    CSR form (name ``i``'s ids are ``cui_flat[cui_ptr[i]:cui_ptr[i + 1]]``). ``separator`` is
    a character that is neither a letter nor a digit and occurs in no name: documents are
    joined with it and searched in one automaton call."""

    automaton: ahocorasick_rs.AhoCorasick
    cuis: list[tuple[str, ...]]
    names: int
    build_seconds: float
    cui_ptr: np.ndarray
    cui_flat: pl.Series
    separator: str


def build_dictionary(names: pl.DataFrame, opts: DictionaryOptions) -> Dictionary:
    """Build the matcher from a KG ``names`` table (cui, name)."""
    if opts.ambiguous not in ("all", "skip"):
        raise OptionError(f"ambiguous must be 'all' or 'skip', not {opts.ambiguous!r}")
    t0 = time.perf_counter()
    stop = {s.lower() for s in opts.stop_names}
    grouped = (
        names.select(pl.col("name").str.strip_chars().str.to_lowercase().alias("key"), "cui")
        .filter(
            (pl.col("key").str.len_chars() >= opts.min_length)
            & ~pl.col("key").is_in(list(stop))
            & ~pl.col("key").str.contains(r"^[\d\s.,%-]+$")
        )
        .unique()
        .group_by("key")
        .agg(pl.col("cui").sort())
        .sort("key")
    )
    if opts.ambiguous == "skip":
        grouped = grouped.filter(pl.col("cui").list.len() == 1)
    keys = grouped["key"].to_list()
    automaton = ahocorasick_rs.AhoCorasick(keys, matchkind=ahocorasick_rs.MatchKind.Standard)
    sizes = grouped["cui"].list.len().to_numpy().astype(np.int64)
    cui_ptr = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    separator = next(c for c in _SEPARATORS
                     if not grouped["key"].str.contains(c, literal=True).any())
    seconds = time.perf_counter() - t0
    log.info("dictionary: %d names -> automaton in %.1fs", len(keys), seconds)
    return Dictionary(automaton, [tuple(c) for c in grouped["cui"].to_list()], len(keys), seconds,
                      cui_ptr, grouped["cui"].explode().rename("cui"), separator)


# candidate document separators: control and private-use characters (never letters/digits)
_SEPARATORS = (*map(chr, range(32)), *map(chr, range(0xE000, 0xE100)))
_CHUNK_CHARS = 1 << 20  # characters per automaton call (longer ones are slower: GC of the result)
_ASCII_ALNUM = np.array([chr(i).isalnum() for i in range(128)])


def _lower_same_length(text: str) -> str:
    """``text.lower()`` if it keeps every offset (true but for a few Unicode letters such as
    'İ'); otherwise lower-case character by character where that keeps the length."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _isalnum(codepoints: np.ndarray) -> np.ndarray:
    """``chr(c).isalnum()`` for an array of code points (a table for ASCII, ``str.isalnum``
    once per distinct other code point)."""
    out = np.zeros(codepoints.shape, dtype=bool)
    ascii_ = codepoints < 128
    out[ascii_] = _ASCII_ALNUM[codepoints[ascii_]]
    if not ascii_.all():
        uniq, inverse = np.unique(codepoints[~ascii_], return_inverse=True)
        out[~ascii_] = np.array([chr(c).isalnum() for c in uniq.tolist()])[inverse]
    return out


def _match_chunk(texts: list[str], dictionary: Dictionary) -> tuple[np.ndarray, ...]:
    """(text index, start, end, name index) of the chosen matches in ``texts``, in text and
    start order; the texts are lower-cased, joined by the separator and searched at once."""
    lows = [_lower_same_length(t) for t in texts]
    big = dictionary.separator.join(lows)
    lengths = np.fromiter(map(len, lows), np.int64, count=len(lows))
    offsets = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    found = dictionary.automaton.find_matches_as_indexes(big, overlapping=True)
    if not found:
        return tuple(np.zeros(0, np.int64) for _ in range(4))
    matches = np.fromiter(itertools.chain.from_iterable(found), np.int64, count=3 * len(found))
    del found
    idx, start, end = matches.reshape(-1, 3).T
    # word boundaries: the characters around a match are not letters or digits (a document's
    # edge is next to the separator, which is neither)
    codes = (np.frombuffer(big.encode("ascii"), np.uint8) if big.isascii()
             else np.frombuffer(big.encode("utf-32-le"), np.uint32))
    n = codes.size
    sep = ord(dictionary.separator)
    around = np.concatenate((np.where(start > 0, codes[np.maximum(start - 1, 0)], sep),
                             np.where(end < n, codes[np.minimum(end, n - 1)], sep)))
    alnum = _isalnum(around.astype(np.int64))
    ok = ~(alnum[:idx.size] | alnum[idx.size:])
    idx, start, end = idx[ok], start[ok], end[ok]
    # leftmost-longest: the longest match of each start; then, in start order, a match is
    # chosen when it starts at or after the end of the previously chosen one
    order = np.lexsort((-end, start))
    idx, start, end = idx[order], start[order], end[order]
    first = np.ones(start.size, dtype=bool)
    first[1:] = start[1:] != start[:-1]
    idx, start, end = idx[first], start[first], end[first]
    m = start.size
    # a match starting at or after every earlier match's end is chosen whatever came before;
    # from it the chosen ones follow a chain: next = first match starting at or after its end
    head = np.ones(m, dtype=bool)
    head[1:] = start[1:] >= np.maximum.accumulate(end)[:-1]
    nxt = np.searchsorted(start, end, side="left")
    chosen = head.copy()
    frontier = np.flatnonzero(head)
    while frontier.size:
        frontier = nxt[frontier]
        frontier = frontier[frontier < m]
        frontier = frontier[~head[frontier]]
        chosen[frontier] = True
    idx, start, end = idx[chosen], start[chosen], end[chosen]
    text = np.searchsorted(offsets, start, side="right") - 1
    return text, start - offsets[text], end - offsets[text], idx


def _match_arrays(texts: list[str], dictionary: Dictionary) -> tuple[np.ndarray, ...]:
    """:func:`_match_chunk` over consecutive texts of about ``_CHUNK_CHARS`` characters."""
    if not texts:
        return tuple(np.zeros(0, np.int64) for _ in range(4))
    sizes = np.fromiter(map(len, texts), np.int64, count=len(texts)) + 1
    before = np.cumsum(sizes) - sizes  # characters (with separators) before each text
    bounds = [*np.flatnonzero(np.diff(before // _CHUNK_CHARS, prepend=-1)).tolist(), len(texts)]
    parts = []
    for i, j in itertools.pairwise(bounds):
        text, start, end, idx = _match_chunk(texts[i:j], dictionary)
        parts.append((text + i, start, end, idx))
    return tuple(np.concatenate(cols) for cols in zip(*parts, strict=True))


def find_matches(text: str, dictionary: Dictionary) -> list[tuple[int, int, int]]:
    """Leftmost-longest, word-bounded matches ``(start, end, name_index)`` in ``text``."""
    _, start, end, idx = _match_arrays([text], dictionary)
    return list(zip(start.tolist(), end.tolist(), idx.tolist(), strict=True))


def annotate_dictionary(documents: pl.DataFrame, dictionary: Dictionary) -> pl.DataFrame:
    """``mentions`` rows (cui set, one per concept of the name) for ``documents``."""
    texts = documents["text"].to_list()
    doc, start, end, idx = _match_arrays(texts, dictionary)
    mention = pl.Series([texts[d][s:e] for d, s, e in
                         zip(doc.tolist(), start.tolist(), end.tolist(), strict=True)],
                        dtype=pl.String)
    # one row per concept of the matched name, in the name's (sorted) concept order
    first, counts = dictionary.cui_ptr[idx], np.diff(dictionary.cui_ptr)[idx]
    row = np.repeat(np.arange(idx.size), counts)
    flat = first[row] + np.arange(row.size) - np.repeat(np.cumsum(counts) - counts, counts)
    cui = dictionary.cui_flat.gather(flat)
    return pl.DataFrame({
        "doc_id": documents["doc_id"].gather(doc[row]),
        "start": pl.Series(start[row], dtype=pl.Int32),
        "end": pl.Series(end[row], dtype=pl.Int32),
        "mention": mention.gather(row),
        "cui": cui,
    }).select(
        "doc_id", "start", "end", "mention",
        entity_type=pl.lit("concept", pl.String),
        source_ids=pl.concat_list(pl.when(pl.col("cui").str.contains(":", literal=True))
                                  .then(pl.col("cui")).otherwise(pl.lit("UMLS:") + pl.col("cui"))),
        cui="cui", annotator=pl.lit("dictionary", pl.String),
    ).cast(MENTIONS).select(list(MENTIONS))
