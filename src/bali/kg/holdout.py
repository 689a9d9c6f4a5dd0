"""Held-out synonyms: a zero-shot entity-linking test set carved out of the KG itself.

Eligible names are non-preferred names without ``|`` whose lower-cased text names no other
row of the table (optionally of the given sources and term types), of concepts that keep at
least one other name. Each eligible concept is drawn
with probability ``share`` (NumPy generator seeded with ``seed``, concepts in ``cui``
order) and one of its eligible names, drawn uniformly, is removed from the ``names`` table.
The removed names are written as BioSyn mentions, ``<source>||0|0||<term_type>||<name>||<cui>``, so
``bali evaluate el-zeroshot`` retrieves their concept among the remaining names of the same
sources, written as a BioSyn dictionary ``<cui>||<name>``. The held-out names are split in
two halves by a generator seeded by (seed, 1): ``heldout_dev.concept`` (validation during
pretraining, model selection) and ``heldout_test.concept`` (the reported result; it drives no
choice); ``heldout_synonyms.concept`` holds both. Nothing downstream (the dictionary
annotator, subgraph node texts, pretraining) sees the held-out names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from bali.errors import OptionError
from bali.io import atomic_paths
from bali.kg.options import HoldoutOptions

HELDOUT_FILE = "heldout_synonyms.concept"
DEV_FILE = "heldout_dev.concept"
TEST_FILE = "heldout_test.concept"
DICTIONARY_FILE = "heldout_dictionary.txt"


def hold_out_synonyms(names: pl.DataFrame, opts: HoldoutOptions
                      ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(kept names, held-out names)``; both keep the ``names`` columns and order."""
    if not 0.0 <= opts.holdout_share <= 1.0:
        raise OptionError(f"holdout_share must be in [0, 1], not {opts.holdout_share}")
    eligible = names.with_row_index("row").filter(
        ~pl.col("is_preferred") & ~pl.col("name").str.contains("|", literal=True)
        & (pl.col("name").str.to_lowercase().len().over(pl.col("name").str.to_lowercase())
           == 1))
    if opts.holdout_sources:
        eligible = eligible.filter(pl.col("source").is_in(opts.holdout_sources))
    if opts.holdout_term_types:
        eligible = eligible.filter(pl.col("term_type").is_in(opts.holdout_term_types))
    per_concept = (
        eligible.group_by("cui").agg(pl.col("row").sort())
        .join(names.group_by("cui").len(), on="cui")
        .filter(pl.col("len") > 1)
        .sort("cui")
    )
    rng = np.random.default_rng(opts.holdout_seed)
    drawn = rng.random(per_concept.height) < opts.holdout_share
    counts = per_concept["row"].list.len().to_numpy()
    picks = (rng.random(per_concept.height) * counts).astype(np.int64)
    rows = [r[i] for r, i, d in zip(per_concept["row"].to_list(), picks, drawn, strict=True)
            if d]
    mask = pl.Series(np.isin(np.arange(names.height), rows))
    return names.filter(~mask), names.filter(mask)


def split_dev_test(heldout: pl.DataFrame, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(dev, test)``: a seeded half of the held-out rows (floor) and the rest, in order."""
    rank = np.random.default_rng([seed, 1]).permutation(heldout.height)
    is_dev = pl.Series(rank < heldout.height // 2)
    return heldout.filter(is_dev), heldout.filter(~is_dev)


def write_mentions(heldout: pl.DataFrame, path: str | Path) -> None:
    """Write held-out names as BioSyn ``.concept`` lines (module docstring)."""
    lines = [f"{s}||0|0||{t}||{n}||{c}\n" for c, n, s, t in heldout.select(
        "cui", "name", "source", "term_type").iter_rows()]
    with atomic_paths(path) as (tmp,):
        tmp.write_text("".join(lines), encoding="utf-8")


def apply_holdout(kg_dir: str | Path, opts: HoldoutOptions) -> dict[str, int]:
    """Remove held-out names from ``kg_dir/names.parquet`` (rewritten in place, atomically),
    write them to ``kg_dir/heldout_synonyms.concept`` and the dictionary to retrieve them from
    to ``kg_dir/heldout_dictionary.txt``; returns counts."""
    from bali.io import read_table
    from bali.kg.schema import NAMES, write_table

    path = Path(kg_dir) / "names.parquet"
    kept, heldout = hold_out_synonyms(read_table(path, NAMES), opts)
    with atomic_paths(path) as (tmp,):
        write_table(kept, tmp)
    write_mentions(heldout, Path(kg_dir) / HELDOUT_FILE)
    dev, test = split_dev_test(heldout, opts.holdout_seed)
    write_mentions(dev, Path(kg_dir) / DEV_FILE)
    write_mentions(test, Path(kg_dir) / TEST_FILE)
    dictionary = kept.filter(~pl.col("name").str.contains("|", literal=True))
    if opts.holdout_sources:
        dictionary = dictionary.filter(pl.col("source").is_in(opts.holdout_sources))
    with atomic_paths(Path(kg_dir) / DICTIONARY_FILE) as (tmp,):
        tmp.write_text("".join(f"{c}||{n}\n" for c, n in dictionary.select("cui", "name")
                               .iter_rows()), encoding="utf-8")
    return {"heldout_synonyms": heldout.height, "heldout_dev": dev.height,
            "heldout_test": test.height, "dictionary_names": dictionary.height,
            "names": kept.height}
