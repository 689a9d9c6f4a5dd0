"""Corpus readers -> ``documents`` rows (see :mod:`bali.text.schema`), streaming.

Formats (``detect_format`` picks one from the file name):

- ``pubmed``: PubMed baseline/update XML (``pubmed25n0001.xml.gz``; gzip or plain). One
  document per ``PubmedArticle``: PMID, ArticleTitle, AbstractText parts (structured
  abstracts joined as ``LABEL: text``), inline markup flattened; articles without a PMID or
  without text are skipped and counted. ``DeleteCitation`` PMIDs are collected: the file's
  own articles with them are dropped by ``bali text read``, which lists them for the sample
  stage to drop from every earlier shard (:mod:`bali.sample.supersede`).
- ``jsonl``: one ``{"pmid", "title", "abstract"}`` object per line (``doc_id``/``id`` and
  ``text`` accepted as synonyms).
- ``pubtator``: ``pmid|t|title``, ``pmid|a|abstract``, then tab-separated mention lines
  ``pmid start end mention type ids`` (offsets: non-negative integers, else an error);
  relation lines (second field a word: ``pmid CID id1 id2``) ignored; blank lines between
  documents.
  Offsets are into ``title + " " + abstract``; the gold mentions are read by
  :func:`iter_pubtator` for the ``pubtator`` annotator.
- ``obo``: the ``def:`` text of every live OBO term (title = term name, doc_id = term id):
  real curated text that ships with the KG, used by the embedded demo.
"""

from __future__ import annotations

import gzip
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from bali.io import BaliInputError, check_input_file, first_non_utf8_line, json_objects
from bali.text.schema import make_document

FORMATS = ("pubmed", "jsonl", "pubtator", "obo")
_ID_SEPARATORS = re.compile(r"[|;,]")


def detect_format(path: str | Path) -> str:
    """Format from the file name: ``*.xml[.gz]`` pubmed, ``*.jsonl[.gz]`` jsonl,
    ``*.pubtator``/``*.txt`` pubtator, ``*.obo`` obo."""
    name = Path(path).name.lower().removesuffix(".gz")
    for suffixes, fmt in (((".xml",), "pubmed"), ((".jsonl", ".ndjson"), "jsonl"),
                          ((".pubtator", ".txt"), "pubtator"), ((".obo",), "obo")):
        if name.endswith(suffixes):
            return fmt
    raise BaliInputError(path, f"cannot tell the corpus format from the name; give one of "
                         f"{', '.join(FORMATS)}")


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def iter_documents(path: str | Path, fmt: str = "auto", stats: dict | None = None,
                   deleted: set[str] | None = None) -> Iterator[dict[str, str]]:
    """Stream the documents of one corpus file; ``stats`` and ``deleted`` as in
    :func:`iter_pubmed_xml` (PubMed only; the other formats have no deletions)."""
    p = check_input_file(path)
    fmt = detect_format(p) if fmt == "auto" else fmt
    if fmt == "pubmed":
        yield from iter_pubmed_xml(p, stats, deleted)
    elif fmt == "jsonl":
        yield from iter_jsonl(p)
    elif fmt == "pubtator":
        for doc, _ in iter_pubtator(p):
            yield doc
    elif fmt == "obo":
        yield from iter_obo_definitions(p)
    else:
        raise BaliInputError(p, f"unknown corpus format {fmt!r}; use one of {', '.join(FORMATS)}")


def _flat_text(elem: ET.Element) -> str:
    return " ".join("".join(elem.itertext()).split())


