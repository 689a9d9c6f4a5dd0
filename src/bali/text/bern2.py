"""BERN2 REST client: documents -> ``mentions`` (annotator ``bern2``), resumable.

Protocol: ``POST {url}/plain`` with ``{"text": "..."}`` answers
``{"annotations": [{"id": [...], "is_neural_normalized": bool, "mention": str, "obj": str,
"prob": float, "span": {"begin": int, "end": int}}, ...], "text": str, "timestamp": str}``;
``id == ["CUI-less"]`` means unnormalised. A response is accepted only if it has that shape,
every span lies in the sent text with ``text[begin:end] == mention``, and its ``text`` (when
present) equals the sent text. Anything else is retried.

Retries: connection errors, timeouts, HTTP 429 and 5xx, malformed or mismatching responses,
up to ``max_retries`` times with backoff ``min(backoff_max_s, backoff_s * 2**attempt)`` plus up
to 10 % jitter (RNG seeded by the doc id, so runs are reproducible). Other 4xx are final. A
document that exhausts its retries is listed in :attr:`Bern2Result.failed`, never dropped.

Cache (append-only JSON lines, UTF-8, one line per finished document)::

    {"doc_id": "123", "sha1": "<sha1 of the text, hex>", "annotations": [<BERN2 annotation>]}

Only the calling thread writes it (one ``write`` per line, flushed each line, fsynced every
:data:`FSYNC_EVERY` lines and at the end), so lines never interleave. A document whose
``(doc_id, sha1)`` is cached is never requested again. On start a truncated or unparsable
*last* line (a writer killed mid-line) is dropped and cut from the file; a bad line anywhere
else raises :class:`~bali.io.BaliInputError` naming file and line. The cache is locked
(``flock``) while a run appends to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import sys
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl
import requests
from requests.adapters import HTTPAdapter
from tqdm import tqdm

from bali.io import BaliInputError
from bali.text.schema import MENTIONS

try:  # POSIX only; elsewhere the cache is simply not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

ANNOTATOR = "bern2"
CUI_LESS = "CUI-less"
FSYNC_EVERY = 256
JITTER = 0.1
ANNOTATION_KEYS = ("id", "is_neural_normalized", "mention", "obj", "prob", "span")


@dataclass(frozen=True)
class Bern2Options:
    """Settings of :func:`annotate_bern2` (the server URL comes from config or BALI_BERN2_URL,
    resolved by the caller)."""

    url: str = field(
        default="http://localhost:8888", metadata={"help": "BERN2 server base URL"})
    workers: int = field(default=4, metadata={"help": "concurrent requests"})
    timeout_s: float = field(
        default=60.0, metadata={"help": "per-request connect and read timeout (s)"})
    max_retries: int = field(
        default=5, metadata={"help": "retries per document before it counts as failed"})
    backoff_s: float = field(
        default=1.0, metadata={"help": "first retry delay (s); doubles per attempt"})
    backoff_max_s: float = field(default=30.0, metadata={"help": "cap of the retry delay (s)"})
    max_failed_share: float = field(
        default=0.01,
        metadata={"help": "largest share of documents allowed to stay unannotated"})


class Bern2Error(BaliInputError):
    """Too many documents could not be annotated. ``str(err)``: ``<url>: <what>``."""


class Bern2ResponseError(ValueError):
    """A response that does not fit the protocol or the sent text (retried)."""


@dataclass
class Bern2Result:
    """Outcome of :func:`annotate_bern2`.

    ``mentions`` has the :data:`~bali.text.schema.MENTIONS` schema (cached and fresh documents,
    sorted by doc_id, start, end). ``done``: annotated in this run (blank texts count here
    without a request); ``cached``: taken from the cache; ``failed``: ids that exhausted their
    retries or got a final 4xx (``errors`` holds the last error of each); ``skipped``: ids not
    attempted because ``stop`` was set or the server refused connections for a long streak
    of documents. ``requests``/``retries``: HTTP attempts made in this run.
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

    @property
    def n_documents(self) -> int:
        return self.done + self.cached + len(self.failed) + len(self.skipped)

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
            "failed_ids": self.failed[:20],
            "errors": dict(list(self.errors.items())[:20]),
        }


