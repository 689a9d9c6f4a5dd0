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

Word starts are marked for the automaton: in the UTF-8 bytes of the lower-cased names and
text, an ASCII letter that starts a word (no letter or digit before it) is upper-cased,
which keeps every offset (a lower-cased text has no upper-case ASCII letter). A name
beginning with an ASCII letter then only matches where a word begins, so the automaton
(``BytesAhoCorasick``) does not follow the names that begin inside words, the slowest part
of its search. It reports the overlapping matches of the lower-cased text less those of such
names that start inside a word, which the boundary test would reject; the boundary test
then runs on the rest as before, and byte offsets become character offsets at the end.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from bali.errors import OptionError
from bali.progress import Progress
from bali.text.schema import MENTIONS
from bali.text.words import (
    WordStartAutomaton,
    alnum_bytes,
    char_offsets,
    mark_word_starts,
    utf8_bytes,
    word_starts,
)

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

    Name ``i``'s concept ids are ``cui_flat[cui_ptr[i]:cui_ptr[i + 1]]`` (CSR form; one
    name's as a tuple: :meth:`concept_ids`). ``separator`` is
    a character that is neither a letter nor a digit and occurs in no name: documents are
    joined with it and searched in one automaton call."""

    automaton: WordStartAutomaton
    names: int
    build_seconds: float
    cui_ptr: np.ndarray
    cui_flat: pl.Series
    separator: str

    def concept_ids(self, i: int) -> tuple[str, ...]:
        """The concept ids of name ``i``."""
        a, b = int(self.cui_ptr[i]), int(self.cui_ptr[i + 1])
        return tuple(self.cui_flat.slice(a, b - a).to_list())


def build_dictionary(names: pl.DataFrame, opts: DictionaryOptions) -> Dictionary:
    """Build the matcher from a KG ``names`` table (cui, name)."""
    if opts.ambiguous not in ("all", "skip"):
        raise OptionError(f"ambiguous must be 'all' or 'skip', not {opts.ambiguous!r}")
    t0 = time.perf_counter()
    stop = {s.lower() for s in opts.stop_names}
    # (key, cui) pairs in key then cui order: a name's concepts are a run of rows
    pairs = (
        names.select(pl.col("name").str.strip_chars().str.to_lowercase().alias("key"), "cui")
        .filter(
            (pl.col("key").str.len_chars() >= opts.min_length)
            & ~pl.col("key").is_in(list(stop))
            & ~pl.col("key").str.contains(r"^[\d\s.,%-]+$")
        )
        .unique()
        .sort("key", "cui")
    )
    if opts.ambiguous == "skip":
        pairs = pairs.filter(pl.col("key").is_unique())
    first = pairs["key"].is_first_distinct()
    keys = pairs["key"].filter(first)
    cui_ptr = np.append(np.flatnonzero(first.to_numpy()), pairs.height).astype(np.int64)
    separator = next(c for c in _SEPARATORS if not keys.str.contains(c, literal=True).any())
    automaton = WordStartAutomaton(keys.to_list(), separator)
    cui_flat = pairs["cui"]
    seconds = time.perf_counter() - t0
    log.info("dictionary: %d names -> automaton in %.1fs", keys.len(), seconds)
    return Dictionary(automaton, keys.len(), seconds, cui_ptr, cui_flat, separator)


# candidate document separators: control and private-use characters (never letters/digits)
_SEPARATORS = (*map(chr, range(32)), *map(chr, range(0xE000, 0xE100)))
_CHUNK_CHARS = 1 << 20  # characters per automaton call (longer ones are slower: GC of the result)


def _lower_same_length(text: str) -> str:
    """``text.lower()`` if it keeps every offset (true but for a few Unicode letters such as
    'İ'); otherwise lower-case character by character where that keeps the length."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _haystack(texts: list[str], dictionary: Dictionary) -> tuple:
    """The texts lower-cased and joined by the separator: (the string, its UTF-8 bytes, their
    :func:`alnum_bytes`, their :func:`word_starts`, the marked bytes the automaton searches)."""
    lows = [t.lower() for t in texts]  # (one lower() of the joined text is slower: not ASCII)
    changed = np.fromiter(map(len, lows), np.int64, count=len(lows)) != np.fromiter(
        map(len, texts), np.int64, count=len(texts))
    for i in np.flatnonzero(changed).tolist():
        lows[i] = _lower_same_length(texts[i])
    big = dictionary.separator.join(lows)
    data = utf8_bytes(big)
    alnum = alnum_bytes(data)  # (a document's edge is next to the separator, which is neither)
    starts = word_starts(alnum)
    return big, data, alnum, starts, mark_word_starts(data, starts)


