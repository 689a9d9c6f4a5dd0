"""Dictionary annotator internals: the word-start marking of the automaton, the UTF-8 letter
and digit test, byte to character offsets, and the progress line of the annotation."""

from __future__ import annotations

import logging
import random
import sys

import ahocorasick_rs
import numpy as np
import polars as pl
import pytest
from test_dictionary import _leftmost_longest

import bali.text.dictionary as dictionary_module
from bali.text.dictionary import (
    DictionaryOptions,
    _lower_same_length,
    annotate_dictionary,
    build_dictionary,
    find_matches,
)
from bali.text.schema import DOCUMENTS
from bali.text.words import alnum_bytes as _alnum
from bali.text.words import char_offsets as _char_offsets
from bali.text.words import utf8_bytes as _utf8

# letters, digits and others of 1-4 UTF-8 bytes: 'K' (Kelvin sign, lower() is ASCII 'k'),
# '𝛼' (a letter outside the BMP), '😀' (no letter), a combining accent (no letter), '_'
WORDS = ["fever", "Cold", "2", "3b", "β-blocker", "İnsulin", "straße", "ΣΟΦΙΑΣ", "x", "e.",
         "coli", "Kelvin", "𝛼-helix", "😀", "naïve", "\u0301a", "_id", "ab_c", "h2o", "Ⅻ"]
GLUE = [" ", " ", "-", ", ", "(", ")", "/", "", "\n", "😀", "\u00a0", "\u0301", "_", "ß", "[", "{"]


def _text(rnd: random.Random, words: int) -> str:
    return "".join(rnd.choice(WORDS) + rnd.choice(GLUE) for _ in range(words)).strip()


def _brute_force(text: str, keys: dict[str, int]) -> list[tuple[int, int, int]]:
    """Every word-bounded (start, end) whose lower-cased text is a name, leftmost-longest."""
    low = _lower_same_length(text)
    n = len(low)
    found = [(s, e, keys[low[s:e]]) for s in range(n) for e in range(s + 1, n + 1)
             if low[s:e] in keys and (s == 0 or not low[s - 1].isalnum())
             and (e == n or not low[e].isalnum())]
    return _leftmost_longest(found)


@pytest.mark.parametrize("seed", range(6))
def test_marked_automaton_matches_brute_force(seed, monkeypatch):
    rnd = random.Random(seed)
    names = sorted({_text(rnd, rnd.randint(1, 3)) for _ in range(150)}
                   | {"😀x", "-x", "(dm)", "_id", "2 x", "ⅻ", "𝛼-helix", "{x", "[x"})
    table = pl.DataFrame({"cui": [f"C{i % 41}" for i in range(len(names))], "name": names})
    d = build_dictionary(table, DictionaryOptions(min_length=1, stop_names=()))
    keys = (table.select(key=pl.col("name").str.strip_chars().str.to_lowercase())
            .filter(pl.col("key").str.len_chars() >= 1,
                    ~pl.col("key").str.contains(r"^[\d\s.,%-]+$"))
            .unique().sort("key")["key"].to_list())
    index = {k: i for i, k in enumerate(keys)}
    assert d.names == len(index)
    texts = [_text(rnd, 25) for _ in range(30)] + ["", "😀", "x"]
    monkeypatch.setattr(dictionary_module, "_CHUNK_CHARS", 300)  # several chunks
    docs = pl.DataFrame([{"doc_id": str(i), "title": "", "text": t} for i, t in enumerate(texts)],
                        schema=DOCUMENTS)
    got = annotate_dictionary(docs, d)
    want = [(str(i), s, e, t[s:e], cui) for i, t in enumerate(texts)
            for s, e, k in _brute_force(t, index) for cui in d.concept_ids(k)]
    assert got.select("doc_id", "start", "end", "mention", "cui").rows() == want
    assert len(want) > 50
    for t in texts[:5]:
        assert find_matches(t, d) == _brute_force(t, index)


def test_marked_automaton_leaves_out_only_matches_starting_inside_words():
    names = ["cell", "cells", "ell", "2b", "b2", "-x", "βeta", "eta", "élan", "lan", "x y", "{x",
             "[y"]
    d = build_dictionary(pl.DataFrame({"cui": [f"C{i}" for i in range(len(names))],
                                       "name": names}),
                         DictionaryOptions(min_length=1, stop_names=()))
    keys = sorted(names)
    plain = ahocorasick_rs.AhoCorasick(keys)
    for text in ("cells cell-ell xcell 2b2b a-x βeta béta élan xélan x y xx y",
                 "ΣΟΦΙΑΣ cell σcell 1cell _cell 😀cell", "{x [x {y [y ({x) ([y)"):
        low = text.lower()
        every = plain.find_matches_as_indexes(low, overlapping=True)
        kept = [(i, s, e) for i, s, e in every
                if not (keys[i][0].isascii() and keys[i][0].isalpha()
                        and s > 0 and low[s - 1].isalnum())]
        got = d.automaton.find_matches_as_indexes(low, overlapping=True)
        assert sorted(got) == sorted(kept)
        assert len(kept) < len(every) or "{" in text  # some did start inside a word


def test_utf8_alnum_is_str_isalnum_for_every_code_point():
    chars = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000]
    text = "".join(chars)
    data = _utf8(text)
    alnum = _alnum(data)
    assert alnum[-1] == np.False_ and alnum.size == data.size + 1
    starts = np.concatenate(([0], np.cumsum([len(c.encode()) for c in chars])[:-1]))
    assert alnum[starts].tolist() == [c.isalnum() for c in chars]
    # every byte of a character carries its value
    sizes = np.array([len(c.encode()) for c in chars])
    assert np.array_equal(alnum[:-1], np.repeat(alnum[starts], sizes))
    offsets = _char_offsets(data)(np.append(starts, data.size))
    assert offsets.tolist() == list(range(len(chars) + 1))


def test_annotation_logs_one_progress_line(caplog, monkeypatch):
    monkeypatch.setenv("BALI_PROGRESS", "0")
    monkeypatch.setattr(dictionary_module, "_CHUNK_CHARS", 20)
    d = build_dictionary(pl.DataFrame({"cui": ["C1", "C2"], "name": ["fever", "gout"]}),
                         DictionaryOptions())
    docs = pl.DataFrame([{"doc_id": str(i), "title": "", "text": "Fever and gout, fever."}
                         for i in range(5)], schema=DOCUMENTS)
    with caplog.at_level(logging.INFO, logger="bali"):
        mentions = annotate_dictionary(docs, d)
    assert mentions.height == 15
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("annotate:")]
    assert line.startswith("annotate: 5 doc in ") and line.endswith(", mentions 15")


def test_rows_do_not_depend_on_the_order_of_the_automaton_matches():
    rnd = random.Random(7)
    names = sorted({_text(rnd, rnd.randint(1, 3)) for _ in range(150)})
    d = build_dictionary(pl.DataFrame({"cui": [f"C{i % 29}" for i in range(len(names))],
                                       "name": names}),
                         DictionaryOptions(min_length=1, stop_names=()))
    docs = pl.DataFrame([{"doc_id": str(i), "title": "", "text": _text(rnd, 40)}
                         for i in range(20)], schema=DOCUMENTS)
    want = annotate_dictionary(docs, d)
    real = d.automaton.automaton

    class Reversed:  # matches in decreasing end order
        def find_matches_as_indexes(self, haystack, overlapping=False):
            return real.find_matches_as_indexes(haystack, overlapping=overlapping)[::-1]

    d.automaton.automaton = Reversed()
    assert want.height > 20 and annotate_dictionary(docs, d).equals(want)
