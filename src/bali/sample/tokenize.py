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

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.ipc

from bali.io import BaliInputError, atomic_paths
from bali.progress import Progress
from bali.sample.spans import (  # noqa: F401 - best_window, token_spans: public here too
    best_window,
    encode_texts,
    load_tokenizer,
    token_spans,
    with_specials,
)
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
                      opts: TokenizeOptions, stats: dict,
                      progress: Callable[[int], None] | None = None):
    """Record batches of ``sentences.arrow``; fills ``stats``. ``progress(n)`` (if given) is
    told the sentences with mentions tokenized, one chunk of ``BATCH_ROWS`` at a time."""
    width = opts.max_length - 2
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
        m_start, m_end = m_start_all[lo:hi], m_end_all[lo:hi]
        texts = texts_all.gather(chunk).to_list()
        n_chars = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        ids, offsets, n_tok = encode_texts(tokenizer, texts)
        tok_base = exclusive_cumsum(n_tok)
        a, b = token_spans(offsets, tok_base, n_chars, m_text, m_start, m_end)
        has_tokens = b > a
        stats["mentions_without_tokens"] += int((~has_tokens).sum())
        n_usable = np.bincount(m_text[has_tokens], minlength=len(chunk))
        stats["sentences_dropped_mentions_without_tokens"] += int((n_usable == 0).sum())
        start, n_long = _window_starts(n_tok, n_usable, m_text, a, b, has_tokens, width)
        stats["sentences_truncated"] += n_long
        length = np.minimum(n_tok, width)
        keep = has_tokens & (a >= start[m_text]) & (b <= start[m_text] + length[m_text])
        stats["mentions_dropped_by_truncation"] += int((has_tokens & ~keep).sum())
        n_kept = np.bincount(m_text[keep], minlength=len(chunk))
        kept = n_kept > 0
        stats["sentences_dropped_no_mention_left"] += int(((n_usable > 0) & ~kept).sum())
        stats["windows_shifted"] += int((start[kept] > 0).sum())
        if progress is not None:
            progress(len(chunk))
        if not kept.any():
            continue
        out_off, values = with_specials(ids, tok_base[:-1][kept] + start[kept], length[kept],
                                         tokenizer.cls_token_id, tokenizer.sep_token_id)
        shift = start[m_text[keep]] - 1  # token index -> index into input_ids
        batch = _sentence_batch(sample, chunk[kept], out_off, values, exclusive_cumsum(
            n_kept[kept]), a[keep] - shift, b[keep] - shift, m_node_all[lo:hi][keep])
        stats["sentences"] += batch.num_rows
        stats["mentions"] += int(keep.sum())
        stats["tokens"] += len(values)
        yield batch


def _window_starts(n_tok: np.ndarray, n_usable: np.ndarray, m_text: np.ndarray, a: np.ndarray,
                   b: np.ndarray, has_tokens: np.ndarray, width: int) -> tuple[np.ndarray, int]:
    """(first kept token of each text, number of texts truncated): 0, or for a text of more
    than ``width`` tokens with a usable mention, the :func:`best_window` of the spans
    ``[a, b)`` of its mentions with tokens (``m_text`` sorted)."""
    start = np.zeros(len(n_tok), dtype=np.int64)
    long = np.flatnonzero((n_tok > width) & (n_usable > 0))
    if len(long):
        order = np.flatnonzero(has_tokens)  # usable mentions, grouped by text
        bounds = np.searchsorted(m_text[order], np.stack([long, long + 1]))
        for t, i0, i1 in zip(long.tolist(), bounds[0].tolist(), bounds[1].tolist(),
                             strict=True):
            sel = order[i0:i1]
            start[t] = best_window(int(n_tok[t]), a[sel], b[sel], width)
    return start, len(long)


def _sentence_batch(sample: pl.DataFrame, rows: np.ndarray, out_off: np.ndarray,
                    values: np.ndarray, m_off: np.ndarray, m_start: np.ndarray,
                    m_end: np.ndarray, m_node: np.ndarray) -> pa.RecordBatch:
    """A :data:`SENTENCES_SCHEMA` batch: doc_id and sentence_id of the sample ``rows``, the
    input ids as lists at ``out_off``, the mention token spans and nodes as lists at
    ``m_off``."""
    kept_rows = pl.Series(rows)
    return pa.record_batch([
        sample["doc_id"].gather(kept_rows).to_arrow().cast(pa.string()),
        pa.array(sample["sentence_id"].gather(kept_rows).to_numpy(), pa.int32()),
        list_array(out_off, values),
        list_array(m_off, m_start),
        list_array(m_off, m_end),
        list_array(m_off, m_node),
    ], schema=SENTENCES_SCHEMA)


