"""BERN2's precomputed PubMed annotations ("the dump"): one file -> documents and mentions.

Layout: BERN2's annotations of the PubMed 2022 baseline come as one JSON-lines file per
baseline file (``pubmed22n0001.json`` ... ``pubmed22n1114.json``, gzip allowed); each line is
one document in the ``/plain`` response format::

    {"pmid": "1", "text": "<title> <abstract>", "annotations": [<annotation>, ...], ...}

``_id`` or ``sourceid`` are accepted for ``pmid``; an optional ``title`` that starts ``text``
becomes the document's title (else the title is empty and all of ``text`` is the abstract);
other keys (``timestamp``, ``project``, ...) are ignored. An annotation is a ``/plain``
annotation (``id`` a list, possibly nested; ``CUI-less`` for unnormalised; mutations add
``mutationType``/``normalizedName``/``hgvs``), validated and converted by the BERN2 client's
own :func:`~bali.text.bern2.check_annotation` and :func:`~bali.text.bern2.mentions_frame`.

An annotation whose span does not fit the text (outside it, or ``text[begin:end] !=
mention``) is dropped, counted (``bad_spans``) and logged with its ``file:line``; so is a
malformed one (``bad_annotations``). Nothing that fails the check is kept. A line that is
not a JSON object with a pmid and a text is an error naming file and line. A pmid on several
lines keeps its last line (``duplicate_ids_replaced``).
"""

from __future__ import annotations

import gzip
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from bali.io import BaliInputError, check_input_file, first_non_utf8_line, json_objects
from bali.text.bern2 import (
    CUI_LESS,
    Bern2ResponseError,
    Bern2SpanError,
    check_annotation,
    mentions_frame,
)
from bali.text.schema import DOCUMENTS, make_document

log = logging.getLogger(__name__)

FORMAT = "bern2-dump"
ANNOTATOR = "bern2-dump"
MAX_LOGGED = 20  # dropped annotations logged one by one per file; the rest are summed up
MAX_EXAMPLES = 10  # ``file:line: why`` examples kept in the stats


def new_stats() -> dict[str, Any]:
    """The counters :func:`iter_bern2_dump` fills."""
    return {"lines": 0, "documents": 0, "annotations": 0, "mentions": 0, "bad_spans": 0,
            "bad_annotations": 0, "cui_less": 0, "nested_ids": 0, "mutations": 0,
            "duplicate_ids_replaced": 0, "dropped_examples": []}


def _open(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _document(path: Path, lineno: int, obj: dict) -> dict[str, str]:
    pmid = next((obj[k] for k in ("pmid", "_id", "sourceid") if obj.get(k) not in (None, "")),
                None)
    if pmid is None:
        raise BaliInputError(path, "object has no pmid", lineno)
    text = obj.get("text")
    if not isinstance(text, str):
        raise BaliInputError(path, "object has no text string", lineno)
    title = obj.get("title")
    if isinstance(title, str) and title and text.startswith(title) and (
            len(text) == len(title) or text[len(title)] == " "):
        return make_document(str(pmid), title, text[len(title) + 1:])
    return {"doc_id": str(pmid), "title": "", "text": text}


def iter_bern2_dump(path: str | Path, stats: dict[str, Any] | None = None,
                    annotations: bool = True) -> Iterator[tuple[dict[str, str], list[dict]]]:
    """Stream (documents row, validated annotations) of one dump file, in file order.

    ``stats`` (see :func:`new_stats`; ``documents`` is left to the caller) is filled as lines
    are read. With ``annotations=False``
    the annotations are not checked and an empty list is yielded (``bali text read``).
    """
    p = check_input_file(path)
    counts = stats if stats is not None else new_stats()
    for key, value in new_stats().items():
        counts.setdefault(key, value)
    dropped = 0
    try:
        with _open(p) as fh:
            for lineno, obj in json_objects(p, fh):
                doc = _document(p, lineno, obj)
                counts["lines"] += 1
                if not annotations:
                    yield doc, []
                    continue
                raw = obj.get("annotations", [])
                if not isinstance(raw, list):
                    raise BaliInputError(p, "'annotations' is not a list", lineno)
                kept = []
                for k, ann in enumerate(raw):
                    try:
                        a = check_annotation(ann, doc["text"])
                    except Bern2ResponseError as err:
                        key = "bad_spans" if isinstance(err, Bern2SpanError) else "bad_annotations"
                        counts[key] += 1
                        dropped += 1
                        where = f"{p}:{lineno}: annotation {k} of {doc['doc_id']}"
                        if dropped <= MAX_LOGGED:
                            log.warning("%s dropped: %s", where, err)
                        if len(counts["dropped_examples"]) < MAX_EXAMPLES:
                            counts["dropped_examples"].append(f"{where}: {err}")
                        continue
                    if isinstance(ann.get("id"), list) and any(
                            isinstance(i, list) for i in ann["id"]):
                        counts["nested_ids"] += 1
                    if a["id"] == [CUI_LESS] or not a["id"]:
                        counts["cui_less"] += 1
                    if a["obj"] == "mutation":
                        counts["mutations"] += 1
                    kept.append(a)
                counts["annotations"] += len(raw)
                counts["mentions"] += len(kept)
                yield doc, kept
    except UnicodeDecodeError as err:
        raise BaliInputError(p, "bytes that are not UTF-8", first_non_utf8_line(p)) from err
    if dropped > MAX_LOGGED:
        log.warning("%s: %d annotations dropped in all (%d bad spans, %d malformed)", p,
                    dropped, counts["bad_spans"], counts["bad_annotations"])


def read_bern2_dump(path: str | Path) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """(documents, mentions, stats) of one dump file: DOCUMENTS rows in file order (a pmid's
    last line wins), MENTIONS rows (annotator ``bern2-dump``, cui null; map them with
    :func:`~bali.text.normalize.normalize_mentions`) and the counts of :func:`new_stats`."""
    stats = new_stats()
    by_doc: dict[str, tuple[dict[str, str], list[dict]]] = {}
    for doc, anns in iter_bern2_dump(path, stats):
        if doc["doc_id"] in by_doc:
            stats["duplicate_ids_replaced"] += 1
            del by_doc[doc["doc_id"]]  # re-insert: the last line's position
        by_doc[doc["doc_id"]] = (doc, anns)
    documents = pl.DataFrame([d for d, _ in by_doc.values()], schema=DOCUMENTS)
    mentions = mentions_frame(((i, anns) for i, (_, anns) in by_doc.items()), ANNOTATOR)
    stats["documents"], stats["mentions"] = documents.height, mentions.height
    return documents, mentions, stats
