"""UTF-8 bytes with their word starts marked, for dictionary matching at word starts only.

A lower-cased text has no upper-case ASCII letter, so upper-casing each lower-case ASCII
letter that begins a word (the first byte, or no letter or digit before it) loses nothing and
moves no offset; names marked the same way then only match where a word begins. Byte offsets
map back to character offsets through the continuation bytes (``0b10xxxxxx``).
"""

from __future__ import annotations

import ahocorasick_rs
import numpy as np


def utf8_bytes(text: str) -> np.ndarray:
    """The UTF-8 bytes of ``text`` as a uint8 array."""
    return np.frombuffer(text.encode(), np.uint8)


def alnum_bytes(data: np.ndarray) -> np.ndarray:
    """For each byte of the UTF-8 ``data``, ``str.isalnum`` of the character it belongs to, and
    one ``False`` after the last byte (arithmetic for ASCII; other characters are decoded from
    their bytes and tested once per distinct code point)."""
    out = np.zeros(data.size + 1, dtype=bool)
    # unsigned wrap-around: (b | 32) - 97 < 26 exactly for ASCII letters, b - 48 < 10 digits
    np.logical_or(((data | 32) - 97) < 26, (data - 48) < 10, out=out[:-1])
    high = np.flatnonzero(data >= 0x80)
    if high.size:
        lead = high[data[high] >= 0xC0]  # first bytes of the non-ASCII characters
        first = data[lead].astype(np.int64)
        size = 2 + (first >= 0xE0) + (first >= 0xF0)
        code = first & np.array([0, 0, 0x1F, 0x0F, 0x07])[size]
        for k in (1, 2, 3):
            more = size > k
            code[more] = (code[more] << 6) | (data[lead[more] + k] & 0x3F)
        uniq, inverse = np.unique(code, return_inverse=True)
        lead_alnum = np.array([chr(c).isalnum() for c in uniq.tolist()])[inverse]
        out[high] = lead_alnum[np.searchsorted(lead, high, side="right") - 1]
    return out


def word_starts(alnum: np.ndarray) -> np.ndarray:
    """Whether each byte starts a word: the first one, or no letter or digit before it."""
    starts = np.empty(alnum.size - 1, dtype=bool)
    if starts.size:
        starts[0] = True
        np.logical_not(alnum[:-2], out=starts[1:])
    return starts


def mark_word_starts(data: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``data`` with each lower-case ASCII letter at a word start upper-cased."""
    return data ^ ((((data - 97) < 26) & starts).view(np.uint8) << 5)  # 'a' ^ 32 == 'A'


def char_offsets(data: np.ndarray):
    """A function from byte offsets in the UTF-8 ``data`` to character offsets."""
    continuation = np.flatnonzero((data & 0xC0) == 0x80)
    return lambda offsets: offsets - np.searchsorted(continuation, offsets, side="left")


class WordStartAutomaton:
    """The Aho-Corasick automaton (``BytesAhoCorasick``) over the UTF-8 names with their word
    starts marked.

    :meth:`find_marked` searches bytes already marked by :func:`mark_word_starts` (the
    annotator marks each chunk once). :meth:`find_matches_as_indexes` takes a lower-cased
    text, as ``ahocorasick_rs.AhoCorasick`` does, and returns ``(name index, start, end)``
    (character offsets) of the matches of the lower-cased names in it, leaving out those of
    names that begin with an ASCII letter and start inside a word (the character before is a
    letter or a digit), which no word-bounded match does."""

    def __init__(self, keys: list[str], separator: str) -> None:
        joined = utf8_bytes(separator.join(keys))
        marked = mark_word_starts(joined, word_starts(alnum_bytes(joined))).tobytes()
        self.automaton = ahocorasick_rs.BytesAhoCorasick(
            marked.split(separator.encode()) if keys else [],
            matchkind=ahocorasick_rs.MatchKind.Standard)

    def find_marked(self, marked: np.ndarray) -> list[tuple[int, int, int]]:
        """Every overlapping ``(name index, start, end)`` (byte offsets) in ``marked``."""
        return self.automaton.find_matches_as_indexes(marked, overlapping=True)

    def find_matches_as_indexes(self, haystack: str,
                                overlapping: bool = False) -> list[tuple[int, int, int]]:
        data = utf8_bytes(haystack)
        found = self.automaton.find_matches_as_indexes(
            mark_word_starts(data, word_starts(alnum_bytes(data))), overlapping=overlapping)
        if not found or haystack.isascii():
            return found
        idx, start, end = np.array(found, dtype=np.int64).reshape(-1, 3).T
        chars = char_offsets(data)
        return list(zip(idx.tolist(), chars(start).tolist(), chars(end).tolist(), strict=True))
