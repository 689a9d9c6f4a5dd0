"""Kept MRREL rows -> the deduplicated edges table, as Arrow slices for the Parquet writer.

Every field is recoded as a small integer in string order and, when the product of the
field sizes fits, packed into one UInt64, so deduplication is one sort of values (see
:func:`dedupe_edges`). The edge strings are built one slice at a time as it is written.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import pyarrow as pa

from bali.kg.schema import EDGES, ArrowSlices
from bali.kg.sorted_runs import new_run, new_run_expr

PACKED_KEY_MAX = (1 << 64) - 1  # edges dedupe on one packed UInt64 key when it fits
PAIR_TABLE_MAX = 1 << 22  # (REL, RELA) -> pair rank by a lookup table up to this size
# the edges table as polars' to_arrow() gives it (the Parquet bytes depend on the Arrow schema)
EDGES_ARROW = pa.schema([(c, pa.large_string()) for c in EDGES])

#: the (head, pair, tail, source) codes of the deduplicated edges in a slice of rows
Fields = Callable[[slice], tuple[np.ndarray, ...]]


def _lexical_lut(cats: pl.Categories, nulls_last: bool = False) -> tuple[pl.Series, list]:
    """Rank in string order (nulls first, or last with ``nulls_last``) of each physical id of
    ``cats`` (index ``len(cats)`` stands for null), and the value of each rank."""
    by_id = cats.to_dict()
    values = sorted(by_id)
    values = [*values, None] if nulls_last else [None, *values]
    lut = np.empty(len(values), dtype=np.uint32)
    for rank, v in enumerate(values):
        lut[len(by_id) if v is None else by_id[v]] = rank
    return pl.Series(lut), values


def _code(col: str, lut: pl.Series) -> pl.Expr:
    """``col``'s rank from a :func:`_lexical_lut` table."""
    return pl.lit(lut).gather(pl.col(col).to_physical().fill_null(len(lut) - 1))


def _cui_bytes(ids: np.ndarray) -> np.ndarray:
    """``C`` + 7 digits of each id as an (n, 8) uint8 array (ids < 10**7)."""
    out = np.empty((len(ids), 8), dtype=np.uint8)
    out[:, 0] = ord("C")
    v = ids.astype(np.uint32)
    for j in range(7, 0, -1):
        out[:, j] = ord("0") + v % 10
        v //= 10
    return out


def _fixed_strings(data: np.ndarray) -> pa.Array:
    """Arrow large_string array from an (n, w) uint8 array of UTF-8 rows of width w."""
    n, w = data.shape
    offsets = np.arange(0, n * w + 1, w, dtype=np.int64)
    return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets),
                                                        pa.py_buffer(np.ascontiguousarray(data))])


def _strings(values: list[str | None]) -> pa.Array:
    """Arrow large_string array of ``values`` (via polars: ``pa.array`` on Python objects
    would import pandas, ~0.3 s)."""
    return pl.Series(values, dtype=pl.String).to_arrow()


def _indices(a: np.ndarray) -> pa.Array:
    """Zero-copy Arrow uint32 array of a uint32 numpy array (no pandas import)."""
    a = np.ascontiguousarray(a, dtype=np.uint32)
    return pa.Array.from_buffers(pa.uint32(), len(a), [None, pa.py_buffer(a)])