def _name_table(nodes: pl.DataFrame) -> tuple[pl.Series, pl.DataFrame]:
    """Distinct names (first-seen order over nodes sorted by cui) and (node, name_id)
    rows in each node's name order."""
    exploded = (nodes.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("node"), "names")
                .explode("names").drop_nulls("names"))
    names = exploded["names"].unique(maintain_order=True)
    ids = pl.DataFrame({"names": names}, schema={"names": pl.String}).with_row_index("name_id")
    rows = exploded.join(ids, on="names", how="left", maintain_order="left")
    return names, rows.select("node", "name_id")


def _name_batches(names: pl.Series, tokenizer, opts: TokenizeOptions, stats: dict,
                  progress: Callable[[int], None] | None = None):
    """Record batches of ``names.arrow``: ``[CLS] name[:name_max_length - 2] [SEP]`` per
    name; counts ``names_truncated``. ``progress(n)`` (if given) is told the names done."""
    width = opts.name_max_length - 2
    for c0 in range(0, names.len(), BATCH_ROWS):
        texts = names.slice(c0, BATCH_ROWS).to_list()
        ids, _, n_tok = encode_texts(tokenizer, texts)
        stats["names_truncated"] += int((n_tok > width).sum())
        length = np.minimum(n_tok, width)
        out_off, values = with_specials(ids, exclusive_cumsum(n_tok)[:-1], length,
                                         tokenizer.cls_token_id, tokenizer.sep_token_id)
        if progress is not None:
            progress(len(texts))
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
    or none. Returns the counts that ``meta.json`` records, plus ``seconds``. Logs one
    summary line (:class:`bali.progress.Progress`, counting sentences and names tokenized)."""
    t0 = time.perf_counter()
    _check_inputs(sample, opts)
    tokenizer = load_tokenizer(tokenizer_dir)
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
    total = mentions["row"].n_unique() + names.len()
    with (Progress("tokenize", total=total, unit="text") as bar,
          atomic_paths(*(out / f for f in SHARD_FILES)) as tmp):
        write_ipc(tmp[0], SENTENCES_SCHEMA, _sentence_batches(sample, mentions, tokenizer,
                                                                opts, stats, bar.update))
        if stats["sentences"] == 0:
            raise BaliInputError("<sample>", "no sentence keeps a mention after tokenizing "
                                 f"(max_length {opts.max_length})")
        write_ipc(tmp[1], NAMES_SCHEMA, _name_batches(names, tokenizer, opts, stats,
                                                      bar.update))
        write_ipc(tmp[2], NODES_SCHEMA, _node_batches(nodes, name_rows, pool))
        tmp[3].write_text(_json_text(relations), encoding="utf-8")
        tmp[4].write_text(_json_text(_meta(tokenizer, tokenizer_dir, opts, stats)),
                          encoding="utf-8")
        bar.set_postfix(_summary(stats, out))
    return stats | {"seconds": round(time.perf_counter() - t0, 3)}


def _check_inputs(sample: pl.DataFrame, opts: TokenizeOptions) -> None:
    """Raise unless ``max_length`` and ``name_max_length`` are >= 3 and the sample has rows."""
    if opts.max_length < 3:
        raise BaliInputError("<config>", f"max_length must be at least 3, not {opts.max_length}")
    if opts.name_max_length < 3:
        raise BaliInputError("<config>", "name_max_length must be at least 3, not "
                             f"{opts.name_max_length}")
    if sample.height == 0:
        raise BaliInputError("<sample>", "the sample is empty: no sentence to tokenize")


def _meta(tokenizer, tokenizer_dir: Path, opts: TokenizeOptions, stats: dict) -> dict:
    """The content of ``meta.json``: format, tokenizer and its special ids, options, counts."""
    return {
        "format": FORMAT,
        "tokenizer": str(tokenizer_dir),
        "tokenizer_dir": str(Path(tokenizer.name_or_path)),
        "tokenizer_class": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "cls_token_id": tokenizer.cls_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "mask_token_id": tokenizer.mask_token_id,
        "options": asdict(opts),
        "counts": stats,
    }


def _summary(stats: dict, out: Path) -> str:
    """The summary line's counts: sentences (truncated, mentions dropped), nodes, names."""
    return (f"{stats['sentences']:,} sentences ({stats['sentences_truncated']:,} truncated, "
            f"{stats['mentions_dropped_by_truncation']:,} mentions dropped by truncation), "
            f"{stats['mentions']:,} mentions, {stats['nodes']:,} nodes, {stats['names']:,} "
            f"names -> {out}")