def iter_pubmed_xml(path: Path, stats: dict | None = None,
                    deleted: set[str] | None = None) -> Iterator[dict[str, str]]:
    """Stream ``PubmedArticle`` records of a PubMed XML file (gzip or plain).

    ``stats`` (if given) counts ``articles_without_pmid`` and ``articles_without_text``
    (neither title nor abstract), which are skipped, and ``deleted_pmids``; the PMIDs of the
    ``DeleteCitation`` elements go into ``deleted`` (if given).
    """
    counts = stats if stats is not None else {}
    for key in ("articles_without_pmid", "articles_without_text", "deleted_pmids"):
        counts.setdefault(key, 0)
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as fh:
            for _, elem in ET.iterparse(fh, events=("end",)):
                if elem.tag == "DeleteCitation":
                    pmids = [p.text.strip() for p in elem.iterfind("PMID") if p.text]
                    counts["deleted_pmids"] += len(pmids)
                    if deleted is not None:
                        deleted.update(pmids)
                    elem.clear()
                    continue
                if elem.tag != "PubmedArticle":
                    continue
                doc = _pubmed_article(elem)
                elem.clear()
                if doc is None:
                    counts["articles_without_pmid"] += 1
                elif doc["text"]:
                    yield doc
                else:
                    counts["articles_without_text"] += 1
    except ET.ParseError as err:
        line = err.position[0] if err.position else None
        raise BaliInputError(path, f"malformed XML: {err.msg}", line) from err
    except (OSError, EOFError) as err:  # truncated gzip
        raise BaliInputError(path, f"cannot read: {err}") from err


def _pubmed_article(elem: ET.Element) -> dict[str, str] | None:
    """The documents row of one ``PubmedArticle`` (None without a PMID)."""
    citation = elem.find("MedlineCitation")
    pmid = citation.findtext("PMID") if citation is not None else None
    if not pmid or not pmid.strip():
        return None
    article = citation.find("Article")
    title = abstract = ""
    if article is not None:
        t = article.find("ArticleTitle")
        title = _flat_text(t) if t is not None else ""
        parts = []
        for a in article.iterfind("Abstract/AbstractText"):
            text = _flat_text(a)
            label = a.get("Label")
            parts.append(f"{label}: {text}" if label and text else text)
        abstract = " ".join(p for p in parts if p)
    return make_document(pmid.strip(), title, abstract)


def iter_jsonl(path: Path) -> Iterator[dict[str, str]]:
    """Stream ``{pmid, title, abstract}`` JSON lines."""
    try:
        with _open_text(path) as fh:
            for lineno, obj in json_objects(path, fh):
                doc_id = obj.get("pmid", obj.get("doc_id", obj.get("id")))
                if doc_id in (None, ""):
                    raise BaliInputError(path, "object has no pmid/doc_id/id", lineno)
                title = str(obj.get("title") or "").strip()
                abstract = str(obj.get("abstract", obj.get("text")) or "").strip()
                yield make_document(str(doc_id), title, abstract)
    except UnicodeDecodeError as err:
        raise BaliInputError(path, "bytes that are not UTF-8", first_non_utf8_line(path)) from err


def split_ids(field: str) -> list[str]:
    """PubTator id field -> ids (``|``, ``;`` or ``,`` separated; ``-1``/``-`` mean none)."""
    return [i.strip() for i in _ID_SEPARATORS.split(field) if i.strip() not in ("", "-1", "-")]


def _unpad(text: str, m: dict) -> bool:
    """Fit mention ``m`` whose column and ``text[start:end]`` are equal only after stripping
    whitespace at either end: mention = the stripped text, offsets = its span. Whether it
    did; False when they differ otherwise."""
    span = text[m["start"]:m["end"]]
    core = span.strip()
    if not core or core != m["mention"].strip():
        return False
    start = m["start"] + len(span) - len(span.lstrip())
    m.update(start=start, end=start + len(core), mention=core)
    return True


def _pubtator_mention(path: Path, line: str, lineno: int, doc_id: str | None,
                      start_line: int, default_prefix: str) -> dict | None:
    """The gold mention of a tab-separated line ``pmid start end mention type [ids]`` of
    document ``doc_id`` (started at ``start_line``; bare ids get ``default_prefix``), or None
    for a relation line (``pmid CID id1 id2``: second field a word). Anything else is a
    BaliInputError naming the line."""
    fields = line.split("\t")
    if len(fields) >= 4 and fields[1][:1].isalpha():
        return None  # relation line: pmid, type (CID, Association, ...), id1, id2[, ...]
    if len(fields) < 5:
        raise BaliInputError(path, "expected 'pmid|t|', 'pmid|a|' or a mention line "
                             "'pmid<TAB>start<TAB>end<TAB>mention<TAB>type[<TAB>ids]'",
                             lineno)
    bad = [f for f in fields[1:3] if not (f.isascii() and f.isdigit())]
    if bad:
        raise BaliInputError(path, f"mention offset {bad[0]!r} is not a "
                             "non-negative integer", lineno)
    if fields[0] != doc_id:
        raise BaliInputError(path, f"mention of {fields[0]} inside document "
                             f"{doc_id} (started at line {start_line})", lineno)
    ids = split_ids(fields[5]) if len(fields) > 5 else []
    ids = [i if ":" in i else f"{default_prefix}:{i}" for i in ids]
    return {"doc_id": doc_id, "start": int(fields[1]), "end": int(fields[2]),
            "mention": fields[3], "entity_type": fields[4], "source_ids": ids}


