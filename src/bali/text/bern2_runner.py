"""The request loop of :func:`bali.text.bern2.annotate_bern2`: ``workers`` daemon threads
fed from a window of at most ``2 * workers`` documents in flight; the calling thread alone
writes the cache, and looks at the stop flag every :data:`POLL_S`. After a stop, in-flight
documents have :data:`STOP_GRACE_S` to finish; the rest are skipped.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from bali.text.bern2_client import Breaker, Client, Outcome, worker

if TYPE_CHECKING:
    from bali.text.bern2 import Bern2Options

log = logging.getLogger("bali.text.bern2")  # the records keep the public module's name

STOP_GRACE_S = 0.5  # after a stop, how long in-flight documents may still finish
POLL_S = 0.05  # how often the driver looks at the stop flag while waiting

Todo = tuple[str, str, str]  # (doc_id, text, sha1 of the text)
CacheWriter = Callable[[str, str, list[dict[str, Any]]], None]  # (doc_id, sha1, annotations)


@dataclass
class _Tally:
    """The counters of one run (``stopped``: ids a stop left unannotated)."""

    done: int = 0
    failed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)
    requests: int = 0
    retries: int = 0


def _start_workers(client: Client, n: int) -> tuple[list[threading.Thread], queue.SimpleQueue,
                                                     queue.SimpleQueue]:
    """``n`` started daemon threads ``bern2-<k>`` and their (tasks, results) queues."""
    tasks: queue.SimpleQueue = queue.SimpleQueue()
    results: queue.SimpleQueue = queue.SimpleQueue()
    threads = [threading.Thread(target=worker, args=(client, tasks, results), daemon=True,
                                name=f"bern2-{k}") for k in range(n)]
    for t in threads:
        t.start()
    return threads, tasks, results


def _fill(it: Iterator[Todo], pending: set[str], tasks: queue.SimpleQueue, window: int,
          stop: threading.Event) -> None:
    """Queue documents from ``it`` until ``window`` are pending, ``it`` is empty or a stop."""
    while not stop.is_set() and len(pending) < window:
        nxt = next(it, None)
        if nxt is None:
            break
        pending.add(nxt[0])
        tasks.put((nxt[0], nxt[1]))


def _settle(out: Outcome, tally: _Tally, write: CacheWriter, sha1_of: dict[str, str],
            by_doc: dict[str, list[dict[str, Any]]], bar: tqdm) -> None:
    """Count one worker outcome: annotations are cached and kept in ``by_doc``, a failure is
    logged; a stopped document is only noted (the bar does not move)."""
    tally.requests += out.requests
    tally.retries += max(out.requests - 1, 0)
    if out.annotations is not None:
        write(out.doc_id, sha1_of[out.doc_id], out.annotations)
        by_doc[out.doc_id] = out.annotations
        tally.done += 1
    elif out.stopped:
        tally.stopped.add(out.doc_id)
        return
    else:
        tally.failed.append(out.doc_id)
        tally.errors[out.doc_id] = out.error
        log.warning("BERN2: document %s failed: %s", out.doc_id, out.error)
    bar.update(1)
    bar.set_postfix(failed=len(tally.failed), refresh=False)


def _drive(it: Iterator[Todo], pending: set[str], queues: tuple[queue.SimpleQueue, ...],
           opts: Bern2Options, stop: threading.Event, breaker: Breaker,
           settle: Callable[[Outcome], None]) -> None:
    """Keep the window full and settle outcomes until nothing is pending, or the stop grace
    (:data:`STOP_GRACE_S` from the first time the loop sees the stop) is over."""
    tasks, results = queues
    deadline: float | None = None
    while True:
        _fill(it, pending, tasks, 2 * opts.workers, stop)
        if not pending:
            break
        if stop.is_set() and deadline is None:
            deadline = time.monotonic() + STOP_GRACE_S
            if breaker.reason:
                log.error("BERN2 %s: %s", opts.url, breaker.reason)
        wait_s = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
        if wait_s <= 0:
            break  # grace over: abandon the in-flight documents
        try:
            out = results.get(timeout=wait_s)
        except queue.Empty:
            continue
        pending.discard(out.doc_id)
        settle(out)


def _shut_down(threads: list[threading.Thread], tasks: queue.SimpleQueue, finished: bool,
               stop: threading.Event) -> None:
    """Tell every worker to exit; if the run did not finish (an exception or a stop), set
    ``stop`` first so that no worker starts another attempt. Idle workers are joined (1 s
    each); otherwise they are abandoned (daemons)."""
    if not finished:
        stop.set()
    for _ in threads:
        tasks.put(None)
    if finished:
        for t in threads:
            t.join(timeout=1)


def run_requests(
    todo: list[Todo],
    write: CacheWriter,
    opts: Bern2Options,
    stop: threading.Event,
    breaker: Breaker,
    by_doc: dict[str, list[dict[str, Any]]],
    progress: bool,
    n_cached: int,
    n_total: int,
) -> dict[str, Any]:
    """Request ``todo`` through ``opts.workers`` daemon threads; ``write`` appends a finished
    document to the cache. Returns the counter fields of Bern2Result (``done``, ``failed``,
    ``skipped`` in ``todo`` order, ``errors``, ``requests``, ``retries``)."""
    client = Client(opts, stop, breaker)
    tally = _Tally()
    sha1_of = {doc_id: sha1 for doc_id, _, sha1 in todo}
    threads, tasks, results = _start_workers(client, opts.workers)
    bar = tqdm(total=n_total, initial=n_cached, unit="doc", desc="BERN2", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    pending: set[str] = set()
    it = iter(todo)
    try:
        _drive(it, pending, (tasks, results), opts, stop, breaker,
               lambda out: _settle(out, tally, write, sha1_of, by_doc, bar))
    finally:
        _shut_down(threads, tasks, not pending and not stop.is_set(), stop)
        bar.close()
        client.close()
    tally.stopped |= pending
    tally.stopped.update(doc_id for doc_id, _, _ in it)
    skipped = [doc_id for doc_id, _, _ in todo if doc_id in tally.stopped]
    return {"done": tally.done, "failed": tally.failed, "skipped": skipped,
            "errors": tally.errors, "requests": tally.requests, "retries": tally.retries}
