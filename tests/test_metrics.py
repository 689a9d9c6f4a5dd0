"""Metrics against hand-computed cases; aggregation of records over seeds."""

from __future__ import annotations

import math

import pytest

from bali.evaluate.metrics import acc_at_k, accuracy, micro_f1
from bali.evaluate.results import aggregate, parse_labels, read_records, record, write_record
from bali.io import BaliInputError


def test_accuracy():
    assert accuracy(["yes", "no", "maybe", "no"], ["yes", "no", "no", "no"]) == 0.75
    with pytest.raises(ValueError):
        accuracy([1], [1, 2])


def test_acc_at_k_with_multi_id_gold_and_candidates():
    gold = [["D1"], ["D2", "D3"], ["D4"]]
    ranked = [
        [["D9"], ["D1"]],            # hit at 2 only
        [["D3", "D8"], ["D9"]],      # candidate with several ids matches a second gold id
        [["D5"], ["D6"], ["D7"]],    # miss
    ]
    assert acc_at_k(gold, ranked, 1) == pytest.approx(1 / 3)
    assert acc_at_k(gold, ranked, 5) == pytest.approx(2 / 3)


def test_micro_f1_excludes_the_negative_class():
    gold = ["false", "CPR:3", "CPR:4", "CPR:4", "false"]
    pred = ["CPR:3", "CPR:3", "CPR:4", "false", "false"]
    # positives: TP = 2 (CPR:3, CPR:4), predicted positive 3, gold positive 3
    out = micro_f1(gold, pred, negative="false")
    assert out["precision"] == pytest.approx(2 / 3)
    assert out["recall"] == pytest.approx(2 / 3)
    assert out["micro_f1"] == pytest.approx(2 / 3)
    # every prediction negative: F1 is 0, not a division error
    assert micro_f1(["a", "b"], ["false", "false"], "false")["micro_f1"] == 0.0


def _rec(seed, acc, variant="gat"):
    return record(task="qa", benchmark="pubmedqa", model="m", seed=seed,
                  metrics={"accuracy": acc}, primary="accuracy",
                  labels={"model": "pubmedbert", "variant": variant})


def test_aggregate_mean_and_sample_std(tmp_path):
    paths = []
    for i, (seed, acc) in enumerate([(0, 0.6), (1, 0.7), (2, 0.8)]):
        paths.append(tmp_path / f"r{i}.json")
        write_record(paths[-1], _rec(seed, acc))
    paths.append(tmp_path / "base.json")
    write_record(paths[-1], _rec(0, 0.5, variant="base"))
    table = aggregate(read_records(paths))
    gat = table.filter(variant="gat").row(0, named=True)
    assert gat["n"] == 3 and gat["seeds"] == [0, 1, 2]
    assert gat["mean"] == pytest.approx(0.7)
    assert gat["std"] == pytest.approx(0.1)  # sqrt((0.01 + 0 + 0.01) / 2)
    assert table.filter(variant="base")["std"].item() == 0.0


def test_record_rejects_bad_metrics_and_files(tmp_path):
    with pytest.raises(ValueError, match="non-finite"):
        record(task="qa", benchmark="b", model="m", seed=0, metrics={"accuracy": math.nan},
               primary="accuracy")
    with pytest.raises(ValueError, match="primary"):
        record(task="qa", benchmark="b", model="m", seed=0, metrics={"f1": 1.0},
               primary="accuracy")
    bad = tmp_path / "x.json"
    bad.write_text('{"task": "qa"}')
    with pytest.raises(BaliInputError, match="x.json: results record lacks"):
        read_records([bad])
    assert parse_labels(["model=a", "variant=b=c"]) == {"model": "a", "variant": "b=c"}
    with pytest.raises(ValueError):
        parse_labels(["novalue"])
