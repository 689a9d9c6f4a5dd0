"""The training-shard format (``bali-shards/1``): one directory that training memory-maps.

sentences.arrow  one row per sampled sentence with at least one kept mention:
                 doc_id: str, sentence_id: i32, input_ids: list<i32> (``[CLS] ... [SEP]``,
                 at most ``max_length``), mention_start / mention_end: list<i32> (token indices
                 into input_ids, end exclusive), mention_node: list<i32> (node index); mentions
                 in character order
names.arrow      name_id: i32 (row index), input_ids: list<i32> -- each distinct node name
                 tokenized once (``[CLS] name [SEP]``, truncated to ``name_max_length``)
nodes.arrow      row = node index (the row of ``nodes``, sorted by cui): cui: str,
                 name_ids: list<i32> (preferred name first), neighbor_nodes: list<i32> and
                 neighbor_relations: list<i32> (the subgraph pool in priority order; empty for
                 a node without a subgraph row)
relations.json   relation labels, index = relation id: ``"<direction>:<relation>"``, e.g.
                 ``"out:is_a"`` for an edge (node, is_a, neighbour) and ``"in:is_a"`` for
                 (neighbour, is_a, node); sorted
meta.json        format, tokenizer directory and special token ids, options and counts

The Arrow files are uncompressed IPC files written in record batches of at most
``BATCH_ROWS`` rows (:func:`write_ipc`), so :class:`MappedIpc` maps them and slices or
gathers rows without copying the corpus into each DataLoader worker. The writer of the
shards is :func:`bali.sample.tokenize.tokenize_sample`; training reads them through
:class:`ShardDataset`, :class:`NodeTable` and :class:`MappedIpc`. No torch at import.
"""

from __future__ import annotations

import json
import operator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc

from bali.io import BaliInputError

FORMAT = "bali-shards/1"
SHARD_FILES = ("sentences.arrow", "names.arrow", "nodes.arrow", "relations.json", "meta.json")
BATCH_ROWS = 1 << 15  # rows per Arrow record batch (and per tokenizer call)

_LIST_I32 = pa.list_(pa.int32())
SENTENCES_SCHEMA = pa.schema([
    ("doc_id", pa.string()),
    ("sentence_id", pa.int32()),
    ("input_ids", _LIST_I32),
    ("mention_start", _LIST_I32),
    ("mention_end", _LIST_I32),
    ("mention_node", _LIST_I32),
])
NAMES_SCHEMA = pa.schema([("name_id", pa.int32()), ("input_ids", _LIST_I32)])
NODES_SCHEMA = pa.schema([
    ("cui", pa.string()),
    ("name_ids", _LIST_I32),
    ("neighbor_nodes", _LIST_I32),
    ("neighbor_relations", _LIST_I32),
])


def exclusive_cumsum(counts: np.ndarray) -> np.ndarray:
    """``[0, c0, c0+c1, ...]`` (int64): offsets of consecutive runs of ``counts``."""
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def list_array(offsets: np.ndarray, values: np.ndarray) -> pa.ListArray:
    """An Arrow ``list<int32>`` array from offsets and values."""
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32, copy=False)),
                                    pa.array(values.astype(np.int32, copy=False)))


def write_ipc(path: Path, schema: pa.Schema, batches) -> int:
    """Write record batches as one uncompressed Arrow IPC file; returns the row count."""
    rows = 0
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


