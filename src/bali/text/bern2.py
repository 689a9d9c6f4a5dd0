"""BERN2 REST client: documents -> ``mentions`` (annotator ``bern2``), resumable.

Protocol: ``POST {url}/plain`` with ``{"text": "..."}`` answers
``{"annotations": [{"id": [...], "is_neural_normalized": bool, "mention": str, "obj": str,
"prob": float, "span": {"begin": int, "end": int}}, ...], "text": str, "timestamp": str}``;
``id == ["CUI-less"]`` means unnormalised; mutations add ``mutationType``/``normalizedName``
(and in some versions ``hgvs``). A response is accepted only if it has that shape, every span
lies in the sent text with ``text[begin:end] == mention``, and its ``text`` (when present)
equals the sent text. Anything else is retried. :func:`check_annotation` and
:func:`mentions_frame` are the one conversion of ``/plain`` annotations to ``mentions`` rows;
the dump reader (:mod:`bali.text.bern2_dump`) uses them too.

The URL is checked before the first request (:func:`check_url`: ``http(s)://host[:port]``).

Retries: connection errors, timeouts, HTTP 429 and 5xx, malformed or mismatching responses,
up to ``max_retries`` times with backoff ``min(backoff_max_s, backoff_s * 2**attempt)`` plus up
to 10 % jitter (RNG seeded by the doc id, so runs are reproducible). Other 4xx are final. A
document that exhausts its retries is listed in :attr:`Bern2Result.failed`, never dropped.

Circuit breaker: ``breaker_failures`` consecutive requests (over all workers, from at least two
documents, no good answer in between) that end in a connection error, a timeout or a 5xx
answer stop the run: no new requests, and in-flight documents get :data:`STOP_GRACE_S` to
finish before they are abandoned. :attr:`Bern2Result.stop_reason` names the cause and
:func:`check_failed_share` raises it as one line. A request error that no retry can fix
(``InvalidURL``, ``InvalidSchema``, ...) stops the run at once. With the defaults (4 workers,
backoff from 1 s, 10 failures, connect timeout 5 s) a dead server stops the run in about
3 s (refused connections or 5xx) or 20 s (connections that time out).

Ctrl-C (SIGINT, when run in the main thread) sets the same stop: the run ends within about
a second with the cache flushed and :attr:`Bern2Result.interrupted` set; no
``KeyboardInterrupt`` is raised. Worker threads are daemons, so an abandoned request (a
hanging server) never holds up the exit.

Cache (append-only JSON lines, UTF-8, one line per finished document)::

    {"doc_id": "123", "sha1": "<sha1 of the text, hex>", "annotations": [<BERN2 annotation>]}

Only the calling thread writes it (one ``write`` per line, flushed each line, fsynced every
:data:`FSYNC_EVERY` lines and at the end), so lines never interleave. A document whose
``(doc_id, sha1)`` is cached is never requested again. On start a truncated or unparsable
*last* line (a writer killed mid-line) is dropped and cut from the file; a bad line anywhere
else raises :class:`~bali.io.BaliInputError` naming file and line. The cache is locked
(``flock``) while a run appends to it.

Layout: this module holds the options, the result, the cache and the driver;
:mod:`~bali.text.bern2_protocol` the wire format, :mod:`~bali.text.bern2_client` the HTTP
side (retries, breaker, Ctrl-C), :mod:`~bali.text.bern2_runner` the request loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl

from bali.errors import OptionError
from bali.io import BaliInputError
from bali.text.bern2_client import JITTER, Breaker, SigintStop
from bali.text.bern2_protocol import (
    ANNOTATION_KEYS,
    ANNOTATOR,
    CUI_LESS,
    MUTATION_KEYS,
    Bern2Error,
    Bern2ResponseError,
    Bern2SpanError,
    check_annotation,
    check_url,
    flat_ids,
    mentions_frame,
    parse_response,
)
from bali.text.bern2_runner import POLL_S, STOP_GRACE_S, Todo, run_requests

try:  # POSIX only; elsewhere the cache is simply not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ANNOTATION_KEYS", "ANNOTATOR", "CUI_LESS", "FSYNC_EVERY", "JITTER", "MUTATION_KEYS",
    "POLL_S", "STOP_GRACE_S", "Bern2Error", "Bern2Options", "Bern2ResponseError",
    "Bern2Result", "Bern2SpanError", "annotate_bern2", "check_annotation",
    "check_failed_share", "check_url", "flat_ids", "mentions_frame", "parse_response",
    "read_cache", "text_sha1",
]

log = logging.getLogger(__name__)

FSYNC_EVERY = 256


@dataclass(frozen=True)
class Bern2Options:
    """Settings of :func:`annotate_bern2` (the server URL comes from config or BALI_BERN2_URL,
    resolved by the caller)."""

    url: str = field(
        default="http://localhost:8888", metadata={"help": "BERN2 server base URL"})
    workers: int = field(default=4, metadata={"help": "concurrent requests"})
    timeout_s: float = field(
        default=60.0, metadata={"help": "per-request read timeout (s)"})
    connect_timeout_s: float = field(
        default=5.0, metadata={"help": "per-request connect timeout (s)"})
    max_retries: int = field(
        default=5, metadata={"help": "retries per document before it counts as failed"})
    backoff_s: float = field(
        default=1.0, metadata={"help": "first retry delay (s); doubles per attempt"})
    backoff_max_s: float = field(default=30.0, metadata={"help": "cap of the retry delay (s)"})
    breaker_failures: int = field(
        default=10,
        metadata={"help": "consecutive connection errors, timeouts or 5xx answers (from 2+ "
                  "documents) that stop the run; 0 = never stop"})
    max_failed_share: float = field(
        default=0.01,
        metadata={"help": "largest share of documents allowed to stay unannotated"})


@dataclass
class Bern2Result:
    """Outcome of :func:`annotate_bern2`.

    ``mentions`` has the :data:`~bali.text.schema.MENTIONS` schema (cached and fresh documents,
    sorted by doc_id, start, end). ``done``: annotated in this run (blank texts count here
    without a request); ``cached``: taken from the cache; ``failed``: ids that exhausted their
    retries or got a final 4xx (``errors`` holds the last error of each); ``skipped``: ids not
    annotated because the run stopped first (``stop`` set, Ctrl-C, or the circuit breaker).
    :attr:`missing` is both. ``stop_reason``: why the breaker stopped the run ("" if it did
    not); ``interrupted``: Ctrl-C. ``requests``/``retries``: HTTP attempts made in this run.
    """

    mentions: pl.DataFrame
    done: int
    cached: int
    failed: list[str]
    skipped: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    elapsed_s: float = 0.0
    stop_reason: str = ""
    interrupted: bool = False

    @property
    def n_documents(self) -> int:
        return self.done + self.cached + len(self.failed) + len(self.skipped)

    @property
    def missing(self) -> list[str]:
        """Every document id not annotated (failed, then skipped)."""
        return self.failed + self.skipped

    def report(self) -> dict[str, Any]:
        """Counts for logs and run records (JSON-serialisable)."""
        return {
            "documents": self.n_documents,
            "done": self.done,
            "cached": self.cached,
            "failed": len(self.failed),
            "skipped": len(self.skipped),
            "mentions": self.mentions.height,
            "requests": self.requests,
            "retries": self.retries,
            "elapsed_s": round(self.elapsed_s, 3),
            "docs_per_s": round(self.done / self.elapsed_s, 2) if self.elapsed_s > 0 else None,
            "stop_reason": self.stop_reason,
            "interrupted": self.interrupted,
            "failed_ids": self.failed[:20],
            "errors": dict(list(self.errors.items())[:20]),
        }


def text_sha1(text: str) -> str:
    """Hex SHA-1 of the UTF-8 text (the cache key beside the doc id)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- cache


