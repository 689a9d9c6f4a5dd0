"""A loopback stand-in for a BERN2 server, for tests and benchmarks only (no model, no network;
not part of the package: tests import it from this directory, benchmarks add it to sys.path).

    with Bern2StandIn(latency_s=0.05, faults=FaultPlan(http_500=0.05), seed=0) as server:
        annotate_bern2(docs, cache, Bern2Options(url=server.url))

It serves ``POST /plain`` (``{"text": ...}``) on 127.0.0.1 at an OS-chosen port, answering in
BERN2's format (``annotations``, ``text``, ``timestamp``). Annotations are deterministic:
every case-insensitive whole-word match of :data:`LEXICON` (longest first, non-overlapping),
with exact spans; some ids are ``CUI-less`` and some have two ids. Texts given in ``canned``
get those responses instead (e.g. real BERN2 responses, see :func:`text_for_response`).

Faults (:class:`FaultPlan`) are drawn per request from an RNG seeded by (seed, text, n-th
request of that text), so a run's faults do not depend on thread scheduling. ``counts`` holds
the number of requests per text.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import hashlib
import json
import random
import re
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# word -> (obj, ids). Multi-word entries win over their parts (longest match first).
LEXICON: dict[str, tuple[str, list[str]]] = {
    "cancer": ("disease", ["mesh:D009369"]),
    "breast cancer": ("disease", ["mesh:D001943"]),
    "tumor": ("disease", ["mesh:D009369"]),
    "tumors": ("disease", ["mesh:D009369"]),
    "diabetes": ("disease", ["mesh:D003920", "mim:222100"]),
    "palpitations": ("disease", ["mim:115000", "mesh:D001145"]),
    "infection": ("disease", ["CUI-less"]),
    "pain": ("disease", ["mesh:D010146"]),
    "patients": ("species", ["NCBITaxon:9606"]),
    "patient": ("species", ["NCBITaxon:9606"]),
    "women": ("species", ["NCBITaxon:9606"]),
    "children": ("species", ["NCBITaxon:9606"]),
    "mice": ("species", ["NCBITaxon:10090"]),
    "rats": ("species", ["NCBITaxon:10116"]),
    "insulin": ("drug", ["mesh:D007328"]),
    "glucose": ("drug", ["mesh:D005947"]),
    "calcium": ("drug", ["mesh:D002118"]),
    "p53": ("gene", ["NCBIGene:7157"]),
    "tp53": ("gene", ["NCBIGene:7157"]),
    "protein": ("gene", ["CUI-less"]),
    "hela": ("cell_line", ["CVCL:0030"]),
    "cells": ("cell_type", ["CUI-less"]),
    "dna": ("DNA", ["CUI-less"]),
    "mrna": ("RNA", ["CUI-less"]),
    "mutation": ("mutation", ["CUI-less"]),
}
_PATTERN = re.compile(
    r"\b(?:" + "|".join(re.escape(w) for w in sorted(LEXICON, key=len, reverse=True)) + r")\b",
    re.IGNORECASE)


def annotate_text(text: str) -> list[dict[str, Any]]:
    """The stand-in's annotations of ``text`` (BERN2 annotation dicts, exact spans)."""
    out = []
    for m in _PATTERN.finditer(text):
        obj, ids = LEXICON[m.group(0).lower()]
        out.append({
            "id": list(ids),
            "is_neural_normalized": ids == ["CUI-less"] or len(ids) > 1,
            "mention": m.group(0),
            "obj": obj,
            "prob": round(0.9 + (len(m.group(0)) % 10) / 100, 4),
            "span": {"begin": m.start(), "end": m.end()},
        })
    return out


def text_for_response(response: Mapping[str, Any], filler: str = "x") -> str:
    """A text that fits ``response``'s spans (its ``text`` if it has one, else the mentions at
    their offsets, a space either side where there is room, ``filler`` elsewhere)."""
    if isinstance(response.get("text"), str):
        return response["text"]
    anns = response["annotations"]
    size = max((a["span"]["end"] for a in anns), default=0)
    chars = [filler] * size
    for a in anns:
        b, e = a["span"]["begin"], a["span"]["end"]
        if b > 0 and chars[b - 1] == filler:
            chars[b - 1] = " "
        if e < size and chars[e] == filler:
            chars[e] = " "
    for a in anns:
        b, e = a["span"]["begin"], a["span"]["end"]
        chars[b:e] = a["mention"]
    return "".join(chars)


