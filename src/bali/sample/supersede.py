"""Which document versions count: the newest copy of each doc_id across the text shards.

Shards are ordered (the workflow sorts them by name: PubMed's ``pubmed25n0001`` ... baseline
files precede its update files). Shard ``i``'s version of document ``d`` is *dead* when a
later shard ``j > i`` holds ``d`` (a revision) or lists it among its ``DeleteCitation`` PMIDs
(a deletion); every other version is live. A file's deletions of its own articles are
applied by ``bali text read``, so within one shard every doc_id is unique and live.

The per-shard index is what the text stage already writes: the ``doc_id`` column of
``documents.parquet`` and ``deleted_pmids.txt`` (one PMID a line). :func:`dead_versions`
reads each index once and resolves the doc ids in ``ceil(documents / docs_per_pass)`` hash
partitions, so its memory is bounded by ``docs_per_pass`` ids, not by the corpus, and its
time is linear; its result holds the dead versions only (revisions and deletions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from bali.io import BaliInputError, check_input_file, owned, scan_table
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


def _index(shard: TextShard, i: int) -> pl.DataFrame:
    """The shard's index rows: (doc_id, shard, held): its documents (held) and its
    DeleteCitation PMIDs (not held)."""
    held = pl.read_parquet(shard.documents, columns=["doc_id"])["doc_id"]
    gone = pl.Series("doc_id", shard.deleted.read_text(encoding="utf-8").split(), pl.String)
    n_held, n = held.len(), held.len() + gone.len()
    return pl.DataFrame({"doc_id": pl.concat([held, gone]), "held": np.arange(n) < n_held,
                         "shard": np.full(n, i, np.uint32)})


def dead_versions(shards: Sequence[TextShard], docs_per_pass: int = 250_000) -> pl.DataFrame:
    """(shard index, doc_id) of every dead version (module docstring), sorted. Each shard's
    index is read once and split by a hash of the doc id into ``P = ceil(ids /
    docs_per_pass)`` spill files (Arrow IPC streams in a temporary directory); each spill
    file is then resolved alone, so time is linear in the corpus and memory bounded by
    ``docs_per_pass`` ids."""
    import tempfile

    import pyarrow as pa
    import pyarrow.ipc
    import pyarrow.parquet as pq

    total = sum(pq.ParquetFile(s.documents).metadata.num_rows for s in shards)
    passes = max(1, math.ceil(total / max(1, docs_per_pass)))
    schema = pa.schema([("doc_id", pa.large_string()), ("held", pa.bool_()),
                        ("shard", pa.uint32())])
    parts = []
    with tempfile.TemporaryDirectory(prefix="bali-supersede-") as tmp:
        sinks = [pa.OSFile(f"{tmp}/{p}.arrow", "wb") for p in range(passes)]
        writers = [pa.ipc.new_stream(sink, schema) for sink in sinks]
        for i, shard in enumerate(shards):
            rows = _index(shard, i)
            part = (rows["doc_id"].hash(seed=7) % passes).to_numpy()
            order = np.argsort(part, kind="stable")
            table = rows.to_arrow().cast(schema).take(pa.array(order))
            bounds = np.searchsorted(part[order], np.arange(passes + 1))
            for p in np.flatnonzero(np.diff(bounds)).tolist():
                writers[p].write_table(table.slice(bounds[p], bounds[p + 1] - bounds[p]))
        for writer, sink in zip(writers, sinks, strict=True):
            writer.close()
            sink.close()
        for p in range(passes):
            with pa.OSFile(f"{tmp}/{p}.arrow", "rb") as fh:
                ids = pl.from_arrow(pa.ipc.open_stream(fh).read_all())
            last = ids.group_by("doc_id").agg(last=pl.col("shard").max())
            parts.append(owned(ids.filter("held").join(last, on="doc_id")
                               .filter(pl.col("shard") < pl.col("last")).select(list(DEAD))))
    return pl.concat(parts).cast(DEAD).sort("shard", "doc_id")


def live_sentences(shard: TextShard, dead_docs: pl.Series) -> pl.LazyFrame:
    """The shard's sentences less those of its dead documents."""
    lf = scan_table(shard.sentences, SENTENCES)
    return lf.filter(~pl.col("doc_id").is_in(dead_docs.implode())) if dead_docs.len() else lf