@dataclass
class _CacheEntry:
    sha1: str
    annotations: list[dict[str, Any]]
    line: int


def _parse_cache_line(raw: bytes) -> tuple[str, _CacheEntry]:
    obj = json.loads(raw.decode("utf-8"))
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    doc_id, sha1, anns = obj.get("doc_id"), obj.get("sha1"), obj.get("annotations")
    if not isinstance(doc_id, str) or not isinstance(sha1, str) or len(sha1) != 40:
        raise ValueError("lacks doc_id or sha1")
    if not isinstance(anns, list):
        raise ValueError("lacks an annotations list")
    return doc_id, _CacheEntry(sha1, [check_annotation(a, None) for a in anns], 0)


def read_cache(path: Path, *, repair: bool = True) -> dict[str, _CacheEntry]:
    """Read the cache: doc_id -> entry (a later line for the same doc_id wins). A truncated or
    bad last line is ignored and, with ``repair``, cut from the file; a bad line elsewhere
    raises BaliInputError(path, ..., line)."""
    entries: dict[str, _CacheEntry] = {}
    if not path.exists():
        return entries
    offset = 0  # start of the current line
    with open(path, "rb") as fh:
        raw = fh.readline()
        lineno = 1
        while raw:
            nxt = fh.readline()  # look ahead: is ``raw`` the last line?
            try:
                if not raw.endswith(b"\n"):
                    raise ValueError("truncated line")
                doc_id, entry = _parse_cache_line(raw)
            except (ValueError, UnicodeDecodeError, Bern2ResponseError) as err:
                if nxt:
                    raise BaliInputError(
                        path, f"corrupt BERN2 cache line ({err})", line=lineno) from err
                log.warning("%s:%d: ignoring truncated/corrupt last cache line", path, lineno)
                if repair:
                    with open(path, "r+b") as wfh:
                        wfh.truncate(offset)
                        os.fsync(wfh.fileno())
                break
            entry.line = lineno
            entries[doc_id] = entry
            offset += len(raw)
            raw, lineno = nxt, lineno + 1
    return entries


