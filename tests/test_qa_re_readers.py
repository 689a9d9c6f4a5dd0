"""QA and RE readers on the real benchmark files: counts, label sets, PubMedQA folds, errors."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bali.evaluate.benchmarks import BENCHMARKS
from bali.evaluate.qa import pubmedqa_split, read_bioasq, read_medqa, read_pubmedqa
from bali.evaluate.re import read_re
from bali.io import BaliInputError


def test_pubmedqa_folds_replay_the_official_split(shared_data):
    """Replaying split_dataset.py gives exactly the official 500 test ids, and 10 folds of 50
    that partition the other 500."""
    d = shared_data("qa/pubmedqa")
    data = json.loads((d / "ori_pqal.json").read_text())
    test_ids = set(json.loads((d / "test_ground_truth.json").read_text()))
    decisions = {pmid: q["final_decision"] for pmid, q in data.items()}
    test, folds = pubmedqa_split(decisions)
    assert len(test_ids) == 500 and set(test) == test_ids
    assert [len(f) for f in folds] == [50] * 10
    cv = [pmid for f in folds for pmid in f]
    assert len(set(cv)) == 500 and not set(cv) & test_ids and set(cv) | test_ids == set(data)
    assert pubmedqa_split(decisions) == (test, folds)  # deterministic

    splits = read_pubmedqa(d / "ori_pqal.json", d / "test_ground_truth.json", fold=3)
    assert {k: len(v[1]) for k, v in splits.items()} == {"train": 450, "dev": 50, "test": 500}
    dev_questions = [data[pmid]["QUESTION"] for pmid in folds[3]]
    assert [q for q, _ in splits["dev"][0]] == dev_questions
    assert set(splits["test"][1]) == {"yes", "no", "maybe"}
    question, passage = splits["test"][0][0]
    assert question and len(passage) > len(question)


def test_pubmedqa_unknown_decision_names_its_line(tmp_path):
    data = tmp_path / "pqal.json"
    data.write_text('{\n "1": {"QUESTION": "q?", "CONTEXTS": ["c"], "final_decision": "yes"},\n'
                    ' "2": {"QUESTION": "q?", "CONTEXTS": ["c"], "final_decision": "perhaps"}\n}\n')
    ids = tmp_path / "ids.json"
    ids.write_text('{"1": "yes"}')
    with pytest.raises(BaliInputError, match=r"pqal.json:3: question 2: unknown label 'perhaps'"):
        read_pubmedqa(data, ids, fold=0)


def test_bioasq_blurb_counts(shared_data):
    d = shared_data("qa/bioasq")
    counts = {}
    for split in ("train", "dev", "test"):
        examples, labels = read_bioasq(d / f"{split}.json")
        assert set(labels) == {"yes", "no"} and all(p for _, p in examples)
        counts[split] = len(labels)
    assert counts == {"train": 670, "dev": 75, "test": 140}
    examples, _ = read_bioasq(d / "dev.json", question_only=True)
    assert all(p is None for _, p in examples)


OFFICIAL = {"questions": [
    {"body": "Is the protein Papilin secreted?", "documents": [], "ideal_answer": ["Yes."],
     "exact_answer": "yes", "concepts": [], "type": "yesno", "id": "54e25eaaae9738404b000017",
     "snippets": [{"offsetInBeginSection": 0, "offsetInEndSection": 10, "text": "Papilin is "
                   "secreted.", "beginSection": "abstract", "document": "d1"},
                  {"text": "It is an ECM protein.", "document": "d2"}]},
    {"body": "Which genes?", "type": "factoid", "id": "f1", "exact_answer": [["A"]],
     "snippets": []},
    {"body": "Is X a kinase?", "type": "yesno", "id": "55031181e9bde69634000014",
     "exact_answer": "No", "snippets": [{"text": "X is a phosphatase."}]},
]}


def test_bioasq_official_json(tmp_path):
    path = tmp_path / "11B1_golden.json"
    path.write_text(json.dumps(OFFICIAL, indent=2))
    examples, labels = read_bioasq(path)
    assert labels == ["yes", "no"]  # the factoid question is skipped, answers normalised
    assert examples[0] == ("Is the protein Papilin secreted?",
                           "Papilin is secreted. It is an ECM protein.")
    assert read_bioasq(path, question_only=True)[0][1] == ("Is X a kinase?", None)
    path.write_text(json.dumps(OFFICIAL))  # one line: still the official format
    assert read_bioasq(path)[1] == ["yes", "no"]

    bad = json.loads(json.dumps(OFFICIAL))
    bad["questions"][2]["exact_answer"] = "maybe"
    path.write_text(json.dumps(bad, indent=2))
    line = next(i for i, s in enumerate(path.read_text().splitlines(), 1)
                if "55031181e9bde69634000014" in s)
    with pytest.raises(BaliInputError, match=rf"11B1_golden.json:{line}: .*unknown label 'maybe'"):
        read_bioasq(path)


def test_medqa_both_formats(shared_data):
    d = shared_data("qa/medqa")
    original = read_medqa(d / "test.jsonl")
    linkbert = read_medqa(d / "linkbert_test.json")
    assert len(original[1]) == 1273 and set(original[1]) == {0, 1, 2, 3}
    assert all(len(options) == 4 for _, options in original[0])
    # the same questions, answers in the same order, whatever the format
    assert linkbert[1] == original[1]
    assert [q for q, _ in linkbert[0]] == [q for q, _ in original[0]]
    assert len(read_medqa(d / "linkbert_dev.json")[1]) == 1272


def test_re_counts_and_labels(shared_data):
    expected = {("chemprot", "train.tsv"): 16521, ("chemprot", "dev.tsv"): 10361,
                ("chemprot", "test.tsv"): 14396, ("ddi", "dev.json"): 2496,
                ("ddi", "test.json"): 5716,
                ("gad", "train.tsv"): 4796,  # no header line (BLURB train 4,261 + dev 535)
                ("gad", "test.tsv"): 534}  # a header line 'index sentence label'
    for (bench, name), n in expected.items():
        spec = BENCHMARKS[bench]
        examples, labels = read_re(shared_data(f"re/{bench}") / name, spec.labels, spec.aliases)
        assert len(labels) == n, (bench, name)
        assert set(labels) == set(spec.labels), (bench, name)
        assert Counter(labels).most_common(1)[0][0] == spec.negative or bench == "gad"
    examples, _ = read_re(shared_data("re/ddi") / "dev.json", BENCHMARKS["ddi"].labels)
    assert "@DRUG$" in examples[0][0]  # entity markers kept


def test_re_errors_name_file_and_line(tmp_path):
    spec = BENCHMARKS["chemprot"]
    tsv = tmp_path / "train.tsv"
    tsv.write_text("sentence\tlabel\nBC6ENTC binds BC6ENTG.\tCPR:4\nBC6ENTC x.\tCPR:99\n")
    with pytest.raises(BaliInputError, match=r"train.tsv:3: unknown label 'CPR:99'"):
        read_re(tsv, spec.labels)
    tsv.write_text("sentence\tlabel\nBC6ENTC binds BC6ENTG.\tCPR:4\nno label here\n")
    with pytest.raises(BaliInputError, match=r"train.tsv:3: expected 2 tab-separated fields"):
        read_re(tsv, spec.labels)
    jl = tmp_path / "dev.json"
    jl.write_text('{"sentence": "@DRUG$ and @DRUG$", "label": "DDI-false"}\n{"sentence": "x", \n')
    with pytest.raises(BaliInputError, match=r"dev.json:2: invalid JSON line"):
        read_re(jl, BENCHMARKS["ddi"].labels, BENCHMARKS["ddi"].aliases)
    jl.write_text('{"sentence": "@DRUG$ and @DRUG$", "label": "DDI-false"}\n')
    assert read_re(jl, BENCHMARKS["ddi"].labels, BENCHMARKS["ddi"].aliases)[1] == ["0"]
    with pytest.raises(BaliInputError, match=r"dev.json:1: unknown label 'DDI-false'"):
        read_re(jl, BENCHMARKS["ddi"].labels)  # without the alias


def test_medqa_and_bioasq_line_errors(tmp_path):
    mq = tmp_path / "medqa.jsonl"
    row = {"question": "Q?", "options": {"A": "a", "B": "b", "C": "c", "D": "d"},
           "answer_idx": "B"}
    mq.write_text(json.dumps(row) + "\n" + json.dumps({**row, "answer_idx": "E"}) + "\n")
    with pytest.raises(BaliInputError, match=r"medqa.jsonl:2: unknown label 'E'"):
        read_medqa(mq)
    mq.write_text(json.dumps({"sent1": "Q?", "sent2": "", "ending0": "a", "ending1": "b",
                              "ending2": "c", "ending3": "d", "label": 4}) + "\n")
    with pytest.raises(BaliInputError, match=r"medqa.jsonl:1: unknown label 4"):
        read_medqa(mq)
    bq = tmp_path / "train.json"
    bq.write_text('{"sentence1": "q?", "sentence2": "p", "label": "yes"}\n{"sentence1": "q?"}\n')
    with pytest.raises(BaliInputError, match=r"train.json:2: missing or non-str field"):
        read_bioasq(bq)
    bq.write_text('{"sentence1": "q?", "sentence2": "p", "label": "yes"\n')
    with pytest.raises(BaliInputError, match=r"train.json:1: invalid JSON line"):
        read_bioasq(bq)
