"""BERN2 client against the loopback stand-in: parsing, faults, resume, cache repair, failures."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from bern2_standin import Bern2StandIn, FaultPlan, annotate_text, text_for_response

from bali.io import BaliInputError
from bali.text.bern2 import (
    Bern2Error,
    Bern2Options,
    Bern2ResponseError,
    annotate_bern2,
    check_failed_share,
    check_url,
    mentions_frame,
    parse_response,
    read_cache,
)
from bali.text.schema import MENTIONS, make_document

ABSTRACTS = "bern2/pubmed_abstracts_1k.jsonl"
SAMPLES = "bern2/plain_response_samples.json"


def fast_opts(url: str, **kw) -> Bern2Options:
    """Low timeouts and backoff so fault tests finish in seconds."""
    base = {"url": url, "workers": 8, "timeout_s": 0.25, "max_retries": 8, "backoff_s": 0.01,
            "backoff_max_s": 0.05}
    return Bern2Options(**(base | kw))


def load_abstracts(path: Path, n: int | None = None) -> pl.DataFrame:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            rows.append(make_document(str(r["pmid"]), r["title"], r["abstract"]))
            if n is not None and len(rows) >= n:
                break
    return pl.DataFrame(rows)


def synthetic_docs(n: int) -> pl.DataFrame:
    words = ["Insulin", "resistance", "in", "patients", "with", "breast cancer", "and", "p53",
             "mutation", "of", "HeLa", "cells", "β-cell", "naïve", "mice", "🐭", "diabetes."]
    rows = [make_document(f"d{i:04d}", f"Title {i} on TP53",
                          " ".join(words[(i + j) % len(words)] for j in range(5 + i % 11)))
            for i in range(n)]
    return pl.DataFrame(rows)


def expected_mentions(docs: pl.DataFrame) -> pl.DataFrame:
    """What a fault-free stand-in run must give (computed without any HTTP)."""
    return mentions_frame(
        (d, annotate_text(t)) for d, t in zip(docs["doc_id"], docs["text"], strict=True))


def assert_offsets(mentions: pl.DataFrame, docs: pl.DataFrame) -> None:
    text = dict(zip(docs["doc_id"], docs["text"], strict=True))
    for row in mentions.iter_rows(named=True):
        assert text[row["doc_id"]][row["start"]:row["end"]] == row["mention"], row


def sample_responses(path: Path) -> list[dict]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, list) else [data]


# --------------------------------------------------------------------------- (a) parsing


def test_parse_real_sample_responses(shared_data, tmp_path):
    responses = sample_responses(shared_data(SAMPLES))
    canned, docs = {}, []
    for k, resp in enumerate(responses):
        text = text_for_response(resp)
        anns = parse_response(resp, text)
        assert len(anns) == len(resp["annotations"]) > 0
        for a, raw in zip(anns, resp["annotations"], strict=True):
            assert a["id"] == raw["id"] and a["obj"] == raw["obj"] and a["span"] == raw["span"]
        canned[text] = resp
        docs.append({"doc_id": f"s{k}", "title": "", "text": text})
    docs = pl.DataFrame(docs)
    with Bern2StandIn(canned=canned) as server:
        result = annotate_bern2(docs, tmp_path / "c.jsonl", fast_opts(server.url), progress=False)
    m = result.mentions
    assert m.schema == pl.Schema(MENTIONS)
    assert result.done == len(responses) and not result.failed
    assert m.height == sum(len(r["annotations"]) for r in responses)
    assert set(m["annotator"]) == {"bern2"} and m["cui"].null_count() == m.height
    assert_offsets(m, docs)
    if responses[0]["annotations"][5]["mention"] == "palpitations":  # the shipped sample
        row = m.filter(pl.col("mention") == "palpitations").row(0, named=True)
        assert row["source_ids"] == ["mim:115000", "mesh:D001145"]
        assert row["entity_type"] == "disease" and (row["start"], row["end"]) == (177, 189)


def test_parse_response_rejects_mismatches():
    text = "Insulin for patients"
    good = {"id": ["mesh:D007328"], "mention": "Insulin", "obj": "drug", "prob": 0.9,
            "is_neural_normalized": False, "span": {"begin": 0, "end": 7}}
    assert parse_response({"annotations": [good], "text": text}, text)[0]["mention"] == "Insulin"
    bad = [
        {"annotations": [good | {"span": {"begin": 1, "end": 8}}]},  # shifted
        {"annotations": [good | {"span": {"begin": 15, "end": 30}}]},  # out of range
        {"annotations": [good | {"id": [3]}]},
        {"annotations": [good], "text": text + " "},  # another text
        {"annotations": "none"},
        ["not", "an", "object"],
    ]
    for payload in bad:
        with pytest.raises(Bern2ResponseError):
            parse_response(payload, text)
    cuiless = good | {"id": ["CUI-less"]}
    m = mentions_frame([("d", parse_response({"annotations": [cuiless]}, text))])
    assert m["source_ids"].to_list() == [[]]


# --------------------------------------------------------------------------- (b), (f) faults


def test_1k_abstracts_with_20pct_faults_equal_fault_free_run(shared_data, tmp_path):
    docs = load_abstracts(shared_data(ABSTRACTS))
    assert docs.height == 1000
    with Bern2StandIn() as server:
        # fault-free: a generous timeout, so a loaded machine causes no retry
        clean = annotate_bern2(docs, tmp_path / "clean.jsonl",
                               fast_opts(server.url, timeout_s=10.0), progress=False)
        assert server.total_requests == 1000
    faults = FaultPlan.uniform(0.20, slow_s=0.6)  # slow > timeout_s 0.25
    # intermittent faults only: the circuit breaker (tested on its own below) is off, so a
    # loaded machine's run of timeouts cannot stop this run
    with Bern2StandIn(faults=faults, seed=1) as server:
        faulty = annotate_bern2(docs, tmp_path / "faulty.jsonl",
                                fast_opts(server.url, breaker_failures=0), progress=False)
        served = dict(server.faults_served)
    assert set(served) == set(FaultPlan.KINDS), served  # every fault kind was exercised
    assert sum(served.values()) > 150
    assert faulty.failed == [] and faulty.skipped == [] and faulty.done == 1000
    assert faulty.retries >= sum(served.values()) - served.get("slow", 0)
    assert faulty.mentions.equals(clean.mentions)
    assert clean.mentions.equals(expected_mentions(docs))
    assert clean.mentions.height > 1000
    assert_offsets(faulty.mentions, docs)  # (f)
    assert len(read_cache(tmp_path / "faulty.jsonl")) == 1000


def test_offsets_round_trip_non_ascii(tmp_path, capsys):
    docs = synthetic_docs(40)
    faults = FaultPlan(wrong_span=0.3, wrong_text=0.1)
    with Bern2StandIn(faults=faults) as server:
        result = annotate_bern2(docs, tmp_path / "c.jsonl", fast_opts(server.url, workers=3),
                                progress=True)
    assert "BERN2" in capsys.readouterr().err  # the progress bar goes to stderr
    assert not result.failed and result.mentions.equals(expected_mentions(docs))
    assert_offsets(result.mentions, docs)
    assert {"cell_line", "mutation", "gene", "species", "drug", "disease"} <= set(
        result.mentions["entity_type"])


# --------------------------------------------------------------------------- (c) interruption

CHILD = """
import sys
import polars as pl
from bali.text.bern2 import Bern2Options, annotate_bern2
docs = pl.read_parquet(sys.argv[1])
annotate_bern2(docs, sys.argv[2], Bern2Options(url=sys.argv[3], workers=2, timeout_s=5,
               backoff_s=0.01, backoff_max_s=0.05), progress=False)