@contextlib.contextmanager
def _open_cache(path: Path) -> Iterator[BinaryIO]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "ab")  # noqa: SIM115 - closed below
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as err:
                raise BaliInputError(path, "BERN2 cache is in use by another run") from err
        yield fh
    finally:
        with contextlib.suppress(OSError):
            fh.flush()
            os.fsync(fh.fileno())
        fh.close()


def _cache_line(doc_id: str, sha1: str, annotations: list[dict[str, Any]]) -> bytes:
    obj = {"doc_id": doc_id, "sha1": sha1, "annotations": annotations}
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


class _CacheWriter:
    """Appends finished documents to the open cache: one ``write`` per line, flushed at once,
    fsynced every :data:`FSYNC_EVERY` lines (and by :func:`_open_cache` at the end)."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.unwritten = fh, 0

    def append(self, doc_id: str, sha1: str, annotations: list[dict[str, Any]]) -> None:
        self.fh.write(_cache_line(doc_id, sha1, annotations))
        self.fh.flush()
        self.unwritten += 1
        if self.unwritten >= FSYNC_EVERY:
            os.fsync(self.fh.fileno())
            self.unwritten = 0


def _split_cached(cache_path: Path, ids: list[str], texts: list[str],
                  ) -> tuple[dict[str, list[dict[str, Any]]], list[Todo]]:
    """(doc_id -> annotations of the documents whose ``(doc_id, sha1)`` is cached, the
    (doc_id, text, sha1) still to request). Reads the cache (call it under the lock: it may
    cut a bad last line); cached annotations that do not fit their text are a
    BaliInputError naming the cache line."""
    cache = read_cache(cache_path)
    by_doc: dict[str, list[dict[str, Any]]] = {}
    todo: list[Todo] = []
    for doc_id, text in zip(ids, texts, strict=True):
        sha1 = text_sha1(text)
        entry = cache.get(doc_id)
        if entry is not None and entry.sha1 == sha1:
            try:
                by_doc[doc_id] = [check_annotation(a, text) for a in entry.annotations]
            except Bern2ResponseError as err:
                raise BaliInputError(
                    cache_path, f"cached annotations of {doc_id} do not fit its text ({err})",
                    line=entry.line) from err
        else:
            todo.append((doc_id, text, sha1))
    return by_doc, todo


# --------------------------------------------------------------------------- driver


def _check_options(opts: Bern2Options) -> None:
    """OptionError unless workers >= 1, max_retries >= 0, both timeouts > 0 and
    breaker_failures >= 0."""
    if opts.workers < 1 or opts.max_retries < 0 or opts.timeout_s <= 0 \
            or opts.connect_timeout_s <= 0 or opts.breaker_failures < 0:
        raise OptionError("Bern2Options: need workers >= 1, max_retries >= 0, timeout_s > 0, "
                         "connect_timeout_s > 0, breaker_failures >= 0")


def _check_documents(documents: pl.DataFrame) -> None:
    """ValueError unless ``documents`` has non-null ``doc_id`` and ``text`` columns and
    unique doc ids."""
    missing = [c for c in ("doc_id", "text") if c not in documents.columns]
    if missing:
        raise ValueError(f"documents lack column(s) {', '.join(missing)}")
    if documents["doc_id"].null_count() or documents["text"].null_count():
        raise ValueError("documents have null doc_id or text")
    if documents["doc_id"].n_unique() != documents.height:
        dup = documents.filter(pl.col("doc_id").is_duplicated())["doc_id"][0]
        raise ValueError(f"duplicate doc_id {dup!r} in documents")


def annotate_bern2(
    documents: pl.DataFrame,
    cache_path: str | os.PathLike,
    opts: Bern2Options,
    progress: bool = True,
    *,
    stop: threading.Event | None = None,
) -> Bern2Result:
    """Annotate ``documents`` (doc_id, text) with BERN2, ``opts.workers`` requests at a time.

    Cached documents are not requested; each newly finished document is appended to
    ``cache_path`` at once, so an interrupted run resumes where it stopped. Setting ``stop``
    (or Ctrl-C, or the circuit breaker) ends the run early: no new requests, in-flight
    documents have :data:`STOP_GRACE_S` to finish and be cached, the rest are listed in
    ``skipped``. Call :func:`check_failed_share` on the result.
    """
    t0 = time.perf_counter()
    _check_options(opts)
    check_url(opts.url)
    _check_documents(documents)
    cache_path = Path(cache_path)
    stop = stop or threading.Event()
    breaker = Breaker(opts.breaker_failures, stop)
    ids: list[str] = documents["doc_id"].to_list()
    texts: list[str] = documents["text"].to_list()
    with _open_cache(cache_path) as fh:
        by_doc, todo = _split_cached(cache_path, ids, texts)
        n_cached = len(by_doc)
        if n_cached:
            log.info("BERN2: %d of %d documents cached in %s", n_cached, len(ids), cache_path)
        with SigintStop(stop) as sigint:
            counts = run_requests(todo, _CacheWriter(fh).append, opts, stop, breaker, by_doc,
                                  progress, n_cached, len(ids))
    if sigint.hit:
        log.warning("BERN2: interrupted (Ctrl-C); %d documents annotated and cached in %s",
                    n_cached + counts["done"], cache_path)
    mentions = mentions_frame((i, by_doc[i]) for i in ids if i in by_doc)
    result = Bern2Result(mentions=mentions, cached=n_cached, elapsed_s=time.perf_counter() - t0,
                         stop_reason=breaker.reason, interrupted=sigint.hit, **counts)
    log.info("BERN2: %s", {k: v for k, v in result.report().items()
                            if k not in ("failed_ids", "errors")})
    return result


def check_failed_share(result: Bern2Result, n_docs: int, opts: Bern2Options) -> None:
    """Raise Bern2Error if the circuit breaker stopped the run, or if more than
    ``opts.max_failed_share`` of ``n_docs`` documents stayed unannotated (failed or skipped)."""
    missing = result.missing
    if result.stop_reason:
        raise Bern2Error(
            opts.url, f"BERN2 server {result.stop_reason}; {len(missing)} of {n_docs} documents "
            "not annotated; finished documents are cached, rerun to resume")
    if not missing or n_docs <= 0:
        return
    share = len(missing) / n_docs
    if share > opts.max_failed_share:
        first = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise Bern2Error(
            opts.url,
            f"{len(missing)} of {n_docs} documents not annotated ({share:.2%} > "
            f"max_failed_share {opts.max_failed_share:.2%}): {first}; rerun to retry them "
            "(finished documents are cached)")