class MappedIpc:
    """An Arrow IPC file memory-mapped on first use in each process; pickles as its path, so
    a DataLoader worker maps the file itself instead of receiving a copy."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise BaliInputError(self.path, "file not found (run the tokenize stage)")
        self._batches: list[pa.RecordBatch] | None = None
        self._starts: np.ndarray | None = None
        self._lists: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.path, self._batches, self._starts, self._lists = state["path"], None, None, {}

    def _open(self) -> list[pa.RecordBatch]:
        if self._batches is None:
            reader = pa.ipc.open_file(pa.memory_map(str(self.path), "r"))
            batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
            self._starts = exclusive_cumsum(np.array([b.num_rows for b in batches],
                                                      dtype=np.int64))
            self._batches = batches
        return self._batches

    def __len__(self) -> int:
        self._open()
        return int(self._starts[-1])

    def _locate(self, i) -> tuple[int, int]:
        n = len(self)
        i = operator.index(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"{self.path.name}: row {i} out of range ({n} rows)")
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        return k, i - int(self._starts[k])

    def _column(self, name: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """(offsets, values) of an int list column in each record batch: views into the file."""
        if name not in self._lists:
            self._lists[name] = [(b.column(name).offsets.to_numpy(),
                                  b.column(name).values.to_numpy()) for b in self._open()]
        return self._lists[name]

    def list_row(self, column: str, i) -> np.ndarray:
        """Row ``i`` of an int32 list column: a read-only view into the mapped file."""
        k, j = self._locate(i)
        offsets, values = self._column(column)[k]
        return values[offsets[j]:offsets[j + 1]]

    def value(self, column: str, i):
        """Row ``i`` of a scalar column as a Python value."""
        k, j = self._locate(i)
        return self._open()[k].column(column)[j].as_py()

    def lengths(self, name: str) -> np.ndarray:
        """Length of every row (int64), from the list offsets alone (values are not read)."""
        parts = [np.diff(off) for off, _ in self._column(name)]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def rows(self, name: str, idx) -> list[np.ndarray]:
        """Rows ``idx`` of the column: read-only views, in the order of ``idx``."""
        cols = self._column(name)
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and not 0 <= idx.min() <= idx.max() < self._starts[-1]:
            raise IndexError(f"{self.path.name}: rows out of range [0, {self._starts[-1]})")
        k = np.searchsorted(self._starts, idx, side="right") - 1
        local = idx - self._starts[k]
        lo, hi = np.empty_like(local), np.empty_like(local)
        for kk in np.unique(k).tolist():
            sel = k == kk
            off = cols[kk][0]
            lo[sel], hi[sel] = off[local[sel]], off[local[sel] + 1]
        return [cols[kk][1][a:b] for kk, a, b in zip(k.tolist(), lo.tolist(), hi.tolist(),
                                                     strict=True)]

    def gather(self, name: str, idx) -> tuple[np.ndarray, np.ndarray]:
        """(length of each row, the rows concatenated as int64) of rows ``idx``."""
        rows = self.rows(name, idx)
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        flat = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)
        return lengths, flat


class ShardDataset:
    """The sentences of a shard directory for a PyTorch DataLoader: item ``i`` is a dict of
    LongTensors ``input_ids`` and ``mention_start`` / ``mention_end`` / ``mention_node``."""

    COLUMNS = ("input_ids", "mention_start", "mention_end", "mention_node")

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self._file = MappedIpc(self.out_dir / "sentences.arrow")

    def __len__(self) -> int:
        return len(self._file)

    def __getitem__(self, i) -> dict:
        import torch

        return {c: torch.from_numpy(self._file.list_row(c, i).astype(np.int64))
                for c in self.COLUMNS}

    def key(self, i) -> tuple[str, int]:
        """``(doc_id, sentence_id)`` of item ``i``."""
        return self._file.value("doc_id", i), self._file.value("sentence_id", i)


class NodeTable:
    """Nodes of a shard directory by node index: cui, name ids, name tokens, subgraph pool
    (all memory-mapped; pickles as the directory)."""

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self._nodes = MappedIpc(self.out_dir / "nodes.arrow")
        self._names = MappedIpc(self.out_dir / "names.arrow")
        self.relations: list[str] = json.loads(
            (self.out_dir / "relations.json").read_text(encoding="utf-8"))

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def num_names(self) -> int:
        return len(self._names)

    def cui(self, node: int) -> str:
        return self._nodes.value("cui", node)

    def name_ids(self, node: int) -> np.ndarray:
        """The node's name ids (preferred name first), int32 view."""
        return self._nodes.list_row("name_ids", node)

    def name_input_ids(self, name_id: int) -> np.ndarray:
        """Token ids (``[CLS] name [SEP]``) of a name, int32 view."""
        return self._names.list_row("input_ids", name_id)

    def neighbors(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """``(neighbor_nodes, neighbor_relations)`` of the node's subgraph pool, in priority
        order (training samples ``max_neighbors`` of them per step)."""
        return (self._nodes.list_row("neighbor_nodes", node),
                self._nodes.list_row("neighbor_relations", node))


def sentence_lengths(shards) -> np.ndarray:
    """Tokens of ``input_ids`` of every sentence of a shard directory (int64, row order),
    from the list offsets of the memory-mapped ``sentences.arrow`` (token ids are not read)."""
    return MappedIpc(Path(shards) / "sentences.arrow").lengths("input_ids")
