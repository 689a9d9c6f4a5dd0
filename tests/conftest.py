"""Shared test fixtures: paths to ../shared/data (skip when absent) and RRF writers."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("POLARS_MAX_THREADS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BALI_SHARED_DATA", ROOT.parent / "shared" / "data"))


WORKFLOW_FILES = ("Snakefile", "workflow", "config", "profiles", "envs")


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (Snakefile, rules, configs, profiles, envs) into ``dest``."""
    for name in WORKFLOW_FILES:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest


def job_counts(stdout: str) -> dict[str, int]:
    """``{rule: jobs}`` of the "Job stats" table that ``snakemake -n`` prints."""
    table = stdout.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\S+)\s+(\d+)$", table, re.M)}


@pytest.fixture
def shared_data():
    """Return a function giving a path under ../shared/data, skipping the test if absent."""

    def get(relative: str) -> Path:
        path = SHARED_DATA / relative
        if not path.exists():
            pytest.skip(f"shared data not available: {path}")
        return path

    return get


def rrf_line(values: list[str]) -> str:
    """One RRF record: fields joined by '|', with the trailing '|'."""
    return "|".join(values) + "|\n"


def conso(cui, s, sab="MSH", lat="ENG", ts="P", stt="PF", ispref="Y", aui="A1", tty="PT",
          code="C1", suppress="N"):
    """An MRCONSO record (18 fields) with the fields tests care about."""
    return rrf_line([cui, lat, ts, "L1", stt, "S1", ispref, aui, "", "", "", sab, tty, code, s,
                     "0", suppress, "256"])


def rel(cui1, rel_, cui2, rela="", sab="MSH", suppress="N"):
    """An MRREL record (16 fields)."""
    return rrf_line([cui1, "A1", "SCUI", rel_, cui2, "A2", "SCUI", rela, "R1", "", sab, sab, "",
                     "", suppress, ""])


def sty(cui, tui, name):
    """An MRSTY record (6 fields)."""
    return rrf_line([cui, tui, "A1.1", name, "AT1", "256"])


def write_meta(directory: Path, conso_rows, rel_rows, sty_rows) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "MRCONSO.RRF").write_text("".join(conso_rows), encoding="utf-8")
    (directory / "MRREL.RRF").write_text("".join(rel_rows), encoding="utf-8")
    (directory / "MRSTY.RRF").write_text("".join(sty_rows), encoding="utf-8")
    return directory


def make_tiny_bert(model_dir: Path, texts: list[str], vocab_size: int = 300) -> Path:
    """Save a 2-layer random BERT (hidden 32) with a WordPiece vocabulary trained on ``texts``
    into ``model_dir``: loadable by any ``AutoModelFor*`` and ``AutoTokenizer``."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    wp = BertWordPieceTokenizer(lowercase=True)
    wp.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=1, show_progress=False)
    tok = BertTokenizerFast(tokenizer_object=wp._tokenizer, unk_token="[UNK]",
                            pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
                            mask_token="[MASK]", do_lower_case=True)
    tok.save_pretrained(str(model_dir))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    BertForMaskedLM(cfg).save_pretrained(str(model_dir))
    return model_dir


@pytest.fixture
def tiny_bert(tmp_path):
    """``tiny_bert(texts)`` -> directory of a tiny random BERT (see :func:`make_tiny_bert`)."""
    return lambda texts, vocab_size=300: make_tiny_bert(tmp_path / "tiny-bert", texts, vocab_size)


def text_shard(directory: Path, sentences, deleted: tuple[str, ...] = ()) -> Path:
    """Write a text shard as the text stage leaves it (``sentences.parquet``,
    ``documents.parquet`` with the sentences' doc ids, ``deleted_pmids.txt``); returns it."""
    import polars as pl

    directory.mkdir(parents=True, exist_ok=True)
    sentences.write_parquet(directory / "sentences.parquet")
    docs = sentences.select("doc_id").unique(maintain_order=True)
    docs.with_columns(title=pl.lit("t"), text=pl.lit("t")).write_parquet(
        directory / "documents.parquet")
    (directory / "deleted_pmids.txt").write_text("".join(f"{d}\n" for d in deleted))
    return directory


def mention_corpus(concepts: dict[str, list[str]], filler: list[str], n: int,
                   per_sentence=lambda rnd: rnd.randint(1, 3), seed: int = 0):
    """``n`` one-sentence documents ``d<i>``: each names ``per_sentence(rnd)`` concepts (a
    random name each, after three filler words), with the mentions' offsets (``sentences``
    schema)."""
    import random

    import polars as pl

    from bali.text.schema import SENTENCES

    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        words, mentions = [], []
        for cui in rnd.sample(sorted(concepts), per_sentence(rnd)):
            words += rnd.sample(filler, 3)
            start = len(" ".join(words)) + 1
            name = rnd.choice(concepts[cui])
            words.append(name)
            mentions.append({"start": start, "end": start + len(name), "cui": cui})
        text = " ".join(words) + " ."
        rows.append({"doc_id": f"d{i}", "sentence_id": 0, "start": 0, "end": len(text),
                     "text": text, "mentions": mentions})
    return pl.DataFrame(rows, schema=SENTENCES)
