"""Tables of the text stage (Parquet).

documents  doc_id: str (PMID or corpus id), title: str, text: str
           -- ``text`` is ``title + " " + abstract`` (the PubTator convention), so the title is
           ``text[:len(title)]`` and every offset below is into ``text``.
mentions   doc_id, start: i32, end: i32 (exclusive character offsets into ``text``),
           mention: str (== text[start:end]), entity_type: str, source_ids: list[str]
           (ids as the annotator gave them, e.g. ``mesh:D003920``), cui: str | null (KG node;
           one row per mapped node, null when unmapped), annotator: str
sentences  doc_id, sentence_id: i32 (0 = title), start: i32, end: i32, text: str,
           mentions: list[struct{start: i32, end: i32, cui: str}] (sentence-local offsets,
           mapped mentions only)
"""

from __future__ import annotations

import polars as pl

DOCUMENTS = {"doc_id": pl.String(), "title": pl.String(), "text": pl.String()}
MENTIONS = {
    "doc_id": pl.String(),
    "start": pl.Int32(),
    "end": pl.Int32(),
    "mention": pl.String(),
    "entity_type": pl.String(),
    "source_ids": pl.List(pl.String()),
    "cui": pl.String(),
    "annotator": pl.String(),
}
SENTENCE_MENTION = pl.Struct({"start": pl.Int32(), "end": pl.Int32(), "cui": pl.String()})
SENTENCES = {
    "doc_id": pl.String(),
    "sentence_id": pl.Int32(),
    "start": pl.Int32(),
    "end": pl.Int32(),
    "text": pl.String(),
    "mentions": pl.List(SENTENCE_MENTION),
}


def make_document(doc_id: str, title: str, abstract: str) -> dict[str, str]:
    """A documents row: ``text = title + " " + abstract`` (either part may be empty; no
    stripping here, so PubTator offsets stay valid)."""
    text = f"{title} {abstract}" if title and abstract else title or abstract
    return {"doc_id": doc_id, "title": title, "text": text}
