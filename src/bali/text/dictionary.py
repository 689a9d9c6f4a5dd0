"""Dictionary annotator: KG names matched in text with an Aho-Corasick automaton.

Matching is case-insensitive (``str.lower`` of name and text), on word boundaries (the
characters before and after a match are not letters or digits) and leftmost-longest: of
overlapping boundary-respecting matches the earliest start wins, then the longest. Names
shorter than ``min_length``, purely numeric names and ``stop_names`` are not matched. A name
of several concepts is linked to all of them (``ambiguous="all"``, one mention row per
concept) or skipped (``"skip"``). Uses ``ahocorasick_rs`` (Rust automaton).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import ahocorasick_rs
import polars as pl

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
    """An automaton over distinct lower-cased names and each name's concept ids."""

    automaton: ahocorasick_rs.AhoCorasick
    cuis: list[tuple[str, ...]]
    names: int
    build_seconds: float


def build_dictionary(names: pl.DataFrame, opts: DictionaryOptions) -> Dictionary:
    """Build the matcher from a KG ``names`` table (cui, name)."""
    if opts.ambiguous not in ("all", "skip"):
        raise ValueError(f"ambiguous must be 'all' or 'skip', not {opts.ambiguous!r}")
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
    seconds = time.perf_counter() - t0
    log.info("dictionary: %d names -> automaton in %.1fs", len(keys), seconds)
    return Dictionary(automaton, [tuple(c) for c in grouped["cui"].to_list()], len(keys), seconds)


def _lower_same_length(text: str) -> str:
    """``text.lower()`` if it keeps every offset (true but for a few Unicode letters such as
    'İ'); otherwise lower-case character by character where that keeps the length."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def find_matches(text: str, dictionary: Dictionary) -> list[tuple[int, int, int]]:
    """Leftmost-longest, word-bounded matches ``(start, end, name_index)`` in ``text``."""
    low = _lower_same_length(text)
    found = dictionary.automaton.find_matches_as_indexes(low, overlapping=True)
    n = len(low)
    candidates = [
        (start, end, idx)
        for idx, start, end in found
        if (start == 0 or not low[start - 1].isalnum()) and (end == n or not low[end].isalnum())
    ]
    candidates.sort(key=lambda m: (m[0], -m[1]))
    chosen, last_end = [], 0
    for start, end, idx in candidates:
        if start >= last_end:
            chosen.append((start, end, idx))
            last_end = end
    return chosen


def annotate_dictionary(documents: pl.DataFrame, dictionary: Dictionary) -> pl.DataFrame:
    """``mentions`` rows (cui set, one per concept of the name) for ``documents``."""
    rows = {k: [] for k in MENTIONS}
    for doc_id, text in documents.select("doc_id", "text").iter_rows():
        for start, end, idx in find_matches(text, dictionary):
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