def _pubtator_document(path: Path, doc_id: str, title: str | None, abstract: str | None,
                       mentions: list[tuple[dict, int]], counts: dict) -> tuple[dict, list[dict]]:
    """(document, mentions) of one PubTator document; ``mentions`` holds (mention, line).
    Each must equal ``text[start:end]``, else fit after :func:`_unpad` (counted as
    ``padded_mentions``), else it is a BaliInputError naming its line."""
    doc = make_document(doc_id, title or "", abstract or "")
    for m, lineno in mentions:
        if doc["text"][m["start"]:m["end"]] == m["mention"]:
            continue
        if not _unpad(doc["text"], m):
            raise BaliInputError(path, f"mention {m['mention']!r} does not match the text "
                                 f"at {m['start']}-{m['end']}", lineno)
        counts["padded_mentions"] += 1
    counts["mentions"] += len(mentions)
    return doc, [m for m, _ in mentions]


def iter_pubtator(path: Path, default_prefix: str = "MESH",
                  stats: dict | None = None) -> Iterator[tuple[dict, list[dict]]]:
    """Stream (document, gold mentions) from a PubTator file.

    Bare ids (BC5CDR's ``D003866``) get ``default_prefix``. A mention column and its span
    ``text[start:end]`` that are equal only after stripping whitespace at either end (real
    corpora pad some mention columns) give the stripped mention with the offsets of its
    span in the text, counted as ``padded_mentions`` in ``stats`` (if given, filled as the
    documents are read, with ``mentions``); any other difference is an error naming the line.
    Lines whose second field is a word are relation lines (``pmid CID id1 id2``), skipped and
    counted as ``skipped_relation_lines`` (a mention line with a word for its start offset
    cannot be told from one, so it is counted there too).
    """
    doc_id = None
    title = abstract = None
    mentions: list[tuple[dict, int]] = []
    start_line = 0
    counts = stats if stats is not None else {}
    counts.setdefault("mentions", 0)
    counts.setdefault("padded_mentions", 0)
    counts.setdefault("skipped_relation_lines", 0)
    try:
        with _open_text(path) as fh:
            for lineno, raw in enumerate(fh, start=1):
                line = raw.rstrip("\n").rstrip("\r")
                if not line.strip():
                    continue
                head = line.split("|", 2)
                if len(head) == 3 and head[1] in ("t", "a") and "\t" not in head[0]:
                    if head[0] != doc_id:
                        if doc_id is not None:
                            yield _pubtator_document(path, doc_id, title, abstract, mentions,
                                                     counts)
                        doc_id, title, abstract, mentions = head[0], None, None, []
                        start_line = lineno
                    if head[1] == "t":
                        title = head[2]
                    else:
                        abstract = head[2]
                    continue
                m = _pubtator_mention(path, line, lineno, doc_id, start_line, default_prefix)
                if m is not None:
                    mentions.append((m, lineno))
                else:
                    counts["skipped_relation_lines"] += 1
            if doc_id is not None:
                yield _pubtator_document(path, doc_id, title, abstract, mentions, counts)
    except UnicodeDecodeError as err:
        raise BaliInputError(path, "bytes that are not UTF-8", first_non_utf8_line(path)) from err


def iter_obo_definitions(path: Path) -> Iterator[dict[str, str]]:
    """Documents from OBO term definitions: title = name, abstract = ``def:`` text."""
    from bali.kg.obo import parse_obo

    for term in parse_obo(path):
        if not term.obsolete and term.definition:
            yield make_document(term.id, term.name or "", term.definition)
