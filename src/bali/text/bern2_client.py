"""The HTTP side of the BERN2 client: the retry loop of one document over a per-thread
session (backoff ``min(backoff_max_s, backoff_s * 2**attempt)``, at least ``Retry-After``,
plus up to :data:`JITTER` of it), the circuit breaker shared by all workers, the worker
threads and the Ctrl-C stop (the behaviour is described in :mod:`bali.text.bern2`).
"""

from __future__ import annotations

import contextlib
import queue
import random
import re
import signal
import threading
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter

from bali.text.bern2_protocol import check_url, parse_response

if TYPE_CHECKING:
    from bali.text.bern2 import Bern2Options

JITTER = 0.1  # a retry delay grows by up to this share of itself
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"()\[\]]+)")
_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
              requests.exceptions.ContentDecodingError)


@dataclass
class Outcome:
    """What a worker reports for one document."""

    doc_id: str
    annotations: list[dict[str, Any]] | None  # None: failed or stopped
    error: str = ""
    requests: int = 0
    stopped: bool = False


class Breaker:
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


class Client:
    """Per-thread sessions and the retry loop for one document."""

    def __init__(self, opts: Bern2Options, stop: threading.Event, breaker: Breaker):
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
        """Seconds before retry ``attempt + 1``: ``d = min(backoff_max_s, backoff_s *
        2**attempt)``, raised to ``min(retry_after, backoff_max_s)``, times ``1 + JITTER *
        U[0, 1)``."""
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

    def annotate(self, doc_id: str, text: str) -> Outcome:
        """Request one document until it is annotated, gets a final answer (4xx but 429, a
        fatal request error), runs out of retries, or the run stops (blank text: no
        request)."""
        out = Outcome(doc_id, None)
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


def worker(client: Client, tasks: queue.SimpleQueue, results: queue.SimpleQueue) -> None:
    """Annotate ``(doc_id, text)`` tasks until a None; an unexpected exception is that
    document's failure."""
    while True:
        item = tasks.get()
        if item is None:
            return
        try:
            out = client.annotate(*item)
        except Exception as err:  # noqa: BLE001 - reported as this document's failure
            out = Outcome(item[0], None, error=f"{type(err).__name__}: {err}", requests=1)
        results.put(out)


class SigintStop:
    """While active in the main thread, Ctrl-C sets ``stop`` instead of raising."""

    def __init__(self, stop: threading.Event):
        self.stop, self.hit = stop, False
        self._installed = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.hit = True
        self.stop.set()

    def __enter__(self) -> SigintStop:
        if threading.current_thread() is threading.main_thread():
            with contextlib.suppress(ValueError, OSError):
                self._previous = signal.signal(signal.SIGINT, self._handle)
                self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous if self._previous is not None
                          else signal.default_int_handler)

