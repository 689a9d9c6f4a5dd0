"""Zero-shot entity linking (paper Table 3; protocol of Tutubalina et al. 2020).

Inputs (shared with :mod:`bali.evaluate.el_biosyn`):

- dictionary: BioSyn lines ``ids||name`` (ids joined by ``|``), or a KG ``names`` table
  (``*.parquet``, :data:`bali.kg.schema.NAMES`; one entry per row, ids = [cui]);
- mentions: BioSyn ``.concept`` lines ``PMID||start|end||type||mention||ids`` (a composite
  mention lists several ids joined by ``|`` or ``+``), or a PubTator file (title
  ``PMID|t|``, abstract ``PMID|a|``, mention lines ``PMID<TAB>start<TAB>end<TAB>mention
  <TAB>type<TAB>ids``; ids joined by ``|`` or ``+``, ``-1`` for none), told apart by content
  (a ``.concept`` line has ``||``). PubTator ids are written as the dictionaries write them:
  ``MESH:D003866`` and bare ``D003866`` -> ``D003866``, ``OMIM:600807`` -> ``600807``,
  ``UMLS:C0011849`` -> ``C0011849``, ``HP:0000118`` kept (:func:`bali.kg.prefixes.split_curie`).

Refined test set: drop test mentions whose lower-cased text occurs in the training mentions
(train and dev) or as a dictionary name, drop mentions without an id (``-1``), then keep one
row per (lower-cased mention, ids).

Retrieval: mentions and dictionary names are encoded by the model (``cls`` or ``mean``
pooling of the last layer), L2-normalised, and the ``k`` nearest names by cosine are found
in chunks (mention chunks x dictionary chunks with a running top-k, so no mentions x names
matrix is ever held). A mention is a hit at k when any id of its gold ids is an id of any of
its k nearest names (the rule for composite mentions too). Acc@1 and Acc@5 are reported.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import torch

from bali.evaluate.metrics import acc_at_k
from bali.evaluate.results import file_digest, record
from bali.io import BaliInputError, check_input_file


@dataclass(frozen=True)
class ELOptions:
    """Options of :func:`evaluate_zeroshot`."""

    pooling: str = field(default="cls", metadata={"help": "cls or mean pooling of the LM"})
    max_length: int = field(default=25, metadata={"help": "tokens per name or mention"})
    batch_size: int = field(default=256, metadata={"help": "texts per encoder batch"})
    chunk: int = field(default=4096, metadata={"help": "rows per retrieval chunk"})


def _lines(path: str | Path):
    """(path, line number, line without newline) of the non-blank lines of a UTF-8 file."""
    p = check_input_file(path)
    with open(p, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.strip():
                yield p, lineno, line.rstrip("\n")


DICTIONARY_SCHEMA = {"name": pl.String, "ids": pl.List(pl.String)}
MENTION_SCHEMA = {"doc_id": pl.String, "type": pl.String, "mention": pl.String,
                  "ids": pl.List(pl.String)}


def read_dictionary(path: str | Path) -> pl.DataFrame:
    """BioSyn dictionary or KG ``names`` table (``*.parquet``) -> (name, ids list)."""
    if Path(path).suffix == ".parquet":
        from bali.io import read_table
        from bali.kg.schema import NAMES

        names = read_table(path, {c: NAMES[c] for c in ("cui", "name")})
        frame = (names.filter(pl.col("name").str.strip_chars().str.len_chars() > 0)
                 .select(pl.col("name").str.strip_chars(), pl.concat_list("cui").alias("ids")))
    else:
        rows = []
        for p, lineno, line in _lines(path):
            ids, sep, name = line.partition("||")
            if not sep or not name.strip():
                raise BaliInputError(p, "expected 'ids||name'", lineno)
            rows.append({"name": name.strip(), "ids": [i for i in ids.split("|") if i]})
        frame = pl.DataFrame(rows, schema=DICTIONARY_SCHEMA)
    if frame.height == 0:
        raise BaliInputError(path, "the dictionary is empty")
    return frame


def _is_concept_file(path: Path) -> bool:
    """Whether the first non-blank line is a BioSyn ``.concept`` line (it has ``||``)."""
    first = next(_lines(path), None)
    if first is None:
        raise BaliInputError(path, "no mentions (only blank lines)")
    return "||" in first[2]


def _pubtator_id(raw: str) -> str:
    """A PubTator id as the dictionaries write it (module docstring)."""
    from bali.kg.prefixes import split_curie

    split = split_curie(raw)
    return raw if split is None else split[1]


def read_mentions(path: str | Path) -> pl.DataFrame:
    """BioSyn ``.concept`` or PubTator file -> (doc_id, type, mention, ids list)."""
    p = check_input_file(path)
    if not _is_concept_file(p):
        from bali.text.readers import iter_pubtator

        rows = [{"doc_id": m["doc_id"], "type": m["entity_type"], "mention": m["mention"].strip(),
                 "ids": [_pubtator_id(i) for raw in m["source_ids"] for i in raw.split("+")
                         if i and i != "-1"]}
                for _, mentions in iter_pubtator(p) for m in mentions]
        return pl.DataFrame(rows, schema=MENTION_SCHEMA)
    rows = []
    for p, lineno, line in _lines(path):
        fields = line.split("||")
        if len(fields) != 5:
            raise BaliInputError(p, "expected 'PMID||start|end||type||mention||ids'", lineno)
        ids = [i for i in fields[4].replace("+", "|").split("|") if i and i != "-1"]
        rows.append({"doc_id": fields[0], "type": fields[2], "mention": fields[3].strip(),
                     "ids": ids})
    return pl.DataFrame(rows, schema=MENTION_SCHEMA)


def refine(test: pl.DataFrame, seen: list[pl.DataFrame], dictionary: pl.DataFrame) -> pl.DataFrame:
    """The refined test set of the module docstring."""
    known = pl.concat([*(s.select(pl.col("mention").str.to_lowercase()) for s in seen),
                       dictionary.select(pl.col("name").str.to_lowercase().alias("mention"))])
    return (
        test.with_columns(key=pl.col("mention").str.to_lowercase())
        .filter(pl.col("ids").list.len() > 0)
        .join(known.unique().rename({"mention": "key"}), on="key", how="anti")
        .unique(["key", "ids"], keep="first", maintain_order=True)
        .drop("key")
    )


@torch.no_grad()
def encode(texts: list[str], model, tokenizer, opts: ELOptions, *,
           normalize: bool = True) -> torch.Tensor:
    """L2-normalised (unless ``normalize=False``) ``cls``/``mean`` embeddings of ``texts``
    [N, d] (float32, CPU; the model runs on its own device). Texts are batched in order of
    length (less padding: ~3x faster on short names), rows come back in input order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = []
    for i in range(0, len(texts), opts.batch_size):
        chunk = [texts[j] for j in order[i:i + opts.batch_size]]
        batch = tokenizer(chunk, padding=True, truncation=True, max_length=opts.max_length,
                          return_tensors="pt").to(model.device)
        hidden = model(**batch).last_hidden_state
        if opts.pooling == "cls":
            vec = hidden[:, 0]
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        vec = vec.float().cpu()
        out.append(torch.nn.functional.normalize(vec, dim=-1) if normalize else vec)
    if not out:
        return torch.empty(0, model.config.hidden_size)
    result = torch.empty(len(texts), out[0].shape[1])
    result[torch.tensor(order)] = torch.cat(out)
    return result


