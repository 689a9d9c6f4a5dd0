"""Readers of the QA benchmarks (paper Table 2), as pure functions of files.

Each returns ``(examples, labels)``: a yes/no(/maybe) example is ``(question, passage)`` with
``passage`` None when only the question is used, its label ``"yes"``, ``"no"`` (or
``"maybe"``); a multiple-choice example is ``(question, options)`` with the label the index of
the correct option. A malformed record or an unknown label raises ``BaliInputError`` naming the
file and line.

- PubMedQA PQA-L (``ori_pqal.json``: ``{pmid: {"QUESTION", "CONTEXTS": [..], "final_decision"}}``,
  ``test_ground_truth.json``: ``{pmid: decision}`` for the 500 test questions): example
  ``(QUESTION, " ".join(CONTEXTS))``. Train/dev folds replay PubMedQA's
  ``preprocess/split_dataset.py`` (pubmedqa/pubmedqa): one ``random.Random(0)`` stream; per
  decision (yes, no, maybe, in file order) shuffle and cut into ``k`` parts of
  ``ceil(n / k)``; part i of the whole is the concatenation of the i-th parts; when the last
  part is smaller, one random question of every other part moves to it. The 1,000 questions are
  split in 2 (CV set, test set), then the CV set in 10 folds of 50. The replayed test set equals
  ``test_ground_truth.json`` (checked; if a file differs, the questions outside the given test
  ids are folded afresh with the same procedure and a warning).
- BioASQ yes/no: BLURB JSON lines (``sentence1`` question, ``sentence2`` passage, ``label``) or
  the official JSON (``{"questions": [{"type": "yesno", "body", "exact_answer", "snippets":
  [{"text"}], "id"}]}``; other question types skipped; passage = snippet texts joined by a
  space). The format is read from the content.
- MedQA-USMLE (4 options): original JSON lines (``question``, ``options`` ``{"A": ..}``,
  ``answer_idx``) or LinkBERT JSON lines (``sent1``, ``sent2``, ``ending0..3``, ``label``;
  options ``sent2 + " " + ending``), told apart by their keys.
"""

from __future__ import annotations

import json
import logging
import math
import random
from pathlib import Path

from bali.errors import OptionError
from bali.io import BaliInputError, check_input_file, json_objects

log = logging.getLogger(__name__)

YES_NO = ("yes", "no")
PUBMEDQA_LABELS = ("yes", "no", "maybe")
MEDQA_OPTIONS = 4


def _line_of(text: str, needle: str) -> int | None:
    """1-based line of the first occurrence of ``needle`` in ``text`` (None if absent)."""
    at = text.find(needle)
    return text.count("\n", 0, at) + 1 if at >= 0 else None


def _load_json(path: str | Path) -> tuple[Path, str, object]:
    p = check_input_file(path)
    text = p.read_text(encoding="utf-8")
    try:
        return p, text, json.loads(text)
    except json.JSONDecodeError as err:
        raise BaliInputError(p, f"not JSON: {err.msg}", err.lineno) from None


def _json_lines(path: str | Path):
    """(path, line number, object) of the non-blank lines of a JSON-lines file."""
    p = check_input_file(path)
    with open(p, encoding="utf-8") as fh:
        for lineno, obj in json_objects(p, fh):
            yield p, lineno, obj


def _field(p: Path, lineno: int | None, obj: dict, key: str, kind=str):
    value = obj.get(key)
    if not isinstance(value, kind):
        raise BaliInputError(p, f"missing or non-{kind.__name__} field {key!r}", lineno)
    return value


def _label(p: Path, lineno: int | None, value, allowed) -> str:
    if value not in allowed:
        raise BaliInputError(p, f"unknown label {value!r} (expected one of {list(allowed)})",
                             lineno)
    return value


# --- PubMedQA -------------------------------------------------------------------------------

def _split_label(ids: list[str], k: int, rng: random.Random) -> list[list[str]]:
    rng.shuffle(ids)
    size = math.ceil(len(ids) / k)
    return [ids[i * size:] if i == k - 1 else ids[i * size:(i + 1) * size] for i in range(k)]