def _chunk_bounds(n: int) -> list[tuple[int, int]]:
    """Chunk layout of an ``n``-row slice handed to the Parquet writer: ``k = max(2,
    n // 100_000)`` rounded up to even chunks of ``ceil(n / k)`` rows (the last shorter),
    as the previous writer (polars' streaming engine at 2 threads) produced them. pyarrow
    checks the dictionary page limit at chunk boundaries too, so the layout is part of the
    output bytes; fixing it keeps them those of earlier releases, whatever the thread count."""
    k = max(2, n // 100_000)
    k += k % 2
    size = -(-n // k)
    return [(a, min(a + size, n)) for a in range(0, n, size)] if n else [(0, 0)]


def _node_ranks(node_ids: np.ndarray) -> pl.Series:
    """UInt32 table: CUI id -> its rank among the sorted ``node_ids`` (0 for other ids)."""
    rank_of = np.zeros(int(node_ids[-1]) + 1, dtype=np.uint32)
    rank_of[node_ids] = np.arange(len(node_ids), dtype=np.uint32)
    return pl.Series(rank_of)


def _pair_codes(rows: pl.DataFrame, rel_lut: pl.Series, rela_lut: pl.Series, n_rel: int,
                n_rela: int) -> tuple[np.ndarray, pl.Expr]:
    """The (REL, RELA) pairs present as sorted codes ``rel_rank * n_rela + rela_rank``, and
    the expression giving each row its pair's rank among them (a lookup table when
    ``n_rel * n_rela <= PAIR_TABLE_MAX``, else ``replace_strict``)."""
    n_both = n_rel * n_rela
    both = _code("relation", rel_lut).cast(pl.UInt64) * n_rela + _code("relation_attr", rela_lut)
    # (the streaming engine: parallel, and much faster than eager on ~50M rows)
    present = rows.lazy().select(both.unique()).collect(engine="streaming").to_series()
    present = present.sort().to_numpy()
    if n_both <= PAIR_TABLE_MAX:
        pair_of = np.zeros(n_both, dtype=np.uint32)
        pair_of[present] = np.arange(len(present), dtype=np.uint32)
        return present, pl.lit(pl.Series(pair_of)).gather(both)
    return present, both.replace_strict(present, pl.int_range(len(present), dtype=pl.UInt32,
                                                              eager=True))


def _packed_fields(rows: pl.DataFrame, parts: tuple[pl.Expr, ...],
                   sizes: tuple[int, int, int]) -> tuple[int, Fields]:
    """Dedupe on one UInt64 ``((head * pairs + pair) * nodes + tail) * sources + source``
    (``sizes`` = (nodes, pairs, sources)): sort the keys, keep the first of each run of equal
    ``key // sources``. Returns the edge count and the decoder of a slice of kept keys."""
    head, pair, tail, source = parts
    n_nodes, n_pair, n_src = sizes
    key = (((head.cast(pl.UInt64) * n_pair + pair) * n_nodes + tail) * n_src + source).alias("k")
    keys = rows.lazy().select(key).collect(engine="streaming").to_series().sort()
    kept = keys.to_frame().lazy().filter(new_run_expr(pl.col("k") // n_src)).collect(
        engine="streaming").to_series()
    del keys

    def fields(rows: slice) -> tuple[np.ndarray, ...]:
        k = kept.slice(rows.start, rows.stop - rows.start).to_numpy()
        rest = k // np.uint64(n_src)
        head_pair = rest // np.uint64(n_nodes)
        return (head_pair // np.uint64(n_pair), head_pair % np.uint64(n_pair),
                rest % np.uint64(n_nodes), k % np.uint64(n_src))

    return len(kept), fields


def _sorted_fields(rows: pl.DataFrame, parts: tuple[pl.Expr, ...]) -> tuple[int, Fields]:
    """Dedupe by a four-column sort on (head, pair, tail, source), keeping the first row of
    each (head, pair, tail) run. Returns the edge count and the reader of a slice."""
    head, pair, tail, source = parts
    edges = (
        rows.lazy().select(head.alias("h"), pair.alias("p"), tail.alias("t"),
                           source.alias("s"))
        .collect(engine="streaming")
        .sort("h", "p", "t", "s")
        .filter(new_run("h", "p", "t"))
        .rechunk()
    )
    columns = [edges[c].to_numpy() for c in ("h", "p", "t", "s")]

    def fields(rows: slice) -> tuple[np.ndarray, ...]:
        return tuple(c[rows] for c in columns)

    return edges.height, fields


def _slice_reader(fields: Fields, node_ids: np.ndarray, present: np.ndarray,
                  values: tuple[list, list, list]) -> Callable[[int, int], pa.Table]:
    """``get(start, length)``: edges ``start .. start + length`` as an ``EDGES_ARROW`` table
    (head/tail ``C`` + 7 digits, pair -> its REL and RELA, source by rank; ``values`` = the
    REL, RELA and SAB values of each rank) in :func:`_chunk_bounds` chunks."""
    rel_values, rela_values, src_values = values
    node_cuis = _cui_bytes(node_ids).view(np.uint64).ravel()
    pair_rel = _strings([rel_values[i] for i in present // len(rela_values)])
    pair_rela = _strings([rela_values[i] for i in present % len(rela_values)])
    sources = _strings(src_values)

    def get(start: int, length: int) -> pa.Table:
        h, p, t, s = fields(slice(start, start + length))
        p = _indices(p)
        columns = [
            _fixed_strings(node_cuis[h].view(np.uint8).reshape(-1, 8)),
            pair_rel.take(p),
            pair_rela.take(p),
            _fixed_strings(node_cuis[t].view(np.uint8).reshape(-1, 8)),
            sources.take(_indices(s)),
        ]
        bounds = _chunk_bounds(len(columns[0]))
        return pa.Table.from_arrays(
            [pa.chunked_array([c.slice(a, b - a) for a, b in bounds], c.type) for c in columns],
            schema=EDGES_ARROW)

    return get


def dedupe_edges(rows: pl.DataFrame, cats: dict[str, pl.Categories],
                 node_ids: np.ndarray) -> ArrowSlices:
    """Edges table (Arrow, schema ``EDGES``) from the kept MRREL rows: one row per (head,
    relation, relation_attr, tail), sorted so, with the alphabetically first source (nulls
    last).

    Every field is recoded as a small integer in string order: head and tail as ranks among
    ``node_ids`` (sorted CUIs), (REL, RELA) as the rank of the pairs present, SAB as its rank
    (``cats`` holds the Categories of relation, relation_attr and source). When
    ``nodes^2 * pairs * sources < 2**64`` a row packs into one UInt64 in edge order
    ``((head * pairs + pair) * nodes + tail) * sources + source``, so deduplication is one
    sort of values and a comparison with the previous value; otherwise a four-column sort
    does the same.
    """
    if rows.height == 0:
        return ArrowSlices(EDGES, 0, lambda start, length: EDGES_ARROW.empty_table())
    n_nodes = len(node_ids)
    rank_of = _node_ranks(node_ids)
    rel_lut, rel_values = _lexical_lut(cats["relation"])
    rela_lut, rela_values = _lexical_lut(cats["relation_attr"])
    src_lut, src_values = _lexical_lut(cats["source"], nulls_last=True)
    present, pair = _pair_codes(rows, rel_lut, rela_lut, len(rel_values), len(rela_values))
    n_pair, n_src = len(present), len(src_values)
    parts = (pl.lit(rank_of).gather(pl.col("head")), pair,
             pl.lit(rank_of).gather(pl.col("tail")), _code("source", src_lut))
    if n_nodes * n_nodes * n_pair * n_src <= PACKED_KEY_MAX + 1:
        n_edges, fields = _packed_fields(rows, parts, (n_nodes, n_pair, n_src))
    else:
        n_edges, fields = _sorted_fields(rows, parts)
    get = _slice_reader(fields, node_ids, present, (rel_values, rela_values, src_values))
    return ArrowSlices(EDGES, n_edges, get)
