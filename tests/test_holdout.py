"""Held-out synonyms: the draw, what stays in the KG, and the BioSyn mentions written."""

from __future__ import annotations

import polars as pl
import pytest

from bali.evaluate.el_zeroshot import read_mentions
from bali.kg.holdout import HoldoutOptions, hold_out_synonyms, write_mentions
from bali.kg.schema import NAMES


def _names(n: int = 200) -> pl.DataFrame:
    rows = []
    for i in range(n):
        cui = f"C{i:04d}"
        rows.append((cui, f"term {i}", "HPO", "name", True))
        rows += [(cui, f"term {i} syn {j}", "HPO", "EXACT", False) for j in range(i % 3)]
        rows.append((cui, f"related {i}", "HPO", "RELATED", False))
    rows.append(("OMIM:1", "a disease", "OMIM", "name", False))  # only name: never drawn
    rows.append(("C0000", "Term 1 SYN 0", "HPO", "EXACT", False))  # shared text: never drawn
    return pl.DataFrame(rows, schema=NAMES, orient="row")


def test_draw_is_seeded_and_keeps_every_concept():
    names = _names()
    opts = HoldoutOptions(holdout_share=0.5, holdout_seed=3, holdout_term_types=("EXACT",))
    kept, held = hold_out_synonyms(names, opts)
    assert kept.height + held.height == names.height
    assert held.height > 30 and set(held["term_type"]) == {"EXACT"}
    assert held["cui"].is_unique().all()  # one synonym per drawn concept
    assert not held["is_preferred"].any()
    assert set(kept["cui"]) == set(names["cui"])  # no concept loses its last name
    assert not set(held["name"].str.to_lowercase()) & set(kept["name"].str.to_lowercase())
    assert "term 1 syn 0" not in set(held["name"].str.to_lowercase())
    again, _ = hold_out_synonyms(names, opts)
    assert again.equals(kept)
    other, _ = hold_out_synonyms(names, HoldoutOptions(0.5, 4, (), ("EXACT",)))
    assert not other.equals(kept)
    assert hold_out_synonyms(names, HoldoutOptions(0.0))[1].height == 0
    with pytest.raises(ValueError):
        hold_out_synonyms(names, HoldoutOptions(1.5))


def test_apply_writes_names_mentions_and_dictionary(tmp_path):
    from bali.evaluate.el_zeroshot import read_dictionary
    from bali.kg.holdout import DICTIONARY_FILE, HELDOUT_FILE, apply_holdout

    names = _names()
    names.write_parquet(tmp_path / "names.parquet")
    opts = HoldoutOptions(holdout_share=0.5, holdout_sources=("HPO",))
    counts = apply_holdout(tmp_path, opts)
    kept = pl.read_parquet(tmp_path / "names.parquet")
    held = read_mentions(tmp_path / HELDOUT_FILE)
    dictionary = read_dictionary(tmp_path / DICTIONARY_FILE)
    assert counts["names"] == kept.height == names.height - held.height
    assert dictionary.height == counts["dictionary_names"] == kept.height - 1  # no OMIM name
    assert not set(held["mention"]) & set(dictionary["name"])
    from bali.kg.holdout import DEV_FILE, TEST_FILE

    dev, test = read_mentions(tmp_path / DEV_FILE), read_mentions(tmp_path / TEST_FILE)
    assert (counts["heldout_dev"], counts["heldout_test"]) == (dev.height, test.height)
    assert dev.height == held.height // 2 and dev.height + test.height == held.height
    assert sorted(dev["mention"].to_list() + test["mention"].to_list()) == sorted(
        held["mention"].to_list())  # a split: disjoint halves of the held-out names


def test_dev_test_split_is_seeded():
    from bali.kg.holdout import split_dev_test

    _, held = hold_out_synonyms(_names(), HoldoutOptions(holdout_share=1.0))
    dev, test = split_dev_test(held, 0)
    again, _ = split_dev_test(held, 0)
    assert dev.equals(again) and dev.height == held.height // 2
    assert not set(dev["name"]) & set(test["name"])


def test_mentions_round_trip(tmp_path):
    _, held = hold_out_synonyms(_names(), HoldoutOptions(holdout_share=1.0))
    write_mentions(held, tmp_path / "h.concept")
    mentions = read_mentions(tmp_path / "h.concept")
    assert mentions["mention"].to_list() == held["name"].to_list()
    assert mentions["ids"].to_list() == [[c] for c in held["cui"]]