def text_sha1(text: str) -> str:
    """Hex SHA-1 of the UTF-8 text (the cache key beside the doc id)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def check_annotation(ann: Any, text: str | None) -> dict[str, Any]:
    """Validate one BERN2 annotation; return it with only the known keys. With ``text``, also
    check ``0 <= begin < end <= len(text)`` and ``text[begin:end] == mention``."""
    if not isinstance(ann, dict):
        raise Bern2ResponseError(f"annotation is {type(ann).__name__}, expected object")
    ids, mention, obj, span = ann.get("id"), ann.get("mention"), ann.get("obj"), ann.get("span")
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise Bern2ResponseError(f"annotation id is not a list of strings: {ids!r}")
    if not isinstance(mention, str) or not isinstance(obj, str) or not obj:
        raise Bern2ResponseError("annotation lacks mention or obj")
    if not isinstance(span, dict):
        raise Bern2ResponseError("annotation lacks span")
    begin, end = span.get("begin"), span.get("end")
    if type(begin) is not int or type(end) is not int:
        raise Bern2ResponseError(f"span is not two integers: {span!r}")
    if text is not None:
        if not 0 <= begin < end <= len(text):
            raise Bern2ResponseError(f"span {begin}-{end} outside text of length {len(text)}")
        if text[begin:end] != mention:
            raise Bern2ResponseError(
                f"span {begin}-{end} is {text[begin:end]!r}, mention is {mention!r}")
    prob = ann.get("prob")
    return {
        "id": ids,
        "is_neural_normalized": bool(ann.get("is_neural_normalized", False)),
        "mention": mention,
        "obj": obj,
        "prob": float(prob) if isinstance(prob, int | float) else None,
        "span": {"begin": begin, "end": end},
    }


def parse_response(payload: Any, text: str) -> list[dict[str, Any]]:
    """Validated annotations of one ``/plain`` response to ``text``, or Bern2ResponseError."""
    if not isinstance(payload, dict) or not isinstance(payload.get("annotations"), list):
        raise Bern2ResponseError("response is not an object with an 'annotations' list")
    if "text" in payload and payload["text"] != text:
        raise Bern2ResponseError("response text differs from the sent text")
    return [check_annotation(a, text) for a in payload["annotations"]]


def mentions_frame(docs: Iterable[tuple[str, list[dict[str, Any]]]]) -> pl.DataFrame:
    """MENTIONS rows for (doc_id, validated annotations) pairs: entity_type = obj, source_ids
    = ids without ``CUI-less``, cui null, annotator ``bern2``; sorted by doc_id, start, end
    (ties keep BERN2's order)."""
    doc_ids, starts, ends, texts, types, sources = [], [], [], [], [], []
    for doc_id, anns in docs:
        for a in anns:
            doc_ids.append(doc_id)
            starts.append(a["span"]["begin"])
            ends.append(a["span"]["end"])
            texts.append(a["mention"])
            types.append(a["obj"])
            sources.append([i for i in a["id"] if i != CUI_LESS])
    n = len(doc_ids)
    cols = {"doc_id": doc_ids, "start": starts, "end": ends, "mention": texts,
            "entity_type": types, "source_ids": sources, "cui": [None] * n,
            "annotator": [ANNOTATOR] * n}
    return pl.DataFrame(cols, schema=MENTIONS).sort(
        ["doc_id", "start", "end"], maintain_order=True)


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


# --------------------------------------------------------------------------- requests


@dataclass
class _Outcome:
    doc_id: str
    annotations: list[dict[str, Any]] | None  # None: failed or stopped
    error: str = ""
    requests: int = 0
    unreachable: bool = False  # last error was a connection error or timeout
    stopped: bool = False


class _Client:
    """Per-thread sessions and the retry loop for one document."""

    def __init__(self, opts: Bern2Options, stop: threading.Event):
        self.opts, self.stop = opts, stop
        self.endpoint = opts.url.rstrip("/") + "/plain"
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            self._local.session = s
            with self._lock:
                self._sessions.append(s)
        return s

    def close(self) -> None:
        with self._lock:
            for s in self._sessions:
                s.close()
            self._sessions.clear()

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        d = min(self.opts.backoff_max_s, self.opts.backoff_s * 2**attempt)
        if retry_after is not None:
            d = max(d, min(retry_after, self.opts.backoff_max_s))
        return d + d * JITTER * rng.random()

    def annotate(self, doc_id: str, text: str) -> _Outcome:
        out = _Outcome(doc_id, None)
        if not text.strip():
            out.annotations = []
            return out
        rng = random.Random(zlib.crc32(doc_id.encode("utf-8")))
        for attempt in range(self.opts.max_retries + 1):
            if self.stop.is_set():
                out.stopped = True
                return out
            out.requests += 1
            retry_after = None
            try:
                resp = self.session().post(
                    self.endpoint, json={"text": text}, timeout=self.opts.timeout_s)
            except (requests.ConnectionError, requests.Timeout) as err:
                out.error, out.unreachable = f"{type(err).__name__}: {err}", True
            except requests.RequestException as err:
                out.error, out.unreachable = f"{type(err).__name__}: {err}", False
            else:
                out.unreachable = False
                status = resp.status_code
                if status == 200:
                    try:
                        out.annotations = parse_response(resp.json(), text)
                        return out
                    except ValueError as err:  # JSONDecodeError and Bern2ResponseError
                        out.error = f"bad response: {err}"
                elif 400 <= status < 500 and status != 429:
                    out.error = f"HTTP {status} (not retried): {resp.text[:200]}"
                    return out
                else:
                    out.error = f"HTTP {status}"
                    with contextlib.suppress(ValueError, TypeError):
                        retry_after = float(resp.headers.get("Retry-After"))
            if attempt < self.opts.max_retries and self.stop.wait(
                    self.delay(attempt, rng, retry_after)):
                out.stopped = True
                return out
        return out


# --------------------------------------------------------------------------- driver


def _check_documents(documents: pl.DataFrame) -> None:
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
    ends the run early: no new requests, in-flight documents finish and are cached, the rest
    are listed in ``skipped``. Call :func:`check_failed_share` on the result.
    """
    t0 = time.perf_counter()
    if opts.workers < 1 or opts.max_retries < 0 or opts.timeout_s <= 0:
        raise ValueError("Bern2Options: need workers >= 1, max_retries >= 0, timeout_s > 0")
    _check_documents(documents)
    cache_path = Path(cache_path)
    stop = stop or threading.Event()
    ids: list[str] = documents["doc_id"].to_list()
    texts: list[str] = documents["text"].to_list()

    by_doc: dict[str, list[dict[str, Any]]] = {}
    todo: list[tuple[str, str, str]] = []
    with _open_cache(cache_path) as fh:
        cache = read_cache(cache_path)  # under the lock; may cut a bad last line
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
        del cache
        n_cached = len(by_doc)
        if n_cached:
            log.info("BERN2: %d of %d documents cached in %s", n_cached, len(ids), cache_path)
        counts = _run_requests(todo, fh, opts, stop, by_doc, progress, n_cached, len(ids))

    mentions = mentions_frame((i, by_doc[i]) for i in ids if i in by_doc)
    result = Bern2Result(mentions=mentions, cached=n_cached, elapsed_s=time.perf_counter() - t0,
                         **counts)
    log.info("BERN2: %s", {k: v for k, v in result.report().items()
                            if k not in ("failed_ids", "errors")})
    return result


def _run_requests(
    todo: list[tuple[str, str, str]],
    fh: BinaryIO,
    opts: Bern2Options,
    stop: threading.Event,
    by_doc: dict[str, list[dict[str, Any]]],
    progress: bool,
    n_cached: int,
    n_total: int,
) -> dict[str, Any]:
    """Request ``todo`` with a bounded window of futures; the calling thread is the only cache
    writer. Returns the counter fields of Bern2Result."""
    client = _Client(opts, stop)
    failed: list[str] = []
    errors: dict[str, str] = {}
    skipped: list[str] = []
    done = n_requests = retries = unwritten = streak = 0
    # A long run of documents that all failed on connection errors means the server is down:
    # stop instead of spending max_retries backoffs on each remaining document.
    abort_streak = max(20, 4 * opts.workers)
    window = 2 * opts.workers
    sha1_of = {doc_id: sha1 for doc_id, _, sha1 in todo}
    bar = tqdm(total=n_total, initial=n_cached, unit="doc", desc="BERN2", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    pending: set[Future[_Outcome]] = set()
    it = iter(todo)
    pool = ThreadPoolExecutor(opts.workers, thread_name_prefix="bern2")
    interrupted = True
    try:
        while True:
            while not stop.is_set() and len(pending) < window:
                nxt = next(it, None)
                if nxt is None:
                    break
                pending.add(pool.submit(client.annotate, nxt[0], nxt[1]))
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                out = fut.result()
                n_requests += out.requests
                retries += max(out.requests - 1, 0)
                if out.annotations is not None:
                    fh.write(_cache_line(out.doc_id, sha1_of[out.doc_id], out.annotations))
                    fh.flush()
                    unwritten += 1
                    if unwritten >= FSYNC_EVERY:
                        os.fsync(fh.fileno())
                        unwritten = 0
                    by_doc[out.doc_id] = out.annotations
                    done += 1
                    streak = 0
                elif out.stopped:
                    skipped.append(out.doc_id)
                    continue
                else:
                    failed.append(out.doc_id)
                    errors[out.doc_id] = out.error
                    log.warning("BERN2: document %s failed: %s", out.doc_id, out.error)
                    streak = streak + 1 if out.unreachable else 0
                    if streak >= abort_streak and not stop.is_set():
                        log.error("BERN2: %d documents in a row failed on connection errors; "
                                  "stopping (is %s down?)", streak, opts.url)
                        stop.set()
                bar.update(1)
                bar.set_postfix(failed=len(failed), refresh=False)
        interrupted = False
    finally:
        if interrupted:  # e.g. KeyboardInterrupt: no new attempts, do not wait for in-flight
            stop.set()
        pool.shutdown(wait=not interrupted, cancel_futures=True)
        bar.close()
        client.close()
    skipped.extend(doc_id for doc_id, _, _ in it)
    return {"done": done, "failed": failed, "skipped": skipped, "errors": errors,
            "requests": n_requests, "retries": retries}


def check_failed_share(result: Bern2Result, n_docs: int, opts: Bern2Options) -> None:
    """Raise Bern2Error if more than ``opts.max_failed_share`` of ``n_docs`` documents stayed
    unannotated (failed or skipped)."""
    missing = result.failed + result.skipped
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