def top_k(queries: torch.Tensor, keys: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Indices [Q, k] of the k largest ``queries @ keys.T`` per row, computed in chunks."""
    return chunked_top_k(queries.shape[0], keys.shape[0], k, chunk,
                         lambda q, c: queries[q] @ keys[c].T)


def chunked_top_k(n_queries: int, n_keys: int, k: int, chunk: int,
                  score: Callable[[slice, slice], torch.Tensor]) -> torch.Tensor:
    """Indices [Q, k] of the k largest scores per query, where ``score(q, c)`` gives the
    float scores [len q, len c] of query rows ``q`` against key rows ``c`` (slices of at
    most ``chunk``): a running top-k, so no Q x N matrix is held."""
    k = min(k, n_keys)
    result = []
    for q_start in range(0, n_queries, chunk):
        q = slice(q_start, min(q_start + chunk, n_queries))
        rows = q.stop - q.start
        best_s = torch.full((rows, k), -torch.inf)
        best_i = torch.zeros((rows, k), dtype=torch.long)
        for start in range(0, n_keys, chunk):
            s = score(q, slice(start, min(start + chunk, n_keys)))
            cand_s = torch.cat([best_s, s], dim=1)
            cand_i = torch.cat([best_i, torch.arange(start, start + s.shape[1]).expand_as(s)], 1)
            best_s, pos = cand_s.topk(k, dim=1)
            best_i = cand_i.gather(1, pos)
        result.append(best_i)
    return torch.cat(result) if result else torch.empty(0, k, dtype=torch.long)


def dictionary_from_mentions(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """A dictionary of the distinct (mention, ids) of annotated mentions (used where the
    vocabulary is not available, e.g. CTD chemicals for BC5CDR-chemical)."""
    return (pl.concat(frames).filter(pl.col("ids").list.len() > 0)
            .select(pl.col("mention").alias("name"), "ids").unique(maintain_order=True))


def load_dictionary(path: Path | None, seen: list[pl.DataFrame], seen_paths: list[Path]
                    ) -> tuple[pl.DataFrame, str]:
    """``(dictionary, note)``: the dictionary file, or one built from the ``seen`` mentions."""
    if path is not None:
        return read_dictionary(path), f"dictionary {path}"
    if not seen:
        raise ValueError("give a dictionary or the seen (train/dev) mentions to build one")
    dictionary = dictionary_from_mentions(seen)
    if dictionary.height == 0:
        raise BaliInputError(seen_paths[0], "no mention with an id to build a dictionary from")
    return dictionary, "dictionary built from the train/dev mentions (no vocabulary given)"


def linking_accuracy(refined: pl.DataFrame, dictionary: pl.DataFrame,
                     nearest: torch.Tensor) -> dict[str, float]:
    """Acc@1 and Acc@5 of ``nearest`` [mentions, >=5] dictionary rows against the gold ids."""
    dict_ids = dictionary["ids"].to_list()
    ranked = [[dict_ids[c] for c in cand] for cand in nearest.tolist()]
    gold = refined["ids"].to_list()
    return {"acc@1": acc_at_k(gold, ranked, 1), "acc@5": acc_at_k(gold, ranked, 5)}


def evaluate_zeroshot(model_dir: Path, dictionary_path: Path | None, test_path: Path,
                      seen_paths: list[Path], opts: ELOptions, cache_dir: Path | None = None,
                      *, benchmark: str = "el", seed: int = 0,
                      labels: dict[str, str] | None = None) -> dict:
    """Acc@1/Acc@5 of ``model_dir`` on the refined test set, as a results record
    (:mod:`bali.evaluate.results`). Without ``dictionary_path`` the dictionary is built from
    the ``seen`` mentions. Retrieval is deterministic: ``seed`` is recorded only."""
    from transformers import AutoModel, AutoTokenizer

    if opts.pooling not in ("cls", "mean"):
        raise ValueError(f"pooling must be cls or mean, not {opts.pooling!r}")
    t0 = time.perf_counter()
    seen = [read_mentions(p) for p in seen_paths]
    dictionary, note = load_dictionary(dictionary_path, seen, seen_paths)
    test = read_mentions(test_path)
    refined = refine(test, seen, dictionary)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    names = dictionary["name"].to_list()
    sources = [*([dictionary_path] if dictionary_path else []), test_path, *seen_paths]
    cache = None
    if cache_dir is not None:  # dictionary embeddings, per model weights x dictionary x options
        source = file_digest(dictionary_path) if dictionary_path else [
            file_digest(p) for p in seen_paths]
        key = hashlib.sha256(json.dumps([file_digest(f) for f in sorted(Path(model_dir).glob(
            "*.safetensors"))] + [source, asdict(opts)]).encode()).hexdigest()
        cache = Path(cache_dir) / f"dict-{key[:24]}.npy"
    if cache is not None and cache.exists():
        keys = torch.from_numpy(np.load(cache))
    else:
        keys = encode(names, model, tokenizer, opts)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.save(cache, keys.numpy())
    queries = encode(refined["mention"].to_list(), model, tokenizer, opts)
    nearest = top_k(queries, keys, 5, opts.chunk)
    return record(
        task="el_zeroshot", benchmark=benchmark, model=model_dir, seed=seed, labels=labels,
        metrics=linking_accuracy(refined, dictionary, nearest), primary="acc@1",
        options=asdict(opts), data=sources, notes=[note],
        counts={"test_mentions": test.height, "refined_test_mentions": refined.height,
                "dictionary_names": dictionary.height},
        started=t0)
