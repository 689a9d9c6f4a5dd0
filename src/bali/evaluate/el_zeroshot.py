"""Zero-shot entity linking (paper Table 3; protocol of Tutubalina et al. 2020).

Inputs (shared with :mod:`bali.evaluate.el_biosyn`):

- dictionary: BioSyn lines ``ids||name|synonym|...`` (ids joined by ``|``, e.g.
  ``C567755|613097||Tooth Agenesis, Selective, 6|STHAG6``: two names of one concept with a
  MeSH id and an OMIM number), or a KG ``names`` table (``*.parquet``,
  :data:`bali.kg.schema.NAMES`; one entry per row, ids = [cui], cuis used as written). A
  BioSyn line gives one row per name (stripped; empty names skipped and counted as
  ``dictionary_empty_names``), each with every id of the line; exact duplicate (name, ids)
  rows are dropped, the first kept (``dictionary_duplicates``; MEDIC 06Jul2012 has none:
  11,915 lines -> 76,237 names, 76,237 rows). A name that is written under several concepts
  stays one row per concept.
- mentions: BioSyn ``.concept`` lines ``PMID||start|end||type||mention||ids`` (a composite
  mention lists several ids joined by ``|`` or ``+``), or a PubTator file (title
  ``PMID|t|``, abstract ``PMID|a|``, mention lines ``PMID<TAB>start<TAB>end<TAB>mention
  <TAB>type<TAB>ids``; ids joined by ``|`` or ``+``, ``-1`` for none), told apart by content
  (a ``.concept`` line has ``||``).

Ids (:func:`canonical_id`, the same rule for dictionary, ``.concept`` and PubTator ids, so
that a mention id and a dictionary id of one concept compare equal): a ``PREFIX:code`` id
loses its prefix unless the source keeps it in UMLS (:func:`bali.kg.prefixes.split_curie`):
``MESH:D003866`` and bare ``D003866`` -> ``D003866``; ``OMIM:600807``, ``MIM:600807`` and
bare ``600807`` -> ``600807`` (a MEDIC-style dictionary writes OMIM numbers bare);
``UMLS:C0011849`` -> ``C0011849``; ``HP:0000118`` kept. Bare ids are kept as written.

Refined test set (:func:`refine`; Tutubalina et al.'s released ``process_data.py``, which
removes the test rows whose exact entity text occurs among the training mentions, then drops
duplicate (entity text, label) rows): drop mentions without an id (``-1``), drop mentions
whose text equals the text of a train/dev mention (``match``: ``exact``, as that code, or
``casefold``) and, with ``filter_dictionary``, of a dictionary name (off by default: the
released code filters on training mentions only), then keep one row per (text, ids) -- the
text compared under ``match``, the ids as written, in order, like the code's label string --
the first one kept. Every step's removals are counted.

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

from bali.errors import OptionError
from bali.evaluate.metrics import hits_at_k
from bali.evaluate.results import file_digest, record
from bali.io import BaliInputError, check_input_file

MATCHES = ("exact", "casefold")
REFINE_HELP = {  # the refinement options, shared with bali.evaluate.el_biosyn
    "match": "refinement: how a test mention's text is compared with the seen mentions "
    "(and dictionary names): exact or casefold",
    "filter_dictionary": "refinement also drops test mentions that are dictionary names",
}


@dataclass(frozen=True)
class ELOptions:
    """Options of :func:`evaluate_zeroshot`."""

    pooling: str = field(default="cls", metadata={"help": "cls or mean pooling of the LM"})
    max_length: int = field(default=25, metadata={"help": "tokens per name or mention"})
    batch_size: int = field(default=256, metadata={"help": "texts per encoder batch"})
    chunk: int = field(default=4096, metadata={"help": "rows per retrieval chunk"})
    match: str = field(default="exact", metadata={"help": REFINE_HELP["match"]})
    filter_dictionary: bool = field(default=False,
                                    metadata={"help": REFINE_HELP["filter_dictionary"]})


ENCODING_OPTIONS = ("pooling", "max_length", "batch_size")  # what the name embeddings depend on


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


def canonical_id(raw: str) -> str:
    """An id in the canonical form of the module docstring."""
    from bali.kg.prefixes import split_curie

    raw = raw.strip()
    split = split_curie(raw)
    return raw if split is None else split[1]


def _count(stats: dict | None, key: str, n: int) -> None:
    if stats is not None:
        stats[key] = stats.get(key, 0) + n


def read_dictionary(path: str | Path, stats: dict | None = None) -> pl.DataFrame:
    """BioSyn dictionary or KG ``names`` table (``*.parquet``) -> (name, ids list), one row
    per name (module docstring). ``stats`` (if given) gets ``dictionary_empty_names`` and
    ``dictionary_duplicates``."""
    if Path(path).suffix == ".parquet":
        from bali.io import read_table
        from bali.kg.schema import NAMES

        names = read_table(path, {c: NAMES[c] for c in ("cui", "name")})
        frame = (names.filter(pl.col("name").str.strip_chars().str.len_chars() > 0)
                 .select(pl.col("name").str.strip_chars(), pl.concat_list("cui").alias("ids")))
    else:
        names, id_lists, empty = [], [], 0
        for p, lineno, line in _lines(path):
            ids, sep, rest = line.partition("||")
            ids = [canonical_id(i) for i in ids.split("|") if i.strip()]
            line_names = [n.strip() for n in rest.split("|")]
            kept = [n for n in line_names if n]
            if not sep or not ids or not kept:
                raise BaliInputError(p, "expected 'ids||name' or 'ids||name|synonym|...'",
                                     lineno)
            empty += len(line_names) - len(kept)
            names += kept
            id_lists += [ids] * len(kept)
        frame = pl.DataFrame({"name": names, "ids": id_lists}, schema=DICTIONARY_SCHEMA)
        _count(stats, "dictionary_empty_names", empty)
    if frame.height == 0:
        raise BaliInputError(path, "the dictionary is empty")
    unique = frame.unique(maintain_order=True)
    _count(stats, "dictionary_duplicates", frame.height - unique.height)
    return unique


def _is_concept_file(path: Path) -> bool:
    """Whether the first non-blank line is a BioSyn ``.concept`` line (it has ``||``)."""
    first = next(_lines(path), None)
    if first is None:
        raise BaliInputError(path, "no mentions (only blank lines)")
    return "||" in first[2]


def read_mentions(path: str | Path, stats: dict | None = None) -> pl.DataFrame:
    """BioSyn ``.concept`` or PubTator file -> (doc_id, type, mention, ids list). For a
    PubTator file ``stats`` (if given) gets the reader's counts
    (:func:`bali.text.readers.iter_pubtator`)."""
    p = check_input_file(path)
    if not _is_concept_file(p):
        from bali.text.readers import iter_pubtator

        rows = [{"doc_id": m["doc_id"], "type": m["entity_type"], "mention": m["mention"].strip(),
                 "ids": [canonical_id(i) for raw in m["source_ids"] for i in raw.split("+")
                         if i and i != "-1"]}
                for _, mentions in iter_pubtator(p, stats=stats) for m in mentions]
        return pl.DataFrame(rows, schema=MENTION_SCHEMA)
    rows = []
    for p, lineno, line in _lines(path):
        fields = line.split("||")
        if len(fields) != 5:
            raise BaliInputError(p, "expected 'PMID||start|end||type||mention||ids'", lineno)
        ids = [canonical_id(i) for i in fields[4].replace("+", "|").split("|")
               if i.strip() and i.strip() != "-1"]
        rows.append({"doc_id": fields[0], "type": fields[2], "mention": fields[3].strip(),
                     "ids": ids})
    return pl.DataFrame(rows, schema=MENTION_SCHEMA)


def _match_keys(texts: pl.Series, match: str) -> pl.Series:
    """The refinement's comparison key of each text: itself or its ``str.casefold()``."""
    if match == "exact":
        return texts
    if match == "casefold":
        return pl.Series([t.casefold() for t in texts], dtype=pl.String)
    raise OptionError(f"match must be one of {', '.join(MATCHES)}, not {match!r}")