def _split(decisions: dict[str, str], k: int, rng: random.Random) -> list[list[str]]:
    """One call of PubMedQA's ``split(dataset, fold)`` on ``{pmid: decision}`` (file order)."""
    by_label: dict[str, list[str]] = {label: [] for label in PUBMEDQA_LABELS}
    for pmid, decision in decisions.items():
        by_label[decision].append(pmid)
    parts_by_label = [_split_label(ids, k, rng) for ids in by_label.values()]
    parts = [[pmid for parts in parts_by_label for pmid in parts[i]] for i in range(k)]
    if len(parts[-1]) != len(parts[0]):
        for i in range(k - 1):
            picked = rng.choice(parts[i])
            parts[i].remove(picked)
            parts[-1].append(picked)
    return parts


def pubmedqa_split(decisions: dict[str, str], n_folds: int = 10,
                   seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """(test pmids, ``n_folds`` CV folds) as PubMedQA's ``split_dataset.py pqal`` makes them."""
    rng = random.Random(seed)
    cv, test = _split(decisions, 2, rng)
    return test, _split({pmid: decisions[pmid] for pmid in cv}, n_folds, rng)


def pubmedqa_folds(decisions: dict[str, str], test_ids: set[str], n_folds: int = 10,
                   seed: int = 0) -> list[list[str]]:
    """The CV folds of the questions outside ``test_ids`` (the official ones when the replayed
    test set is ``test_ids``)."""
    test, folds = pubmedqa_split(decisions, n_folds, seed)
    if set(test) != test_ids:
        log.warning("PubMedQA: the test ids differ from the replayed official split; folding the "
                    "other %d questions afresh", len(decisions) - len(test_ids))
        rest = {pmid: d for pmid, d in decisions.items() if pmid not in test_ids}
        folds = _split(rest, n_folds, random.Random(seed))
    return folds


def read_pubmedqa(data: str | Path, test_ids: str | Path, fold: int, n_folds: int = 10,
                  split_seed: int = 0) -> dict[str, tuple[list, list]]:
    """``{"train", "dev", "test"}`` -> (examples, labels); dev is CV fold ``fold``
    (``0 <= fold < n_folds``), train the other folds, test the questions of ``test_ids``."""
    p, text, obj = _load_json(data)
    if not isinstance(obj, dict):
        raise BaliInputError(p, "expected a JSON object {pmid: question}", 1)
    examples, decisions = {}, {}
    for pmid, q in obj.items():
        try:
            if not isinstance(q, dict):
                raise BaliInputError(p, "expected an object")
            question = _field(p, None, q, "QUESTION")
            contexts = _field(p, None, q, "CONTEXTS", list)
            decisions[pmid] = _label(p, None, q.get("final_decision"), PUBMEDQA_LABELS)
        except BaliInputError as err:  # the line is looked up only on error
            raise BaliInputError(p, f"question {pmid}: {err.message}",
                                 _line_of(text, f'"{pmid}"')) from None
        examples[pmid] = (question, " ".join(str(c) for c in contexts))
    tp, ttext, tobj = _load_json(test_ids)
    if not isinstance(tobj, dict | list):
        raise BaliInputError(tp, "expected a JSON object {pmid: decision} or a list of pmids", 1)
    test = [str(t) for t in tobj]
    unknown = [t for t in test if t not in decisions]
    if unknown:
        raise BaliInputError(tp, f"{len(unknown)} test ids not in {p.name}, e.g. {unknown[0]}",
                             _line_of(ttext, unknown[0]))
    folds = pubmedqa_folds(decisions, set(test), n_folds, split_seed)
    if not 0 <= fold < n_folds:
        raise OptionError(f"fold {fold} not in 0..{n_folds - 1}")
    dev = folds[fold]
    train = [pmid for i, f in enumerate(folds) if i != fold for pmid in f]

    def split(ids: list[str]) -> tuple[list, list]:
        return [examples[i] for i in ids], [decisions[i] for i in ids]

    return {"train": split(train), "dev": split(dev), "test": split(test)}


# --- BioASQ ---------------------------------------------------------------------------------

def _is_official_bioasq(p: Path) -> bool:
    with open(p, encoding="utf-8") as fh:
        first = next((line for line in fh if line.strip()), "")
    first = first.strip()
    if first == "{":  # an indented official file
        return True
    try:
        obj = json.loads(first)
    except json.JSONDecodeError:  # a broken JSON line, or a broken one-line official file
        return first.startswith('{"questions"')
    return isinstance(obj, dict) and "questions" in obj


def read_bioasq(path: str | Path, question_only: bool = False) -> tuple[list, list]:
    """BioASQ yes/no questions (module docstring) -> ``(question, passage | None)`` examples."""
    p = check_input_file(path)
    examples, labels = [], []
    if not _is_official_bioasq(p):
        for _, lineno, obj in _json_lines(p):
            question = _field(p, lineno, obj, "sentence1")
            passage = _field(p, lineno, obj, "sentence2")
            labels.append(_label(p, lineno, obj.get("label"), YES_NO))
            examples.append((question, None if question_only else passage))
        return examples, labels
    _, text, obj = _load_json(p)
    questions = obj.get("questions") if isinstance(obj, dict) else None
    if not isinstance(questions, list):
        raise BaliInputError(p, "expected {\"questions\": [...]} (official BioASQ JSON)", 1)
    for i, q in enumerate(questions):
        if not isinstance(q, dict):
            raise BaliInputError(p, f"question {i}: expected an object", None)
        if q.get("type") != "yesno":
            continue
        try:
            body = _field(p, None, q, "body")
            answer = q.get("exact_answer")
            if isinstance(answer, list) and len(answer) == 1:
                answer = answer[0]
            answer = answer.strip().lower() if isinstance(answer, str) else answer
            labels.append(_label(p, None, answer, YES_NO))
            snippets = q.get("snippets") or []
            if not isinstance(snippets, list) or not all(isinstance(s, dict) for s in snippets):
                raise BaliInputError(p, "'snippets' must be a list of {\"text\": ...}")
        except BaliInputError as err:  # the line is looked up only on error
            qid = q.get("id")
            raise BaliInputError(p, f"question {qid or i}: {err.message}",
                                 _line_of(text, f'"{qid}"') if isinstance(qid, str) else None
                                 ) from None
        passage = " ".join(str(s.get("text", "")).strip() for s in snippets)
        examples.append((body, None if question_only else passage))
    return examples, labels


# --- MedQA ----------------------------------------------------------------------------------

def read_medqa(path: str | Path) -> tuple[list, list]:
    """MedQA-USMLE 4-option questions (module docstring) -> ``(question, options)`` examples
    and the index of the correct option."""
    examples, labels = [], []
    for p, lineno, obj in _json_lines(path):
        if "options" in obj:
            question = _field(p, lineno, obj, "question")
            options = _field(p, lineno, obj, "options", dict)
            keys = sorted(options)
            answer = _label(p, lineno, obj.get("answer_idx"), keys)
            texts = [options[k] for k in keys]
            label = keys.index(answer)
        elif "sent1" in obj:
            question = _field(p, lineno, obj, "sent1")
            header = obj.get("sent2") or ""
            texts = []
            for i in range(MEDQA_OPTIONS):
                texts.append(f"{header} {_field(p, lineno, obj, f'ending{i}')}".strip())
            label = obj.get("label")
            if isinstance(label, bool) or not isinstance(label, int):
                label = str(label)  # reported as unknown below
            label = _label(p, lineno, label, range(MEDQA_OPTIONS))
        else:
            raise BaliInputError(p, "neither MedQA ('question', 'options', 'answer_idx') nor "
                                 "LinkBERT ('sent1', 'ending0..3', 'label') fields", lineno)
        if len(texts) != MEDQA_OPTIONS or not all(isinstance(t, str) for t in texts):
            raise BaliInputError(p, f"expected {MEDQA_OPTIONS} text options, got {len(texts)}",
                                 lineno)
        examples.append((question, tuple(texts)))
        labels.append(label)
    return examples, labels
