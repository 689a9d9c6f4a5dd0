"""Reader of the relation-extraction benchmarks (paper Table 4), a pure function of a file.

Formats, told apart by content (a first non-blank character ``{`` means JSON lines):

- BLURB JSON lines: ``{"id": .., "sentence": .., "label": ..}`` (DDI: ``@DRUG$`` markers).
- BioBERT / bio_electra TSV: ``sentence<TAB>label`` or ``index<TAB>sentence<TAB>label`` with an
  optional header line of exactly those names (ChemProt ``BC6ENTC``/``BC6ENTG`` markers, GAD
  ``@GENE$``/``@DISEASE$``; GAD's train file has no header, its test file has one). Without a
  header the column count is that of the first line; every line must have it.

Entity markers stay in the text. Every label must be in the benchmark's label set, after its
``aliases`` (other spellings of a label, e.g. ``DDI-false`` for DDI's negative ``0``); an
unknown label or a malformed line raises ``BaliInputError`` naming the file and line. Returns
``(examples, labels)`` with examples ``(sentence, None)``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

from bali.io import BaliInputError, check_input_file, json_object

HEADERS = (("sentence", "label"), ("index", "sentence", "label"))


def _check_label(p: Path, lineno: int, value, labels: Collection[str],
                 aliases: Mapping[str, str]) -> str:
    value = aliases.get(str(value), str(value)) if isinstance(value, str | int) else value
    if value not in labels:
        raise BaliInputError(p, f"unknown label {value!r} (expected one of {sorted(labels)})",
                             lineno)
    return value


def read_re(path: str | Path, labels: Collection[str],
            aliases: Mapping[str, str] | None = None) -> tuple[list, list]:
    """Sentences and relation labels of a BLURB JSON-lines or BioBERT TSV file (module
    docstring)."""
    p = check_input_file(path)
    aliases = aliases or {}
    examples, out = [], []
    with open(p, encoding="utf-8") as fh:
        lines = [(n, line.rstrip("\r\n")) for n, line in enumerate(fh, start=1) if line.strip()]
    if not lines:
        raise BaliInputError(p, "no examples")
    if lines[0][1].lstrip().startswith("{"):
        for lineno, line in lines:
            obj = json_object(p, line, lineno)
            if not isinstance(obj.get("sentence"), str) or "label" not in obj:
                raise BaliInputError(p, "expected {\"sentence\": str, \"label\": ..}", lineno)
            out.append(_check_label(p, lineno, obj["label"], labels, aliases))
            examples.append((obj["sentence"], None))
        return examples, out
    first = tuple(lines[0][1].split("\t"))
    header = first in HEADERS
    width = len(first)
    if width not in (2, 3):
        raise BaliInputError(p, "expected 'sentence<TAB>label' or 'index<TAB>sentence<TAB>label'",
                             lines[0][0])
    for lineno, line in lines[1:] if header else lines:
        fields = line.split("\t")
        if len(fields) != width or not fields[-2].strip():
            raise BaliInputError(p, f"expected {width} tab-separated fields with a sentence, "
                                 f"got {len(fields)}", lineno)
        out.append(_check_label(p, lineno, fields[-1].strip(), labels, aliases))
        examples.append((fields[-2], None))
    return examples, out
