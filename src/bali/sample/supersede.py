"""Which document versions count: the newest copy of each doc_id across the text shards.

Shards are ordered (the workflow sorts them by name: PubMed's ``pubmed25n0001`` ... baseline
files precede its update files). Shard ``i``'s version of document ``d`` is *dead* when a
later shard ``j > i`` holds ``d`` (a revision) or lists it among its ``DeleteCitation`` PMIDs
(a deletion); every other version is live. A file's deletions of its own articles are
applied by ``bali text read``, so within one shard every doc_id is unique and live.

The per-shard index is what the text stage already writes: the ``doc_id`` column of
``documents.parquet`` and ``deleted_pmids.txt`` (one PMID a line). :func:`dead_versions`
reads them in ``ceil(documents / docs_per_pass)`` hash partitions of the doc ids, so its
memory is bounded by ``docs_per_pass`` ids, not by the corpus; its result holds the dead
versions only (revisions and deletions, not the corpus).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from bali.io import BaliInputError, check_input_file, scan_table
from bali.text.schema import SENTENCES

DEAD = {"shard": pl.UInt32(), "doc_id": pl.String()}


@dataclass(frozen=True)
class TextShard:
    """The text stage's files of one corpus file (``results/text/<name>/``)."""

    name: str
    directory: Path

    @property
    def sentences(self) -> Path:
        return self.directory / "sentences.parquet"

    @property
    def documents(self) -> Path:
        return self.directory / "documents.parquet"

    @property
    def deleted(self) -> Path:
        return self.directory / "deleted_pmids.txt"

    def check(self) -> TextShard:
        """Fail with one line naming the shard when one of its files is missing or empty."""
        for path in (self.sentences, self.documents):
            if not path.is_file() or path.stat().st_size == 0:
                raise BaliInputError(path, f"shard {self.name!r}: missing or empty (run the "
                                     "text stage for it)")
        check_input_file(self.deleted, allow_empty=True)
        return self


def text_shards(text_dir: str | Path, names: Sequence[str]) -> list[TextShard]:
    """The shards ``text_dir/<name>`` in the order given (later shards win); checked."""
    if not names:
        raise BaliInputError(text_dir, "no shard given")
    if len(set(names)) != len(names):
        raise BaliInputError(text_dir, "a shard is named twice")
    return [TextShard(n, Path(text_dir) / n).check() for n in names]


def _deleted_ids(shard: TextShard) -> pl.LazyFrame:
    lines = shard.deleted.read_text(encoding="utf-8").split()
    return pl.LazyFrame({"doc_id": lines}, schema={"doc_id": pl.String()})


def dead_versions(shards: Sequence[TextShard], docs_per_pass: int = 250_000) -> pl.DataFrame:
    """(shard index, doc_id) of every dead version (module docstring), sorted."""
    present = [pl.scan_parquet(s.documents).select("doc_id").with_columns(
        shard=pl.lit(i, pl.UInt32), held=pl.lit(True)) for i, s in enumerate(shards)]
    deleted = [_deleted_ids(s).with_columns(shard=pl.lit(i, pl.UInt32), held=pl.lit(False))
               for i, s in enumerate(shards)]
    total = sum(pl.scan_parquet(s.documents).select(pl.len()).collect().item() for s in shards)
    passes = max(1, math.ceil(total / max(1, docs_per_pass)))
    parts = []
    for p in range(passes):
        ids = pl.concat(present + deleted)
        if passes > 1:  # one hash partition of the doc ids per pass
            ids = ids.filter(pl.col("doc_id").hash(seed=7) % passes == p)
        last = ids.group_by("doc_id").agg(last=pl.col("shard").max())
        parts.append(ids.filter("held").join(last, on="doc_id")
                     .filter(pl.col("shard") < pl.col("last"))
                     .select(list(DEAD)).collect(engine="streaming"))
    return pl.concat(parts).sort("shard", "doc_id")


def live_sentences(shard: TextShard, dead_docs: pl.Series) -> pl.LazyFrame:
    """The shard's sentences less those of its dead documents."""
    lf = scan_table(shard.sentences, SENTENCES)
    return lf.filter(~pl.col("doc_id").is_in(dead_docs.implode())) if dead_docs.len() else lf
