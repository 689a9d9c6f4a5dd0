"""Supervised entity linking with BioSyn (Sung et al. 2020; paper Table 3, supervised rows).

Score of a mention ``q`` and a dictionary name ``n``::

    s(q, n) = d(q) . d(n) + w * t(q) . t(n)

``d``: the LM's last-layer [CLS] vector (not normalised); ``t``: the TF-IDF vector of the
character 1-2-grams (sklearn ``TfidfVectorizer(analyzer="char", ngram_range=(1, 2))``,
l2-normalised) fitted on the dictionary names; ``w``: a learned scalar (``initial_sparse_weight``,
learning rate ``sparse_lr``, no weight decay).

Training queries: the distinct (mention, id) of the training mentions with exactly one id
(composites and id-less mentions dropped, as BioSyn), at most ``max_train`` of them (a seeded
sample). At the start of every epoch each query gets ``k = topk`` candidates: its
``k - int(k * dense_ratio)`` best names by ``t(q) . t(n)`` (fixed), then its best names by
``d(q) . d(n)`` under the current encoder that are not yet taken, until ``k``. Label
``y_j = 1`` when candidate ``j`` carries the query's id. Loss (synonym marginalisation)::

    L(q) = -log sum_j y_j softmax_j(s(q, c_1), ..., s(q, c_k))

(the marginal clamped to [1e-9, 1]), averaged over the queries of a batch with at least one
positive candidate; a query without one adds nothing (a batch without any gives 0), as BioSyn.
Adam on the encoder (``lr``, ``weight_decay``) and ``w``; batches are a seeded permutation.

Evaluation: Acc@1/@5 (:func:`bali.evaluate.metrics.acc_at_k`) of the final model on the
refined test set (:func:`bali.evaluate.el_zeroshot.refine`, train and dev mentions seen;
``match`` and ``filter_dictionary`` as ``bali evaluate el-zeroshot``),
ranking the whole dictionary by ``s`` in chunks (no mentions x names matrix is held).

Dictionary cap (``max_dictionary``, for small runs): every name that carries a gold id of a
training query or of a refined test mention is kept, then a seeded sample of the other names
fills up to the cap (the cap is exceeded when the gold names alone exceed it).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch
from tqdm import tqdm

from bali.errors import OptionError
from bali.evaluate.el_zeroshot import (
    REFINE_HELP,
    ELOptions,
    chunked_top_k,
    encode,
    gold_in_dictionary,
    linking_accuracy,
    load_dictionary,
    read_mentions,
    refine,
    top_k,
)
from bali.evaluate.results import record
from bali.torchutil import seed_everything


@dataclass(frozen=True)
class BiosynOptions:
    """Options of :func:`evaluate_biosyn` (defaults: the paper's BioSyn settings)."""

    epochs: int = field(default=20, metadata={"help": "training epochs (0: untrained model)"})
    lr: float = field(default=1e-5, metadata={"help": "encoder learning rate (Adam)"})
    weight_decay: float = field(default=0.01, metadata={"help": "encoder weight decay"})
    sparse_lr: float = field(default=0.01, metadata={"help": "learning rate of the sparse weight"})
    initial_sparse_weight: float = field(default=0.0, metadata={"help": "initial sparse weight"})
    batch_size: int = field(default=16, metadata={"help": "training queries per batch"})
    max_length: int = field(default=25, metadata={"help": "tokens per name or mention"})
    topk: int = field(default=20, metadata={"help": "candidates per training query"})
    dense_ratio: float = field(default=0.5, metadata={"help": "share of dense candidates"})
    max_train: int = field(default=0, metadata={"help": "cap on training queries (0: all)"})
    max_dictionary: int = field(
        default=0, metadata={"help": "cap on dictionary names, gold ids kept (0: all)"})
    encode_batch: int = field(default=256, metadata={"help": "texts per encoding batch"})
    chunk: int = field(default=4096, metadata={"help": "rows per retrieval chunk"})
    match: str = field(default="exact", metadata={"help": REFINE_HELP["match"]})
    filter_dictionary: bool = field(default=False,
                                    metadata={"help": REFINE_HELP["filter_dictionary"]})


def marginal_nll(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Synonym-marginalisation loss of the module docstring: ``scores``, ``labels`` [B, k]."""
    marginal = (scores.softmax(dim=-1) * labels).sum(dim=-1)
    has_positive = labels.sum(dim=-1) > 0
    if not has_positive.any():
        return scores.sum() * 0.0  # zero, still attached to the graph
    return -marginal[has_positive].clamp(min=1e-9, max=1.0).log().mean()


def union_candidates(sparse: np.ndarray, dense: np.ndarray, k: int, n_sparse: int) -> np.ndarray:
    """Per row: the first ``n_sparse`` of ``sparse``, then ``dense`` then the rest of
    ``sparse`` in order, duplicates skipped, cut at ``k`` -> [Q, k] indices."""
    out = np.empty((sparse.shape[0], k), dtype=np.int64)
    for row, (s, d) in enumerate(zip(sparse.tolist(), dense.tolist(), strict=True)):
        picked = list(dict.fromkeys([*s[:n_sparse], *d, *s[n_sparse:]]))[:k]
        if len(picked) < k:
            raise OptionError(f"only {len(picked)} distinct candidates for k={k}")
        out[row] = picked
    return out


def candidate_labels(gold: list[list[str]], candidates: np.ndarray,
                     dict_ids: list[list[str]]) -> np.ndarray:
    """``y[i, j] = 1`` when candidate ``j`` of query ``i`` carries a gold id of query ``i``."""
    sets = [set(ids) for ids in dict_ids]
    return np.array([[bool(sets[c] & set(g)) for c in row] for g, row
                     in zip(gold, candidates.tolist(), strict=True)], dtype=np.float32
                    ).reshape(candidates.shape)


def fit_sparse(names: list[str]):
    """The TF-IDF encoder of the module docstring, fitted on the dictionary names."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char", ngram_range=(1, 2), dtype=np.float32).fit(names)


def sparse_top_k(queries: sp.csr_matrix, keys: sp.csr_matrix, k: int, chunk: int) -> np.ndarray:
    """Indices [Q, k] of the best ``t(q) . t(n)`` per query (chunked sparse products)."""
    return chunked_top_k(queries.shape[0], keys.shape[0], k, chunk, lambda q, c: torch.from_numpy(
        (queries[q] @ keys[c].T).toarray())).numpy()


def pair_scores(queries: sp.csr_matrix, keys: sp.csr_matrix, candidates: np.ndarray) -> np.ndarray:
    """``t(q_i) . t(n_c)`` for every candidate ``c`` of row ``i`` -> [Q, k] float32."""
    rows = np.repeat(np.arange(candidates.shape[0]), candidates.shape[1])
    dots = queries[rows].multiply(keys[candidates.ravel()]).sum(axis=1)
    return np.asarray(dots, dtype=np.float32).reshape(candidates.shape)


def training_queries(train: pl.DataFrame, max_train: int, seed: int) -> pl.DataFrame:
    """Distinct (mention, id) of the single-id mentions; a seeded sample of ``max_train``."""
    queries = (train.filter(pl.col("ids").list.len() == 1).select("mention", "ids")
               .unique(maintain_order=True))
    if 0 < max_train < queries.height:
        keep = sorted(random.Random(seed).sample(range(queries.height), max_train))
        queries = queries[keep]
    return queries


def cap_dictionary(dictionary: pl.DataFrame, gold_ids: set[str], max_names: int,
                   seed: int) -> pl.DataFrame:
    """The dictionary cap of the module docstring (``max_names`` 0: no cap)."""
    if max_names <= 0 or dictionary.height <= max_names:
        return dictionary
    is_gold = [bool(gold_ids.intersection(ids)) for ids in dictionary["ids"].to_list()]
    others = [i for i, g in enumerate(is_gold) if not g]
    fill = max(0, max_names - (len(is_gold) - len(others)))
    chosen = set(random.Random(seed).sample(others, min(fill, len(others))))
    return dictionary[[i for i, g in enumerate(is_gold) if g or i in chosen]]


def _cls(model, tokenizer, texts: list[str], max_length: int) -> torch.Tensor:
    """Last-layer [CLS] vectors [N, d] of ``texts``, with gradients."""
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt").to(model.device)
    return model(**batch).last_hidden_state[:, 0]


def combined_top_k(q_dense: torch.Tensor, k_dense: torch.Tensor, q_sparse: sp.csr_matrix,
                   k_sparse: sp.csr_matrix, weight: float, k: int, chunk: int) -> torch.Tensor:
    """Indices [Q, k] of the best ``s(q, n)`` (module docstring) over all names, chunked."""

    def score(q: slice, c: slice) -> torch.Tensor:
        sparse = torch.from_numpy((q_sparse[q] @ k_sparse[c].T).toarray())
        return q_dense[q] @ k_dense[c].T + weight * sparse

    return chunked_top_k(q_dense.shape[0], k_dense.shape[0], k, chunk, score)


def train_biosyn(model, tokenizer, queries: pl.DataFrame, dictionary: pl.DataFrame, vectorizer,
                 sparse_weight: torch.nn.Parameter, opts: BiosynOptions,
                 seed: int) -> list[float]:
    """Train ``model`` and ``sparse_weight`` in place (module docstring); mean loss per epoch."""
    enc = ELOptions(pooling="cls", max_length=opts.max_length, batch_size=opts.encode_batch,
                    chunk=opts.chunk)
    q_names, d_names = queries["mention"].to_list(), dictionary["name"].to_list()
    gold, dict_ids = queries["ids"].to_list(), dictionary["ids"].to_list()
    q_sparse, d_sparse = vectorizer.transform(q_names), vectorizer.transform(d_names)
    k = min(opts.topk, len(d_names))
    n_sparse = k - int(k * opts.dense_ratio)
    sparse_cands = sparse_top_k(q_sparse, d_sparse, k, opts.chunk)
    optimizer = torch.optim.Adam(
        [{"params": [p for p in model.parameters() if p.requires_grad]},
         {"params": [sparse_weight], "lr": opts.sparse_lr, "weight_decay": 0.0}],
        lr=opts.lr, weight_decay=opts.weight_decay)
    order = torch.Generator().manual_seed(seed)
    device = model.device
    losses = []
    for epoch in range(opts.epochs):
        model.eval()  # candidate refresh with the current encoder, no dropout
        dense_cands = top_k(encode(q_names, model, tokenizer, enc, normalize=False),
                            encode(d_names, model, tokenizer, enc, normalize=False),
                            k, opts.chunk).numpy()
        cands = union_candidates(sparse_cands, dense_cands, k, n_sparse)
        labels = torch.from_numpy(candidate_labels(gold, cands, dict_ids))
        s_scores = torch.from_numpy(pair_scores(q_sparse, d_sparse, cands))
        model.train()
        total, steps = 0.0, 0
        perm = torch.randperm(len(q_names), generator=order).tolist()
        bar = tqdm(range(0, len(perm), opts.batch_size), desc=f"biosyn epoch {epoch + 1}",
                   leave=False)
        for start in bar:
            idx = perm[start:start + opts.batch_size]
            q = _cls(model, tokenizer, [q_names[i] for i in idx], opts.max_length)
            c = _cls(model, tokenizer, [d_names[j] for i in idx for j in cands[i]],
                     opts.max_length).view(len(idx), k, -1)
            scores = (torch.einsum("bh,bkh->bk", q, c)
                      + sparse_weight * s_scores[idx].to(device))
            loss = marginal_nll(scores, labels[idx].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, steps = total + loss.item(), steps + 1
            bar.set_postfix(loss=f"{total / steps:.4f}")
        losses.append(total / max(steps, 1))
    model.eval()
    return losses


def evaluate_biosyn(model_dir: Path, dictionary_path: Path | None, train_path: Path,
                    dev_path: Path | None, test_path: Path, opts: BiosynOptions, *,
                    benchmark: str = "el", seed: int = 0,
                    labels: dict[str, str] | None = None) -> dict:
    """Train BioSyn from ``model_dir`` on ``train_path`` and report Acc@1/@5 on the refined
    test set as a results record (:mod:`bali.evaluate.results`). Without ``dictionary_path``
    the dictionary is built from the train (and dev) mentions."""
    from transformers import AutoModel, AutoTokenizer

    if opts.epochs < 0 or opts.topk < 1 or opts.batch_size < 1:
        raise OptionError("epochs must be >= 0, topk and batch_size >= 1")
    if not 0.0 <= opts.dense_ratio <= 1.0:
        raise OptionError(f"dense_ratio must be in [0, 1], not {opts.dense_ratio}")
    t0 = time.perf_counter()
    seed_everything(seed)
    train = read_mentions(train_path)
    seen = [train, *([read_mentions(dev_path)] if dev_path else [])]
    seen_paths = [train_path, *([dev_path] if dev_path else [])]
    dict_stats, refine_stats = {}, {}
    full, note = load_dictionary(dictionary_path, seen, seen_paths, dict_stats)
    notes = [note]
    test = read_mentions(test_path)
    refined = refine(test, seen, full, match=opts.match,
                     filter_dictionary=opts.filter_dictionary, stats=refine_stats)
    queries = training_queries(train, opts.max_train, seed)
    gold_ids = {i for ids in [*queries["ids"], *refined["ids"]] for i in ids}
    dictionary = cap_dictionary(full, gold_ids, opts.max_dictionary, seed)
    if dictionary.height < full.height:
        notes.append(f"dictionary capped to {dictionary.height} of {full.height} names "
                     "(every name of a gold train/test id kept)")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).to(device)
    vectorizer = fit_sparse(dictionary["name"].to_list())
    weight = torch.nn.Parameter(torch.tensor(opts.initial_sparse_weight, device=device))
    losses = train_biosyn(model, tokenizer, queries, dictionary, vectorizer, weight, opts, seed)
    notes += [f"train loss per epoch: {[round(x, 4) for x in losses]}",
              f"final sparse weight: {weight.item():.4f}", f"device: {device}"]

    enc = ELOptions(pooling="cls", max_length=opts.max_length, batch_size=opts.encode_batch,
                    chunk=opts.chunk)
    names, mentions = dictionary["name"].to_list(), refined["mention"].to_list()
    nearest = combined_top_k(
        encode(mentions, model, tokenizer, enc, normalize=False),
        encode(names, model, tokenizer, enc, normalize=False),
        vectorizer.transform(mentions), vectorizer.transform(names), weight.item(), 5,
        opts.chunk)
    sources = [*([dictionary_path] if dictionary_path else []), test_path, *seen_paths]
    return record(
        task="el_supervised", benchmark=benchmark, model=model_dir, seed=seed, labels=labels,
        metrics=linking_accuracy(refined, dictionary, nearest), primary="acc@1",
        options=asdict(opts), data=sources, notes=notes,
        counts={"train_mentions": train.height, "train_queries": queries.height,
                "train_queries_id_not_in_dictionary":
                    queries.height - gold_in_dictionary(queries, dictionary),
                "test_mentions": test.height, **refine_stats,
                "refined_test_mentions": refined.height,
                "dictionary_names": dictionary.height, "dictionary_names_given": full.height,
                **dict_stats},
        started=t0)


def _run(args: argparse.Namespace) -> None:
    from bali.config import options_from_args
    from bali.evaluate.results import parse_labels, write_record
    from bali.paths import resolve_model

    rec = evaluate_biosyn(resolve_model(args.model), args.dictionary, args.train, args.dev,
                          args.test, options_from_args(BiosynOptions, args),
                          benchmark=args.benchmark, seed=args.seed,
                          labels=parse_labels(args.label))
    write_record(args.out, rec)
    print(json.dumps({**rec["metrics"], **rec["counts"]}))


def add_parser(tasks: argparse._SubParsersAction) -> None:
    """Register ``bali evaluate el-biosyn``."""
    from bali.config import add_options
    from bali.evaluate.results import add_task_parser

    el = add_task_parser(
        tasks, "el-biosyn", "supervised entity linking with BioSyn, Acc@1/@5",
        "Train BioSyn (dense [CLS] + TF-IDF scores, synonym marginalisation) and rank the "
        "dictionary for the refined test set (see bali.evaluate.el_biosyn).", "el")
    el.add_argument("--dictionary", type=Path,
                    help="BioSyn dictionary 'ids||name' or KG names.parquet; default: built "
                    "from the train/dev mentions")
    el.add_argument("--train", required=True, type=Path, help="train .concept or PubTator file")
    el.add_argument("--dev", type=Path, help="dev mentions (seen, for the refinement)")
    el.add_argument("--test", required=True, type=Path, help="test .concept or PubTator file")
    add_options(el, BiosynOptions)
    el.set_defaults(func=_run)
