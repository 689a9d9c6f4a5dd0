"""The BERN2 ``/plain`` wire format: the server URL, the validation of one annotation and of
one response, and the one conversion of validated annotations to ``mentions`` rows (the
protocol itself is described in :mod:`bali.text.bern2`; the dump reader,
:mod:`bali.text.bern2_dump`, uses the same functions).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from typing import Any

import polars as pl

from bali.io import BaliInputError
from bali.text.schema import MENTIONS

ANNOTATOR = "bern2"
CUI_LESS = "CUI-less"
ANNOTATION_KEYS = ("id", "is_neural_normalized", "mention", "obj", "prob", "span")
MUTATION_KEYS = ("mutationType", "normalizedName", "hgvs")  # kept when they are strings
_ID_SEP = "\x1f"  # joins a mention's ids while its frame is built


class Bern2Error(BaliInputError):
    """Too many documents could not be annotated, the server is failing, or the URL is bad.
    ``str(err)``: ``<url>: <what>`` (one line)."""


class Bern2ResponseError(ValueError):
    """A response or annotation that does not fit the protocol or the sent text (retried)."""


class Bern2SpanError(Bern2ResponseError):
    """An annotation whose span does not fit the text (out of range or another string)."""


def check_url(url: str) -> str:
    """``url`` without a trailing ``/`` if it is ``http(s)://host[:port][/path]``, else a
    one-line Bern2Error (raised before any request is made)."""
    problem = ""
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            problem = ("no http:// or https:// scheme" if not parts.scheme or not parts.netloc
                       else f"scheme {parts.scheme!r} is not http or https")
        elif not parts.hostname:
            problem = "no host"
        elif parts.query or parts.fragment:
            problem = "it has a query or fragment"
        else:
            _ = parts.port  # ValueError if not a number in 0..65535
    except ValueError as err:
        problem = str(err)
    if problem or any(c.isspace() for c in url):
        raise Bern2Error(url or "<empty URL>", f"not a BERN2 server URL ({problem or 'spaces'}); "
                         "expected http(s)://host[:port], e.g. http://localhost:8888")
    return url.rstrip("/")


def flat_ids(ids: Any) -> list[str] | None:
    """BERN2's ``id`` as a flat list of strings (a string, a list, or a nested list; order
    kept, duplicates dropped), or None if it holds anything but strings."""
    out: list[str] = []
    stack = [ids]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            if x not in out:
                out.append(x)
        elif isinstance(x, list):
            stack.extend(reversed(x))
        else:
            return None
    return out


def check_annotation(ann: Any, text: str | None) -> dict[str, Any]:
    """Validate one BERN2 annotation; return it with only the known keys (mutation fields
    kept when they are strings; a nested id list flattened). With ``text``, also check
    ``0 <= begin < end <= len(text)`` and ``text[begin:end] == mention``
    (:class:`Bern2SpanError` if not)."""
    if not isinstance(ann, dict):
        raise Bern2ResponseError(f"annotation is {type(ann).__name__}, expected object")
    mention, obj, span = ann.get("mention"), ann.get("obj"), ann.get("span")
    ids = flat_ids(ann.get("id"))
    if ids is None:
        raise Bern2ResponseError(f"annotation id is not a list of strings: {ann.get('id')!r}")
    if not isinstance(mention, str) or not isinstance(obj, str) or not obj:
        raise Bern2ResponseError("annotation lacks mention or obj")
    if not isinstance(span, dict):
        raise Bern2ResponseError("annotation lacks span")
    begin, end = span.get("begin"), span.get("end")
    if type(begin) is not int or type(end) is not int:
        raise Bern2ResponseError(f"span is not two integers: {span!r}")
    if text is not None:
        if not 0 <= begin < end <= len(text):
            raise Bern2SpanError(f"span {begin}-{end} outside text of length {len(text)}")
        if text[begin:end] != mention:
            raise Bern2SpanError(
                f"span {begin}-{end} is {text[begin:end]!r}, mention is {mention!r}")
    prob = ann.get("prob")
    out = {
        "id": ids,
        "is_neural_normalized": bool(ann.get("is_neural_normalized", False)),
        "mention": mention,
        "obj": obj,
        "prob": float(prob) if isinstance(prob, int | float) else None,
        "span": {"begin": begin, "end": end},
    }
    for key in MUTATION_KEYS:
        if isinstance(ann.get(key), str):
            out[key] = ann[key]
    return out


def parse_response(payload: Any, text: str) -> list[dict[str, Any]]:
    """Validated annotations of one ``/plain`` response to ``text``, or Bern2ResponseError."""
    if not isinstance(payload, dict) or not isinstance(payload.get("annotations"), list):
        raise Bern2ResponseError("response is not an object with an 'annotations' list")
    if "text" in payload and payload["text"] != text:
        raise Bern2ResponseError("response text differs from the sent text")
    return [check_annotation(a, text) for a in payload["annotations"]]


def mentions_frame(docs: Iterable[tuple[str, list[dict[str, Any]]]],
                   annotator: str = ANNOTATOR) -> pl.DataFrame:
    """MENTIONS rows for (doc_id, validated annotations) pairs: entity_type = obj, source_ids
    = ids without ``CUI-less``, cui null, ``annotator``; sorted by doc_id, start, end
    (ties keep BERN2's order)."""
    doc_ids, starts, ends, texts, types, sources = [], [], [], [], [], []
    for doc_id, anns in docs:
        for a in anns:
            doc_ids.append(doc_id)
            starts.append(a["span"]["begin"])
            ends.append(a["span"]["end"])
            texts.append(a["mention"])
            types.append(a["obj"])
            kept = [i for i in a["id"] if i != CUI_LESS and i]
            joined = _ID_SEP.join(kept)
            if kept and joined.count(_ID_SEP) != len(kept) - 1:  # pragma: no cover
                raise Bern2ResponseError(f"an id contains the control character {_ID_SEP!r}")
            sources.append(joined)
    n = len(doc_ids)
    # one joined string per row, split by polars: far faster than a list of Python lists
    ids = pl.Series(sources, dtype=pl.String).str.split(_ID_SEP)
    ids = pl.select(pl.when(pl.lit(ids) == [""]).then(pl.lit([], pl.List(pl.String)))
                    .otherwise(pl.lit(ids))).to_series() if n else ids
    cols = {"doc_id": doc_ids, "start": starts, "end": ends, "mention": texts,
            "entity_type": types, "source_ids": ids, "cui": [None] * n,
            "annotator": [annotator] * n}
    return pl.DataFrame(cols, schema=MENTIONS).sort(
        ["doc_id", "start", "end"], maintain_order=True)