@dataclass(frozen=True)
class FaultPlan:
    """Per-request fault rates (each in [0, 1], summing to at most 1) and permanent faults.

    http_500 / http_503: that status (503 with ``Retry-After: 0``); slow: answer correctly
    after ``slow_s`` (set it above the client's timeout); drop: close the connection without
    a response; malformed: truncated JSON; wrong_span: one annotation's span shifted by one
    (or an invented one if there is none); wrong_text: a response for a different text.
    ``always_status``: text -> HTTP status returned on every request of that text.
    """

    http_500: float = 0.0
    http_503: float = 0.0
    slow: float = 0.0
    drop: float = 0.0
    malformed: float = 0.0
    wrong_span: float = 0.0
    wrong_text: float = 0.0
    slow_s: float = 1.0
    always_status: Mapping[str, int] = field(default_factory=dict)

    KINDS = ("http_500", "http_503", "slow", "drop", "malformed", "wrong_span", "wrong_text")

    @classmethod
    def uniform(cls, total: float, **kw: Any) -> FaultPlan:
        """``total`` split evenly over all fault kinds."""
        share = total / len(cls.KINDS)
        return cls(**{k: share for k in cls.KINDS}, **kw)

    def draw(self, u: float) -> str | None:
        """The fault for a uniform draw ``u`` in [0, 1), or None."""
        acc = 0.0
        for kind in self.KINDS:
            acc += getattr(self, kind)
            if u < acc:
                return kind
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    standin: Bern2StandIn

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        pass  # clients that time out and hang up are expected; keep test output clean


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body as two writes stall on delayed ACKs
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _send(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/plain":
            self._send(404, b'{"error": "not found"}')
            return
        try:
            text = json.loads(raw)["text"]
            if not isinstance(text, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            self._send(400, b'{"error": "expected {\\"text\\": str}"}')
            return
        server = self.server.standin
        fault = server.record(text)
        if server.wait(server.latency_s):
            return
        plan = server.faults
        if text in plan.always_status:
            self._send(plan.always_status[text], b'{"error": "injected"}')
        elif fault == "http_500":
            self._send(500, b'{"error": "injected"}')
        elif fault == "http_503":
            self._send(503, b'{"error": "injected"}', {"Retry-After": "0"})
        elif fault == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        elif fault == "malformed":
            body = json.dumps(server.response(text)).encode("utf-8")
            self._send(200, body[: max(1, len(body) // 2)])
        else:
            resp = server.response(text)
            if fault == "slow" and server.wait(plan.slow_s):
                return
            if fault == "wrong_span":
                anns = resp["annotations"]
                if anns:
                    span = anns[len(anns) // 2]["span"]
                    anns[len(anns) // 2]["span"] = {"begin": span["begin"] + 1,
                                                    "end": span["end"] + 1}
                else:
                    anns.append({"id": ["CUI-less"], "is_neural_normalized": False,
                                 "mention": "invented", "obj": "disease", "prob": 0.5,
                                 "span": {"begin": 0, "end": len(text) + 8}})
            elif fault == "wrong_text":
                resp = server.response(text + " (another document)")
            self._send(200, json.dumps(resp).encode("utf-8"))


class Bern2StandIn:
    """Threaded BERN2 stand-in on 127.0.0.1 (port 0 = OS-chosen); a context manager."""

    def __init__(
        self,
        latency_s: float = 0.0,
        faults: FaultPlan | None = None,
        seed: int = 0,
        canned: Mapping[str, Mapping[str, Any]] | None = None,
        port: int = 0,
    ):
        self.latency_s, self.faults, self.seed = latency_s, faults or FaultPlan(), seed
        self.canned = dict(canned or {})
        self.counts: collections.Counter[str] = collections.Counter()
        self.faults_served: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._port = port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> Bern2StandIn:
        self._closing.clear()
        self._httpd = _Server(("127.0.0.1", self._port), _Handler)
        self._httpd.standin = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name="bern2-standin", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._httpd is None:
            return
        self._closing.set()  # wakes sleeping handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._httpd = self._thread = None

    def __enter__(self) -> Bern2StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("stand-in server is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- behaviour
    def response(self, text: str) -> dict[str, Any]:
        """The fault-free response to ``text`` (a fresh copy)."""
        if text in self.canned:
            resp = json.loads(json.dumps(self.canned[text]))
            resp.setdefault("text", text)
            resp.setdefault("timestamp", "canned")
            return resp
        return {"annotations": annotate_text(text), "text": text,
                "timestamp": dt.datetime.now(dt.UTC).strftime("%a %b %d %H:%M:%S +0000 %Y")}

    def record(self, text: str) -> str | None:
        """Count a request of ``text``; return the fault to inject (None: answer correctly)."""
        with self._lock:
            self.counts[text] += 1
            k = self.counts[text]
        digest = hashlib.sha1(f"{self.seed}\0{k}\0{text}".encode()).digest()
        fault = self.faults.draw(random.Random(digest).random())
        if fault:
            with self._lock:
                self.faults_served[fault] += 1
        return fault

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the server closes first (then True)."""
        return self._closing.wait(seconds) if seconds > 0 else self._closing.is_set()

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.faults_served.clear()

    @property
    def total_requests(self) -> int:
        with self._lock:
            return sum(self.counts.values())