def refine(test: pl.DataFrame, seen: list[pl.DataFrame], dictionary: pl.DataFrame | None = None,
           *, match: str = "exact", filter_dictionary: bool = False,
           stats: dict | None = None) -> pl.DataFrame:
    """The refined test set of the module docstring. ``stats`` (if given) gets the rows each
    step removed: ``test_without_id``, ``test_seen``, ``test_in_dictionary`` (with
    ``filter_dictionary``), ``test_duplicates``."""
    if filter_dictionary and dictionary is None:
        raise OptionError("filter_dictionary needs the dictionary")
    frame = test.with_columns(key=_match_keys(test["mention"], match))
    steps = [("test_without_id", lambda f: f.filter(pl.col("ids").list.len() > 0))]
    known = pl.concat([s["mention"] for s in seen]) if seen else pl.Series([], dtype=pl.String)
    steps.append(("test_seen", lambda f: f.filter(
        ~pl.col("key").is_in(_match_keys(known, match).unique().implode()))))
    if filter_dictionary:
        names = _match_keys(dictionary["name"], match).unique()
        steps.append(("test_in_dictionary",
                      lambda f: f.filter(~pl.col("key").is_in(names.implode()))))
    steps.append(("test_duplicates",
                  lambda f: f.unique(["key", "ids"], keep="first", maintain_order=True)))
    for name, step in steps:
        before = frame.height
        frame = step(frame)
        _count(stats, name, before - frame.height)
    return frame.drop("key")


