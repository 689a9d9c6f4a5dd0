"""Seeded 64-bit priorities of the union draw, fixed across platforms and library versions.

priority(cui, doc_id, sentence_id) = mix(string_hash(cui, seed) ^ sentence_keys(doc_id,
sentence_id)), with ``mix`` splitmix64's finaliser and ``string_hash`` a polynomial over the
UTF-8 bytes: a concept's draw (its k lowest priorities) depends on the seed, its id and its own
candidates only, so per-shard draws merge (:mod:`bali.sample.bottomk`).
"""

from __future__ import annotations

import numpy as np
import polars as pl

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def string_hash(values: pl.Series, seed: int) -> np.ndarray:
    """Seeded 64-bit hash of each string from its UTF-8 bytes, vectorised (a polynomial over
    the bytes, then splitmix64): the same on every platform and library version, unlike
    polars' ``hash``. Works through ``_HASH_CHUNK`` strings at a time."""
    seed_key = mix(np.array([seed], dtype=np.int64).astype(np.uint64) + _M2)
    out = np.empty(values.len(), dtype=np.uint64)
    for lo in range(0, values.len(), _HASH_CHUNK):
        out[lo:lo + _HASH_CHUNK] = _polynomial(values.slice(lo, _HASH_CHUNK))
    return mix(out ^ seed_key)


_HASH_CHUNK = 1 << 20


def _polynomial(values: pl.Series) -> np.ndarray:
    import pyarrow as pa

    arr = values.cast(pl.String).to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    if arr.null_count:
        raise ValueError("string_hash: null values")
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = (np.frombuffer(data_buf, np.uint8)[offsets[0]:offsets[-1]] if data_buf is not None
            else np.zeros(0, np.uint8))
    offsets = offsets - offsets[0]
    lengths = np.diff(offsets)
    pos = np.arange(data.size, dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    powers = np.cumprod(np.full(max(int(lengths.max(initial=0)), 1), _GOLDEN, np.uint64))
    terms = (data.astype(np.uint64) + np.uint64(1)) * powers[pos]
    sums = np.concatenate(([np.uint64(0)], np.cumsum(terms, dtype=np.uint64)))
    poly = sums[offsets[1:]] - sums[offsets[:-1]]
    return mix((poly ^ lengths.astype(np.uint64)) + _GOLDEN)


def sentence_keys(doc_ids: pl.Series, sentence_ids: pl.Series) -> np.ndarray:
    """A 64-bit key of each (doc_id, sentence_id), seed-free."""
    ids = sentence_ids.cast(pl.Int64).to_numpy().astype(np.uint64)
    return mix(string_hash(doc_ids, 1) ^ (ids * _GOLDEN))


def draw_priorities(pairs: pl.DataFrame, seed: int) -> np.ndarray:
    """The union draw's priority of each (cui, doc_id, sentence_id) row: a 64-bit hash of
    (seed, cui, doc_id, sentence_id)."""
    return mix(string_hash(pairs["cui"], seed)
                ^ sentence_keys(pairs["doc_id"], pairs["sentence_id"]))


DRAW_ORDER = ("cui", "priority", "doc_id", "sentence_id")


def with_priorities(pairs: pl.DataFrame, seed: int) -> pl.DataFrame:
    """(cui, doc_id, sentence_id) pairs with their ``priority`` (u64, :func:`draw_priorities`)."""
    pairs = pairs.select("cui", "doc_id", "sentence_id")
    return pairs.with_columns(priority=pl.Series(draw_priorities(pairs, seed), dtype=pl.UInt64))


def bottom_k(pairs: pl.DataFrame, k: int) -> pl.DataFrame:
    """The ``k`` rows of lowest (priority, doc_id, sentence_id) per cui, sorted by
    :data:`DRAW_ORDER`: one concept's draw (ties need equal 64-bit hashes)."""
    return pairs.sort(*DRAW_ORDER).filter(pl.int_range(pl.len()).over("cui") < k)