def _chunks(texts: list[str]) -> list[tuple[int, int]]:
    """``(i, j)``: consecutive runs ``texts[i:j]`` of about ``_CHUNK_CHARS`` characters."""
    sizes = np.fromiter(map(len, texts), np.int64, count=len(texts)) + 1
    before = np.cumsum(sizes) - sizes  # characters (with separators) before each text
    bounds = [*np.flatnonzero(np.diff(before // _CHUNK_CHARS, prepend=-1)).tolist(), len(texts)]
    return list(itertools.pairwise(bounds)) if texts else []


def _match_chunk(texts: list[str], dictionary: Dictionary) -> tuple[np.ndarray, ...]:
    """(text index, start, end, name index) of the chosen matches in ``texts``, in text and
    start order; the texts are lower-cased, joined by the separator and searched at once."""
    lengths = np.fromiter(map(len, texts), np.int64, count=len(texts))
    offsets = np.concatenate(([0], np.cumsum(lengths + 1)[:-1]))
    big, data, alnum, starts, marked = _haystack(texts, dictionary)
    found = dictionary.automaton.find_marked(marked)
    if not found:
        return tuple(np.zeros(0, np.int64) for _ in range(4))
    matches = np.fromiter(itertools.chain.from_iterable(found), np.int64, count=3 * len(found))
    del found
    idx, start, end = matches.reshape(-1, 3).T  # byte offsets
    # word boundaries: the characters around a match are not letters or digits
    ok = starts[start] & ~alnum[end]
    idx, start, end = idx[ok], start[ok], end[ok]
    # leftmost-longest: the longest match of each start; then, in start order, a match is
    # chosen when it starts at or after the end of the previously chosen one. The automaton
    # reports matches in end order, so a stable sort by start leaves each start's longest last
    if end.size > 1 and (end[1:] < end[:-1]).any():  # (not seen; kept as a guard)
        order = np.argsort(end, kind="stable")
        idx, start, end = idx[order], start[order], end[order]
    order = np.argsort(start, kind="stable")
    idx, start, end = idx[order], start[order], end[order]
    longest = np.ones(start.size, dtype=bool)
    longest[:-1] = start[1:] != start[:-1]
    idx, start, end = idx[longest], start[longest], end[longest]
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
    if not big.isascii():
        chars = char_offsets(data)
        start, end = chars(start), chars(end)
    text = np.searchsorted(offsets, start, side="right") - 1
    return text, start - offsets[text], end - offsets[text], idx


def _match_arrays(texts: list[str], dictionary: Dictionary,
                  progress: Progress | None = None) -> tuple[np.ndarray, ...]:
    """:func:`_match_chunk` over consecutive texts of about ``_CHUNK_CHARS`` characters
    (``progress`` counts the texts done)."""
    if not texts:
        return tuple(np.zeros(0, np.int64) for _ in range(4))
    parts = []
    for i, j in _chunks(texts):
        text, start, end, idx = _match_chunk(texts[i:j], dictionary)
        parts.append((text + i, start, end, idx))
        if progress is not None:
            progress.update(j - i)
    return tuple(np.concatenate(cols) for cols in zip(*parts, strict=True))


def find_matches(text: str, dictionary: Dictionary) -> list[tuple[int, int, int]]:
    """Leftmost-longest, word-bounded matches ``(start, end, name_index)`` in ``text``."""
    _, start, end, idx = _match_arrays([text], dictionary)
    return list(zip(start.tolist(), end.tolist(), idx.tolist(), strict=True))


def annotate_dictionary(documents: pl.DataFrame, dictionary: Dictionary) -> pl.DataFrame:
    """``mentions`` rows (cui set, one per concept of the name) for ``documents``; logs one
    ``annotate: N doc in S s (R doc/s), mentions M`` line (a bar on a terminal)."""
    with Progress("annotate", total=documents.height, unit="doc") as bar:
        doc, start, end, idx = _match_arrays(documents["text"].to_list(), dictionary, bar)
        # one row per concept of the matched name, in the name's (sorted) concept order
        first, counts = dictionary.cui_ptr[idx], np.diff(dictionary.cui_ptr)[idx]
        row = np.repeat(np.arange(idx.size), counts)
        flat = first[row] + np.arange(row.size) - np.repeat(np.cumsum(counts) - counts, counts)
        doc, start, end = doc[row], start[row], end[row]
        mentions = pl.DataFrame({
            "doc_id": documents["doc_id"].gather(doc),
            "start": pl.Series(start, dtype=pl.Int32),
            "end": pl.Series(end, dtype=pl.Int32),
            # character offsets, as Python's text[start:end]
            "mention": documents["text"].gather(doc).str.slice(pl.Series(start),
                                                               pl.Series(end - start)),
            "cui": dictionary.cui_flat.gather(flat),
        }).select(
            "doc_id", "start", "end", "mention",
            entity_type=pl.lit("concept", pl.String),
            source_ids=pl.concat_list(pl.when(pl.col("cui").str.contains(":", literal=True))
                                      .then(pl.col("cui"))
                                      .otherwise(pl.lit("UMLS:") + pl.col("cui"))),
            cui="cui", annotator=pl.lit("dictionary", pl.String),
        ).cast(MENTIONS).select(list(MENTIONS))
        bar.set_postfix(f"mentions {mentions.height:,}")
    return mentions
