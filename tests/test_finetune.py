"""Fine-tuning evaluators: schedule and splits, best-dev restoration, seeded reproducibility, and
every benchmark end to end through ``bali evaluate`` on capped real samples (tiny BERT, CPU)."""

from __future__ import annotations

import json
import math
from itertools import islice

import pytest
import torch
from conftest import SHARED_DATA, make_tiny_bert

from bali.cli import main
from bali.evaluate.finetune import (
    CLASSIFICATION,
    FinetuneOptions,
    cap,
    encode,
    finetune,
    hold_out,
    load_model,
    lr_factor,
)

FAST = ["--epochs", "1", "--max-train", "32", "--max-eval", "32", "--max-length", "64",
        "--batch-size", "8", "--warmup-steps", "0", "--no-progress"]


def test_lr_schedule_and_splits():
    assert [lr_factor(t, 2, 6) for t in range(7)] == [0, 0.5, 1, 0.75, 0.5, 0.25, 0]
    assert lr_factor(3, 0, 3) == 0 and lr_factor(0, 0, 3) == 1
    data = ([f"x{i}" for i in range(100)], list(range(100)))
    (tr, ytr), (dv, ydv) = hold_out(data, 0.1, seed=5)
    assert len(dv) == 10 and len(tr) == 90 and not set(tr) & set(dv) and ytr == sorted(ytr)
    assert hold_out(data, 0.1, seed=5)[1] == (dv, ydv) and hold_out(data, 0.1, seed=6)[1] != \
        (dv, ydv)
    capped = cap(data, 20)
    assert len(capped[0]) == 20 and capped[1] == sorted(capped[1]) and capped[1] != list(range(20))
    assert cap(data, 20) == capped and cap(data, 0) == data


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny random BERT whose vocabulary was trained on samples of every benchmark."""
    texts = []
    for rel in ("qa/bioasq/train.json", "qa/medqa/test.jsonl", "re/ddi/dev.json",
                "re/chemprot/train.tsv", "re/gad/test.tsv"):
        path = SHARED_DATA / rel
        if path.exists():
            with open(path, encoding="utf-8") as fh:
                texts += [line[:2000] for line in islice(fh, 200)]
    texts = texts or ["the drug binds the protein receptor", "is it secreted? yes no maybe"]
    return make_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert", texts, vocab_size=2000)


def test_best_dev_state_is_the_one_returned(model_dir):
    """The dev score decides the epoch: epoch 2 scores best, so the model ends in the state it
    had after epoch 2, not after epoch 3."""
    examples = [(f"sample {i} " + "gene protein " * (i % 5), None) for i in range(24)]
    labels = [i % 3 for i in range(24)]
    model, tok = load_model(model_dir, CLASSIFICATION, 3, seed=1)
    train = encode(tok, examples, labels, CLASSIFICATION, 32)
    dev = encode(tok, examples[:6], labels[:6], CLASSIFICATION, 32)
    snapshots, scores = [], iter([0.5, 0.9, 0.2])

    def score(gold, pred):
        assert len(gold) == len(pred) == 6
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scores)

    opts = FinetuneOptions(lr=1e-3, epochs=3, batch_size=4, progress=False)
    result = finetune(model, train, dev, opts, seed=1, score=score)
    assert result.best_epoch == 2 and result.best_dev == 0.9
    assert [h["dev"] for h in result.history] == [0.5, 0.9, 0.2]
    final = model.state_dict()
    assert all(torch.equal(final[k], v) for k, v in snapshots[1].items())
    assert not all(torch.equal(final[k], v) for k, v in snapshots[2].items())


def _run(model_dir, tmp_path, benchmark, data_args, *extra, seed=0, name="out.json"):
    out = tmp_path / name
    rc = main(["evaluate", benchmark, "--model", str(model_dir), "--out", str(out),
               "--seed", str(seed), "--label", "model=tiny", "--label", "variant=base",
               *data_args, *FAST, *extra])
    assert rc == 0
    return json.loads(out.read_text())


CASES = {
    # benchmark: (data args relative to shared data, expected counts before caps)
    "pubmedqa": (["--data", "qa/pubmedqa/ori_pqal.json",
                  "--test-ids", "qa/pubmedqa/test_ground_truth.json"],
                 {"train_read": 450, "dev_read": 50, "test_read": 500}),
    "bioasq": (["--train", "qa/bioasq/train.json", "--dev", "qa/bioasq/dev.json",
                "--test", "qa/bioasq/test.json"],
               {"train_read": 670, "dev_read": 75, "test_read": 140}),
    "medqa": (["--train", "qa/medqa/linkbert_dev.json", "--test", "qa/medqa/test.jsonl"],
              {"train_read": 1145, "dev_read": 127, "test_read": 1273}),
    "chemprot": (["--train", "re/chemprot/train.tsv", "--dev", "re/chemprot/dev.tsv",
                  "--test", "re/chemprot/test.tsv"],
                 {"train_read": 16521, "dev_read": 10361, "test_read": 14396}),
    "ddi": (["--train", "re/ddi/dev.json", "--test", "re/ddi/test.json"],
            {"train_read": 2246, "dev_read": 250, "test_read": 5716}),
    "gad": (["--train", "re/gad/train.tsv", "--test", "re/gad/test.tsv"],
            {"train_read": 4316, "dev_read": 480, "test_read": 534}),
}


def _data_args(shared_data, args):
    return [a if a.startswith("--") else str(shared_data(a)) for a in args]


@pytest.mark.parametrize("benchmark", list(CASES))
def test_benchmark_end_to_end(benchmark, shared_data, model_dir, tmp_path):
    args, counts = CASES[benchmark]
    rec = _run(model_dir, tmp_path, benchmark, _data_args(shared_data, args), seed=13)
    qa = benchmark in ("pubmedqa", "bioasq", "medqa")
    primary = "accuracy" if qa else "micro_f1"
    assert (rec["task"], rec["benchmark"], rec["primary"]) == ("qa" if qa else "re", benchmark,
                                                               primary)
    names = {"accuracy"} if qa else {"micro_f1", "precision", "recall"}
    assert set(rec["metrics"]) == names | {f"dev_{primary}"}
    assert all(math.isfinite(v) and 0 <= v <= 1 for v in rec["metrics"].values())
    assert rec["counts"] == {"train": 32, "dev": 32, "test": 32, **counts}
    assert rec["labels"] == {"model": "tiny", "variant": "base"} and rec["seed"] == 13
    assert len(rec["data"]) == len([a for a in args if not a.startswith("--")])
    assert rec["options"]["max_length"] == 64 and rec["options"]["lr"] > 0
    assert [h["epoch"] for h in rec["history"]] == [1] and rec["best_epoch"] == 1
    items = rec["items"]  # per test example, in the capped order
    assert len(items["id"]) == len(items["gold"]) == len(items["pred"]) == 32
    pairs = zip(items["gold"], items["pred"], strict=True)
    assert items["correct"] == [int(g == p) for g, p in pairs]
    if qa:
        assert sum(items["correct"]) / 32 == pytest.approx(rec["metrics"]["accuracy"])
    if benchmark == "pubmedqa":
        assert rec["options"]["fold"] == 3  # seed 13 -> fold 13 mod 10
    if benchmark in ("medqa", "ddi", "gad"):  # no --dev: 10% of train held out
        assert rec["options"]["dev_share"] == 0.1


def test_same_seed_same_numbers_and_best_epoch(shared_data, model_dir, tmp_path):
    """Two runs with one seed agree exactly; the recorded dev score is the best epoch's."""
    args = _data_args(shared_data, CASES["gad"][0])
    extra = ["--epochs", "3", "--lr", "1e-3"]
    a = _run(model_dir, tmp_path, "gad", args, *extra, seed=7, name="a.json")
    b = _run(model_dir, tmp_path, "gad", args, *extra, seed=7, name="b.json")
    assert a["metrics"] == b["metrics"] and a["history"] == b["history"]
    dev = [h["dev_micro_f1"] for h in a["history"]]
    assert len(dev) == 3 and a["metrics"]["dev_micro_f1"] == max(dev)
    assert a["best_epoch"] == dev.index(max(dev)) + 1


def test_cli_reports_bad_label_with_file_and_line(model_dir, tmp_path, capsys):
    train = tmp_path / "train.tsv"
    train.write_text("".join(f"@GENE$ and @DISEASE$ {i}\t{i % 2}\n" for i in range(10))
                     + "@GENE$ x @DISEASE$\t2\n")
    rc = main(["evaluate", "gad", "--model", str(model_dir), "--out",
               str(tmp_path / "o.json"), "--train", str(train), "--test", str(train), *FAST])
    assert rc == 2 and not (tmp_path / "o.json").exists()
    assert f"{train}:11: unknown label '2'" in capsys.readouterr().err