@torch.no_grad()
def encode(texts: list[str], model, tokenizer, opts: ELOptions, *, normalize: bool = True,
           progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """L2-normalised (unless ``normalize=False``) ``cls``/``mean`` embeddings of ``texts``
    [N, d] (float32, CPU; the model runs on its own device). Texts are batched in order of
    length (less padding: ~3x faster on short names), rows come back in input order.
    ``progress(n)`` (if given) is told the texts of each batch encoded."""
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
            from bali.model.bali import masked_mean

            vec = masked_mean(hidden, batch["attention_mask"])
        vec = vec.float().cpu()
        out.append(torch.nn.functional.normalize(vec, dim=-1) if normalize else vec)
        if progress is not None:
            progress(len(chunk))
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


def load_dictionary(path: Path | None, seen: list[pl.DataFrame], seen_paths: list[Path],
                    stats: dict | None = None) -> tuple[pl.DataFrame, str]:
    """``(dictionary, note)``: the dictionary file (its counts into ``stats``), or one built
    from the ``seen`` mentions."""
    if path is not None:
        return read_dictionary(path, stats), f"dictionary {path}"
    if not seen:
        raise OptionError("give a dictionary or the seen (train/dev) mentions to build one")
    dictionary = dictionary_from_mentions(seen)
    if dictionary.height == 0:
        raise BaliInputError(seen_paths[0], "no mention with an id to build a dictionary from")
    return dictionary, "dictionary built from the train/dev mentions (no vocabulary given)"


def gold_in_dictionary(mentions: pl.DataFrame, dictionary: pl.DataFrame) -> int:
    """How many ``mentions`` have a gold id that some dictionary name carries (the Acc@k
    ceiling, as a count)."""
    known = {i for ids in dictionary["ids"] for i in ids}
    return sum(bool(known.intersection(ids)) for ids in mentions["ids"])


def linking_items(refined: pl.DataFrame, dictionary: pl.DataFrame,
                  nearest: torch.Tensor) -> dict[str, list]:
    """Per refined mention: ``id`` (``mention||ids``, unique after refinement), ``hit@1``,
    ``hit@5`` (0/1) and ``top1`` (the nearest name), for paired comparisons of two models."""
    dict_ids = dictionary["ids"].to_list()
    ranked = [[dict_ids[c] for c in cand] for cand in nearest.tolist()]
    gold = refined["ids"].to_list()
    names = dictionary["name"].to_list()
    return {"id": [f"{m}||{'|'.join(i)}" for m, i in zip(refined["mention"], gold, strict=True)],
            "hit@1": hits_at_k(gold, ranked, 1), "hit@5": hits_at_k(gold, ranked, 5),
            "top1": [names[c[0]] if len(c) else None for c in nearest.tolist()]}


def linking_accuracy(refined: pl.DataFrame, dictionary: pl.DataFrame,
                     nearest: torch.Tensor) -> dict[str, float]:
    """Acc@1 and Acc@5 of ``nearest`` [mentions, >=5] dictionary rows against the gold ids."""
    items = linking_items(refined, dictionary, nearest)
    n = max(len(items["id"]), 1)
    return {"acc@1": sum(items["hit@1"]) / n, "acc@5": sum(items["hit@5"]) / n}


def dictionary_embeddings(names: list[str], model_dir: Path, model, tokenizer, opts: ELOptions,
                          cache_dir: Path | None = None,
                          progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """:func:`encode` of the dictionary ``names``, cached in ``cache_dir`` (if given) per
    model weights x names x encoding options; ``progress`` as for :func:`encode` (told all
    names at once on a cache hit)."""
    cache = None
    if cache_dir is not None:
        names_digest = hashlib.sha256("\n".join(names).encode()).hexdigest()
        key = hashlib.sha256(json.dumps([file_digest(f) for f in sorted(Path(model_dir).glob(
            "*.safetensors"))] + [names_digest, {k: getattr(opts, k) for k in ENCODING_OPTIONS}]
        ).encode()).hexdigest()
        cache = Path(cache_dir) / f"dict-{key[:24]}.npy"
        if cache.exists():
            if progress is not None:
                progress(len(names))
            return torch.from_numpy(np.load(cache))
    keys = encode(names, model, tokenizer, opts, progress=progress)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, keys.numpy())
    return keys


def evaluate_zeroshot(model_dir: Path, dictionary_path: Path | None, test_path: Path,
                      seen_paths: list[Path], opts: ELOptions, cache_dir: Path | None = None,
                      *, benchmark: str = "el", seed: int = 0,
                      labels: dict[str, str] | None = None) -> dict:
    """Acc@1/Acc@5 of ``model_dir`` on the refined test set, as a results record
    (:mod:`bali.evaluate.results`). Without ``dictionary_path`` the dictionary is built from
    the ``seen`` mentions. Retrieval is deterministic: ``seed`` is recorded only. Logs one
    summary line (:class:`bali.progress.Progress`, counting names and mentions encoded)."""
    from transformers import AutoModel, AutoTokenizer

    from bali.progress import Progress

    if opts.pooling not in ("cls", "mean"):
        raise OptionError(f"pooling must be cls or mean, not {opts.pooling!r}")
    t0 = time.perf_counter()
    seen = [read_mentions(p) for p in seen_paths]
    dict_stats, test_stats, refine_stats = {}, {}, {}
    dictionary, note = load_dictionary(dictionary_path, seen, seen_paths, dict_stats)
    test = read_mentions(test_path, test_stats)
    refined = refine(test, seen, dictionary, match=opts.match,
                     filter_dictionary=opts.filter_dictionary, stats=refine_stats)
    with Progress(f"el_zeroshot {benchmark}", total=dictionary.height + refined.height,
                  unit="text") as bar:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModel.from_pretrained(model_dir).eval()
        keys = dictionary_embeddings(dictionary["name"].to_list(), model_dir, model, tokenizer,
                                     opts, cache_dir, bar.update)
        queries = encode(refined["mention"].to_list(), model, tokenizer, opts,
                         progress=bar.update)
        nearest = top_k(queries, keys, 5, opts.chunk)
        items = linking_items(refined, dictionary, nearest)
        n = max(len(items["id"]), 1)
        bar.set_postfix(f"Acc@1 {sum(items['hit@1']) / n:.4f}, Acc@5 "
                        f"{sum(items['hit@5']) / n:.4f}: {refined.height:,} refined mentions, "
                        f"{dictionary.height:,} dictionary names")
    sources = [*([dictionary_path] if dictionary_path else []), test_path, *seen_paths]
    rec = record(
        task="el_zeroshot", benchmark=benchmark, model=model_dir, seed=seed, labels=labels,
        metrics={"acc@1": sum(items["hit@1"]) / n, "acc@5": sum(items["hit@5"]) / n},
        primary="acc@1",
        options=asdict(opts), data=sources, notes=[note],
        counts={"test_mentions": test.height,
                **({"test_padded_mentions": test_stats["padded_mentions"]} if test_stats else {}),
                **refine_stats, "refined_test_mentions": refined.height,
                "refined_gold_id_in_dictionary": gold_in_dictionary(refined, dictionary),
                "dictionary_names": dictionary.height, **dict_stats},
        started=t0)
    rec["items"] = items  # per-mention scores (bali.report.headline)
    return rec
