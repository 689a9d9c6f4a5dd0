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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import random
import re
import signal
import sys
import threading
import time
import urllib.parse
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl
import requests
from requests.adapters import HTTPAdapter
from tqdm import tqdm

from bali.errors import OptionError
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
STOP_GRACE_S = 0.5  # after a stop, how long in-flight documents may still finish
POLL_S = 0.05  # how often the driver looks at the stop flag while waiting
ANNOTATION_KEYS = ("id", "is_neural_normalized", "mention", "obj", "prob", "span")
MUTATION_KEYS = ("mutationType", "normalizedName", "hgvs")  # kept when they are strings
_ID_SEP = "\x1f"  # joins a mention's ids while its frame is built


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


class Bern2Error(BaliInputError):
    """Too many documents could not be annotated, the server is failing, or the URL is bad.
    ``str(err)``: ``<url>: <what>`` (one line)."""


class Bern2ResponseError(ValueError):
    """A response or annotation that does not fit the protocol or the sent text (retried)."""


class Bern2SpanError(Bern2ResponseError):
    """An annotation whose span does not fit the text (out of range or another string)."""


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


def text_sha1(text: str) -> str:
    """Hex SHA-1 of the UTF-8 text (the cache key beside the doc id)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


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

_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"()\[\]]+)")
_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
              requests.exceptions.ContentDecodingError)


@dataclass
class _Outcome:
    doc_id: str
    annotations: list[dict[str, Any]] | None  # None: failed or stopped
    error: str = ""
    requests: int = 0
    stopped: bool = False


class _Breaker:
    """Counts consecutive failed requests over all workers; trips (sets ``stop``) at
    ``threshold`` of them from at least two documents, or at once on a fatal error."""

    def __init__(self, threshold: int, stop: threading.Event):
        self.threshold, self.stop = threshold, stop
        self.reason = ""
        self.streak = 0
        self._docs: set[str] = set()
        self._lock = threading.Lock()

    def ok(self) -> None:
        with self._lock:
            self.streak = 0
            self._docs.clear()

    def failure(self, doc_id: str, cause: str) -> None:
        with self._lock:
            self.streak += 1
            self._docs.add(doc_id)
            if self.threshold and self.streak >= self.threshold and len(self._docs) >= 2:
                self._trip(f"stopped after {self.streak} consecutive failed requests "
                           f"(last: {cause})")

    def fatal(self, cause: str) -> None:
        with self._lock:
            self._trip(f"stopped: {cause} (no retry can fix this)")

    def _trip(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason
            self.stop.set()


class _Client:
    """Per-thread sessions and the retry loop for one document."""

    def __init__(self, opts: Bern2Options, stop: threading.Event, breaker: _Breaker):
        self.opts, self.stop, self.breaker = opts, stop, breaker
        self.endpoint = check_url(opts.url) + "/plain"
        self.timeout = (opts.connect_timeout_s, opts.timeout_s)
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
                with contextlib.suppress(Exception):
                    s.close()
            self._sessions.clear()

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        d = min(self.opts.backoff_max_s, self.opts.backoff_s * 2**attempt)
        if retry_after is not None:
            d = max(d, min(retry_after, self.opts.backoff_max_s))
        return d + d * JITTER * rng.random()

    def cause(self, err: BaseException) -> str:
        """A short one-line cause of a request error (``connection refused``, ...)."""
        if isinstance(err, requests.ConnectTimeout):
            return f"connect timed out after {self.opts.connect_timeout_s:g} s"
        if isinstance(err, requests.Timeout):
            return f"no answer within {self.opts.timeout_s:g} s"
        text = " ".join(str(err).split())
        m = _ERRNO.search(text)
        if m:
            return m.group(1).strip().rstrip(".").lower()
        if "RemoteDisconnected" in text or "Connection aborted" in text:
            return "connection closed without an answer"
        return text[:200]

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
                resp = self.session().post(self.endpoint, json={"text": text},
                                           timeout=self.timeout)
            except _TRANSIENT as err:
                cause = self.cause(err)
                out.error = f"{type(err).__name__}: {cause}"
                self.breaker.failure(doc_id, cause)
            except requests.RequestException as err:  # InvalidURL, InvalidHeader, ...
                out.error = f"{type(err).__name__}: {self.cause(err)}"
                self.breaker.fatal(out.error)
                return out
            else:
                status = resp.status_code
                if status >= 500:
                    out.error = f"HTTP {status}"
                    self.breaker.failure(doc_id, out.error)
                else:
                    self.breaker.ok()  # the server answers
                if status == 200:
                    try:
                        out.annotations = parse_response(resp.json(), text)
                        return out
                    except ValueError as err:  # JSONDecodeError and Bern2ResponseError
                        out.error = f"bad response: {err}"
                elif 400 <= status < 500 and status != 429:
                    body = " ".join(resp.text[:200].split())
                    out.error = f"HTTP {status} (not retried): {body}"
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


def _worker(client: _Client, tasks: queue.SimpleQueue, results: queue.SimpleQueue) -> None:
    while True:
        item = tasks.get()
        if item is None:
            return
        try:
            out = client.annotate(*item)
        except Exception as err:  # noqa: BLE001 - reported as this document's failure
            out = _Outcome(item[0], None, error=f"{type(err).__name__}: {err}", requests=1)
        results.put(out)


class _SigintStop:
    """While active in the main thread, Ctrl-C sets ``stop`` instead of raising."""

    def __init__(self, stop: threading.Event):
        self.stop, self.hit = stop, False
        self._installed = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.hit = True
        self.stop.set()

    def __enter__(self) -> _SigintStop:
        if threading.current_thread() is threading.main_thread():
            with contextlib.suppress(ValueError, OSError):
                self._previous = signal.signal(signal.SIGINT, self._handle)
                self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous if self._previous is not None
                          else signal.default_int_handler)


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
    (or Ctrl-C, or the circuit breaker) ends the run early: no new requests, in-flight
    documents have :data:`STOP_GRACE_S` to finish and be cached, the rest are listed in
    ``skipped``. Call :func:`check_failed_share` on the result.
    """
    t0 = time.perf_counter()
    if opts.workers < 1 or opts.max_retries < 0 or opts.timeout_s <= 0 \
            or opts.connect_timeout_s <= 0 or opts.breaker_failures < 0:
        raise OptionError("Bern2Options: need workers >= 1, max_retries >= 0, timeout_s > 0, "
                         "connect_timeout_s > 0, breaker_failures >= 0")
    check_url(opts.url)
    _check_documents(documents)
    cache_path = Path(cache_path)
    stop = stop or threading.Event()
    breaker = _Breaker(opts.breaker_failures, stop)
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
        with _SigintStop(stop) as sigint:
            counts = _run_requests(todo, fh, opts, stop, breaker, by_doc, progress, n_cached,
                                   len(ids))
    if sigint.hit:
        log.warning("BERN2: interrupted (Ctrl-C); %d documents annotated and cached in %s",
                    n_cached + counts["done"], cache_path)
    mentions = mentions_frame((i, by_doc[i]) for i in ids if i in by_doc)
    result = Bern2Result(mentions=mentions, cached=n_cached, elapsed_s=time.perf_counter() - t0,
                         stop_reason=breaker.reason, interrupted=sigint.hit, **counts)
    log.info("BERN2: %s", {k: v for k, v in result.report().items()
                            if k not in ("failed_ids", "errors")})
    return result