print("FINISHED")
"""


def cached_ids(cache: Path) -> set[str]:
    """Doc ids on complete cache lines (what a killed run had finished)."""
    ids = set()
    for raw in cache.read_bytes().splitlines(keepends=True):
        if raw.endswith(b"\n"):
            ids.add(json.loads(raw)["doc_id"])
    return ids


def assert_resumed(server: Bern2StandIn, docs: pl.DataFrame, finished: set[str], result) -> None:
    text = dict(zip(docs["doc_id"], docs["text"], strict=True))
    again = [d for d in finished if server.counts[text[d]]]
    assert again == [], f"finished documents requested again: {again[:5]}"
    assert all(server.counts[text[d]] == 1 for d in text if d not in finished)
    assert result.cached == len(finished) and result.done == docs.height - len(finished)
    assert result.mentions.equals(expected_mentions(docs))


def test_resume_after_sigkill(shared_data, tmp_path):
    docs = load_abstracts(shared_data(ABSTRACTS), n=300)
    docs.write_parquet(tmp_path / "docs.parquet")
    cache = tmp_path / "cache.jsonl"
    with Bern2StandIn(latency_s=0.02) as server:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path / "docs.parquet"), str(cache), server.url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ | {"PYTHONPATH": str(
                Path(__file__).resolve().parents[1] / "src")})
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline and child.poll() is None:
                if cache.exists() and cache.read_bytes().count(b"\n") >= 100:
                    break
                time.sleep(0.005)
            assert child.poll() is None, child.communicate()[1].decode()[-2000:]
            os.kill(child.pid, signal.SIGKILL)
        finally:
            if child.poll() is None:
                child.kill()
            child.communicate(timeout=30)
        finished = cached_ids(cache)
        assert 100 <= len(finished) < 300
        server.reset_counts()
        result = annotate_bern2(docs, cache, fast_opts(server.url), progress=False)
        assert_resumed(server, docs, finished, result)
    assert len(read_cache(cache)) == 300


def test_resume_after_stop_event(tmp_path):
    docs = synthetic_docs(120)
    cache = tmp_path / "cache.jsonl"
    stop = threading.Event()

    def stop_when_cached(k: int) -> None:
        for _ in range(3000):  # at most ~30 s
            if cache.exists() and cache.read_bytes().count(b"\n") >= k:
                break
            time.sleep(0.01)
        stop.set()

    with Bern2StandIn(latency_s=0.01) as server:
        watcher = threading.Thread(target=stop_when_cached, args=(40,))
        watcher.start()
        first = annotate_bern2(docs, cache, fast_opts(server.url, workers=2), progress=False,
                               stop=stop)
        watcher.join(timeout=40)
        assert first.skipped and not first.failed
        assert first.done + len(first.skipped) == docs.height
        finished = cached_ids(cache)
        assert len(finished) == first.done
        server.reset_counts()
        result = annotate_bern2(docs, cache, fast_opts(server.url), progress=False)
        assert_resumed(server, docs, finished, result)
        server.reset_counts()
        third = annotate_bern2(docs, cache, fast_opts(server.url), progress=False)
        assert server.total_requests == 0 and third.cached == docs.height


# --------------------------------------------------------------------------- (d) cache repair


def test_cache_truncated_last_line_is_dropped_and_middle_corruption_fails(tmp_path):
    docs = synthetic_docs(20)
    cache = tmp_path / "cache.jsonl"
    with Bern2StandIn() as server:
        annotate_bern2(docs, cache, fast_opts(server.url), progress=False)
        good = cache.read_bytes()
        lines = good.splitlines(keepends=True)

        for tail in (lines[-1][: len(lines[-1]) // 2], b"garbage\n", b"\xff\xfe\n"):
            cache.write_bytes(b"".join(lines[:-1]) + tail)  # writer killed in the last line
            server.reset_counts()
            result = annotate_bern2(docs, cache, fast_opts(server.url), progress=False)
            assert result.cached == 19 and result.done == 1 and server.total_requests == 1
            assert result.mentions.equals(expected_mentions(docs))
            assert len(read_cache(cache, repair=False)) == 20
            assert cache.read_bytes().count(b"\n") == 20 and cache.read_bytes().endswith(b"\n")

        cache.write_bytes(b"".join(lines[:4] + [b'{"doc_id": "d0004", "sh\n'] + lines[5:]))
        with pytest.raises(BaliInputError) as err:
            annotate_bern2(docs, cache, fast_opts(server.url), progress=False)
        assert str(err.value).startswith(f"{cache}:5: corrupt BERN2 cache line")
        assert "\n" not in str(err.value)

        # valid JSON whose annotations do not fit the document's text
        entry = json.loads(lines[2])
        assert entry["annotations"]
        entry["annotations"][0]["mention"] += "x"
        cache.write_bytes(b"".join(lines[:2] + [json.dumps(entry).encode() + b"\n"] + lines[3:]))
        with pytest.raises(BaliInputError, match=rf"{cache}:3: cached annotations of"):
            annotate_bern2(docs, cache, fast_opts(server.url), progress=False)

        # a changed text is requested again (the cache key includes the text's sha1)
        cache.write_bytes(good)
        changed = docs.with_columns(
            pl.when(pl.col("doc_id") == "d0003").then(pl.col("text") + " insulin")
            .otherwise(pl.col("text")).alias("text"))
        server.reset_counts()
        result = annotate_bern2(changed, cache, fast_opts(server.url), progress=False)
        assert result.done == 1 and server.total_requests == 1
        assert result.mentions.equals(expected_mentions(changed))


# --------------------------------------------------------------------------- (e) failures


def test_permanent_failure_is_reported_not_dropped(tmp_path):
    docs = synthetic_docs(30)
    text = dict(zip(docs["doc_id"], docs["text"], strict=True))
    faults = FaultPlan(always_status={text["d0007"]: 500, text["d0011"]: 400})
    with Bern2StandIn(faults=faults) as server:
        opts = fast_opts(server.url, max_retries=3)
        result = annotate_bern2(docs, tmp_path / "c.jsonl", opts, progress=False)
        assert sorted(result.failed) == ["d0007", "d0011"]
        assert server.counts[text["d0007"]] == 4  # 1 + max_retries
        assert server.counts[text["d0011"]] == 1  # 4xx is final
        assert "HTTP 500" in result.errors["d0007"] and "HTTP 400" in result.errors["d0011"]
        assert result.done == 28 and result.report()["failed"] == 2
        ok = docs.filter(~pl.col("doc_id").is_in(["d0007", "d0011"]))
        assert result.mentions.equals(expected_mentions(ok))

        with pytest.raises(Bern2Error, match=r"2 of 30 documents not annotated"):
            check_failed_share(result, docs.height, opts)
        check_failed_share(result, docs.height, fast_opts(server.url, max_failed_share=0.1))

        server.reset_counts()  # failed documents are retried by the next run, nothing else
        again = annotate_bern2(docs, tmp_path / "c.jsonl", opts, progress=False)
        assert again.cached == 28 and sorted(again.failed) == ["d0007", "d0011"]
        assert set(server.counts) == {text["d0007"], text["d0011"]}


def dead_url() -> str:
    """A loopback URL with nothing listening (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_unreachable_server_trips_the_breaker(tmp_path):
    docs = synthetic_docs(100)
    opts = fast_opts(dead_url(), workers=2, max_retries=5)
    t0 = time.monotonic()
    result = annotate_bern2(docs, tmp_path / "c.jsonl", opts, progress=False)
    assert time.monotonic() - t0 < 5
    assert result.done == 0 and sorted(result.missing) == sorted(docs["doc_id"])
    assert result.requests < 20  # about breaker_failures, not 100 * (1 + max_retries)
    assert result.stop_reason == ("stopped after 10 consecutive failed requests "
                                  "(last: connection refused)")
    with pytest.raises(Bern2Error) as err:
        check_failed_share(result, 100, opts)
    msg = str(err.value)
    assert msg.startswith(f"{opts.url}: BERN2 server stopped after 10 consecutive failed")
    assert "connection refused" in msg and "100 of 100" in msg and "\n" not in msg


def test_persistent_500_trips_the_breaker_and_a_rerun_resumes(tmp_path):
    docs = synthetic_docs(60)
    first, cache = docs.head(30), tmp_path / "cache.jsonl"
    with Bern2StandIn() as server:
        annotate_bern2(first, cache, fast_opts(server.url), progress=False)
    before = cache.read_bytes()
    with Bern2StandIn(faults=FaultPlan(http_500=1.0)) as server:
        t0 = time.monotonic()
        result = annotate_bern2(docs, cache, fast_opts(server.url), progress=False)
        assert time.monotonic() - t0 < 5
        assert server.total_requests < 30
    assert "HTTP 500" in result.stop_reason and result.cached == 30 and result.done == 0
    assert sorted(result.missing) == sorted(docs["doc_id"][30:])
    assert cache.read_bytes() == before  # intact: nothing written, nothing cut
    with Bern2StandIn() as server:  # the server is back: the rest, and only the rest
        again = annotate_bern2(docs, cache, fast_opts(server.url), progress=False)
        assert server.total_requests == 30
    assert again.cached == 30 and again.done == 30 and not again.stop_reason
    assert again.mentions.equals(expected_mentions(docs))


def test_hanging_server_trips_the_breaker_on_timeouts(tmp_path):
    docs = synthetic_docs(40)
    with Bern2StandIn(latency_s=5) as server:  # accepts, never answers in time
        t0 = time.monotonic()
        result = annotate_bern2(docs, tmp_path / "c.jsonl",
                                fast_opts(server.url, timeout_s=0.1), progress=False)
        assert time.monotonic() - t0 < 5
    assert result.done == 0 and len(result.missing) == 40
    assert "no answer within 0.1 s" in result.stop_reason


def test_one_bad_document_alone_does_not_trip_the_breaker(tmp_path):
    docs = synthetic_docs(12)
    text = dict(zip(docs["doc_id"], docs["text"], strict=True))
    faults = FaultPlan(always_status={text["d0003"]: 500})
    with Bern2StandIn(faults=faults) as server:  # one worker: 13 failures in a row, one doc
        result = annotate_bern2(docs, tmp_path / "c.jsonl",
                                fast_opts(server.url, workers=1, max_retries=12),
                                progress=False)
        assert server.counts[text["d0003"]] == 13
    assert result.failed == ["d0003"] and result.done == 11 and not result.stop_reason


def test_unfixable_request_error_stops_at_once(tmp_path, monkeypatch):
    import requests

    def post(self, url, **kw):
        raise requests.exceptions.InvalidURL(f"Failed to parse: {url}")

    monkeypatch.setattr(requests.Session, "post", post)
    docs = synthetic_docs(50)
    result = annotate_bern2(docs, tmp_path / "c.jsonl", fast_opts("http://127.0.0.1:9"),
                            progress=False)
    assert result.stop_reason.startswith("stopped: InvalidURL: Failed to parse")
    assert result.requests <= 8 and len(result.missing) == 50  # one attempt per worker at most


@pytest.mark.parametrize("url", ["localhost:8888", "127.0.0.1:8888", "ftp://host/", "http://",
                                 "http://host:99999", "http://ho st:80", "", "http://h/?q=1"])
def test_bad_url_fails_before_any_request(tmp_path, url):
    cache = tmp_path / "c.jsonl"
    with pytest.raises(Bern2Error) as err:
        annotate_bern2(synthetic_docs(3), cache, fast_opts(url), progress=False)
    msg = str(err.value)
    assert "not a BERN2 server URL" in msg and "http://localhost:8888" in msg
    assert "\n" not in msg and not cache.exists()
    assert check_url("http://127.0.0.1:8888/") == "http://127.0.0.1:8888"


def write_docs(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "docs.parquet"
    synthetic_docs(n).select("doc_id", "title", "text").write_parquet(path)
    return path


def annotate_argv(tmp_path: Path, docs: Path, url: str, *extra: str) -> list[str]:
    return ["text", "annotate", "--annotator", "bern2", "--documents", str(docs),
            "--kg-dir", str(tmp_path / "kg"), "--url", url, "--cache", str(tmp_path / "c.jsonl"),
            "--failed", str(tmp_path / "failed.txt"), "--out", str(tmp_path / "m.parquet"),
            *extra]


def test_cli_bad_url_is_one_line(tmp_path, capsys):
    from bali.cli import main

    assert main(annotate_argv(tmp_path, write_docs(tmp_path, 3), "localhost:8888")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("bali: error: localhost:8888: not a BERN2 server URL (no http")
    assert not (tmp_path / "c.jsonl").exists()


def test_cli_dead_server_lists_every_document_in_failed(tmp_path, capsys):
    from bali.cli import main

    url = dead_url()
    t0 = time.monotonic()
    rc = main(annotate_argv(tmp_path, write_docs(tmp_path, 50), url, "--workers", "2",
                            "--backoff-s", "0.01", "--backoff-max-s", "0.05"))
    assert rc == 2 and time.monotonic() - t0 < 10
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"bali: error: {url}: BERN2 server stopped after 10 consecutive")
    assert "connection refused" in last
    failed = (tmp_path / "failed.txt").read_text().split()
    assert sorted(failed) == [f"d{i:04d}" for i in range(50)]  # failed and skipped alike


def test_ctrl_c_exits_fast_without_traceback(tmp_path):
    docs = write_docs(tmp_path, 200)
    cache = tmp_path / "c.jsonl"
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    # a third of the requests hang for 60 s (the client's timeout_s): workers block in them
    with Bern2StandIn(faults=FaultPlan(slow=0.3, slow_s=60), seed=3) as server:
        child = subprocess.Popen(
            [sys.executable, "-m", "bali", *annotate_argv(tmp_path, docs, server.url,
                                                          "--workers", "4")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and child.poll() is None:
                lines = cache.read_bytes().count(b"\n") if cache.exists() else 0
                if lines >= 1 and server.total_requests - lines >= 4:  # all 4 workers hang
                    break
                time.sleep(0.01)
            assert child.poll() is None, child.communicate()[1].decode()[-2000:]
            assert server.total_requests - cache.read_bytes().count(b"\n") >= 4
            t0 = time.monotonic()
            child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=30)
            elapsed = time.monotonic() - t0
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
    stderr = err.decode()
    assert elapsed < 2, f"exit took {elapsed:.2f} s"
    assert child.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("bali: interrupted: ")
    data = cache.read_bytes()
    assert data.endswith(b"\n")
    entries = read_cache(cache, repair=False)  # valid: every line parses
    assert len(entries) == data.count(b"\n") >= 1
    failed = set((tmp_path / "failed.txt").read_text().split())
    assert failed == {f"d{i:04d}" for i in range(200)} - set(entries)


def test_standin_binds_loopback_and_shuts_down():
    server = Bern2StandIn().start()
    host, port = server.url.removeprefix("http://").split(":")
    assert host == "127.0.0.1" and int(port) > 0
    server.close()
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=1):
        pass