def _run_requests(
    todo: list[tuple[str, str, str]],
    fh: BinaryIO,
    opts: Bern2Options,
    stop: threading.Event,
    breaker: _Breaker,
    by_doc: dict[str, list[dict[str, Any]]],
    progress: bool,
    n_cached: int,
    n_total: int,
) -> dict[str, Any]:
    """Request ``todo`` through ``opts.workers`` daemon threads with a bounded window; the
    calling thread is the only cache writer and polls ``stop`` every :data:`POLL_S`. Returns
    the counter fields of Bern2Result."""
    client = _Client(opts, stop, breaker)
    failed: list[str] = []
    errors: dict[str, str] = {}
    stopped: set[str] = set()
    done = n_requests = retries = unwritten = 0
    window = 2 * opts.workers
    sha1_of = {doc_id: sha1 for doc_id, _, sha1 in todo}
    tasks: queue.SimpleQueue = queue.SimpleQueue()
    results: queue.SimpleQueue = queue.SimpleQueue()
    threads = [threading.Thread(target=_worker, args=(client, tasks, results), daemon=True,
                                name=f"bern2-{k}") for k in range(opts.workers)]
    for t in threads:
        t.start()
    bar = tqdm(total=n_total, initial=n_cached, unit="doc", desc="BERN2", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    pending: set[str] = set()
    it = iter(todo)
    deadline: float | None = None
    logged_stop = False
    try:
        while True:
            while not stop.is_set() and len(pending) < window:
                nxt = next(it, None)
                if nxt is None:
                    break
                pending.add(nxt[0])
                tasks.put((nxt[0], nxt[1]))
            if not pending:
                break
            if stop.is_set() and deadline is None:
                deadline = time.monotonic() + STOP_GRACE_S
                if breaker.reason and not logged_stop:
                    log.error("BERN2 %s: %s", opts.url, breaker.reason)
                    logged_stop = True
            wait_s = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
            if wait_s <= 0:
                break  # grace over: abandon the in-flight documents
            try:
                out = results.get(timeout=wait_s)
            except queue.Empty:
                continue
            pending.discard(out.doc_id)
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
            elif out.stopped:
                stopped.add(out.doc_id)
                continue
            else:
                failed.append(out.doc_id)
                errors[out.doc_id] = out.error
                log.warning("BERN2: document %s failed: %s", out.doc_id, out.error)
            bar.update(1)
            bar.set_postfix(failed=len(failed), refresh=False)
    finally:
        finished = not pending and not stop.is_set()
        if not finished:  # an exception (or a stop): no worker starts another attempt
            stop.set()
        for _ in threads:
            tasks.put(None)
        if finished:  # idle workers: let them exit; otherwise they are abandoned (daemons)
            for t in threads:
                t.join(timeout=1)
        bar.close()
        client.close()
    stopped |= pending
    stopped.update(doc_id for doc_id, _, _ in it)
    skipped = [doc_id for doc_id, _, _ in todo if doc_id in stopped]
    return {"done": done, "failed": failed, "skipped": skipped, "errors": errors,
            "requests": n_requests, "retries": retries}


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
