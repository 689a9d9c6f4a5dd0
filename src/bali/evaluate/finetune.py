"""Supervised fine-tuning of an encoder with a new head; the best dev epoch is tested.

Examples (see :mod:`bali.evaluate.qa`, :mod:`bali.evaluate.re`): a *classification* example is
``(text, pair)`` (``pair`` None for a single text), encoded ``[CLS] text [SEP] pair [SEP]`` for
``AutoModelForSequenceClassification``; a *multiple-choice* example is
``(question, options)``, encoded as one ``[CLS] question [SEP] option [SEP]`` sequence per option
for ``AutoModelForMultipleChoice`` (softmax over the options). Sequences are truncated to
``max_length`` tokens (longest part first) and padded per batch to the longest sequence.

Training: AdamW (betas 0.9/0.999, eps 1e-8; weight decay on all weights but biases and
LayerNorm), cross-entropy loss, learning rate ``lr * f(t)`` at optimizer step ``t`` with
``f(t) = t / w`` for ``t < w`` (warm-up) and ``f(t) = max(0, (T - t) / (T - w))`` after, where
``T = epochs * ceil(ceil(N / batch_size) / grad_accum)``; gradients are accumulated over
``grad_accum`` batches and clipped to norm ``max_grad_norm``. After every epoch the dev set is
scored; the model state with the best dev score (the earliest epoch on ties) is kept as a CPU
copy and restored before the test set is predicted. CUDA is used when available (bf16 autocast
with ``--bf16``), the CPU otherwise.

Seeding: ``seed`` seeds ``random``, numpy and torch before the head is created (so the new head's
initialisation is seeded) and again before training (dropout); the shuffle order of every epoch
comes from a torch Generator seeded with ``seed``.

Caps: ``max_train`` / ``max_eval`` keep, of the train / dev and test sets, the first N examples
of a shuffle seeded with 0 (the same subset for every run seed, kept in file order); 0 keeps all.
A dev set held out of train (:func:`hold_out`) is the first ``round(share * N)`` examples of a
shuffle seeded with the run seed.
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from bali.errors import OptionError
from bali.torchutil import autocast, decay_groups, seed_everything

CLASSIFICATION = "classification"
MULTIPLE_CHOICE = "multiple_choice"
Split = tuple[list, list]  # (examples, labels) as returned by the readers


@dataclass(frozen=True)
class FinetuneOptions:
    """Options of :func:`finetune` (per-benchmark defaults: :mod:`bali.evaluate.benchmarks`)."""

    lr: float = field(default=2e-5, metadata={"help": "peak learning rate of AdamW"})
    epochs: int = field(default=3, metadata={"help": "training epochs (dev scored after each)"})
    batch_size: int = field(default=32, metadata={"help": "training examples per batch"})
    grad_accum: int = field(default=1, metadata={"help": "batches per optimizer step"})
    max_length: int = field(default=256, metadata={"help": "tokens per sequence (truncated)"})
    warmup_steps: int = field(default=0, metadata={"help": "optimizer steps of linear warm-up"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm (0: off)"})
    eval_batch_size: int = field(default=64, metadata={"help": "examples per evaluation batch"})
    max_train: int = field(default=0, metadata={
        "help": "cap on train examples (first N of a shuffle seeded 0; 0: all)"})
    max_eval: int = field(default=0, metadata={
        "help": "cap on dev and test examples (first N of a shuffle seeded 0; 0: all)"})
    bf16: bool = field(default=True, metadata={"help": "bf16 autocast on CUDA (ignored on CPU)"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})


@dataclass(frozen=True)
class Encoded:
    """Tokenized examples: ``features[i]`` is a dict of token lists (classification) or a list
    of such dicts, one per option (multiple choice); ``labels[i]`` is a class/option index."""

    features: list
    labels: list[int]
    pad_id: int
    choices: bool

    def __len__(self) -> int:
        return len(self.labels)

    def length(self, i: int) -> int:
        f = self.features[i]
        return max(len(o["input_ids"]) for o in f) if self.choices else len(f["input_ids"])

    def batch(self, idx: Sequence[int], device: torch.device) -> dict[str, torch.Tensor]:
        """Model inputs of examples ``idx``, right-padded to the longest sequence."""
        feats = [self.features[i] for i in idx]
        flat = [o for f in feats for o in f] if self.choices else feats
        width = max(len(f["input_ids"]) for f in flat)
        out = {}
        for key in flat[0]:
            fill = self.pad_id if key == "input_ids" else 0
            t = torch.tensor([f[key] + [fill] * (width - len(f[key])) for f in flat])
            out[key] = (t.view(len(feats), -1, width) if self.choices else t).to(device)
        return out


@dataclass(frozen=True)
class FinetuneResult:
    """Per-epoch ``history`` ({epoch, train_loss, dev}), the restored ``best_epoch`` (1-based)
    and its dev score ``best_dev``."""

    history: list[dict]
    best_epoch: int
    best_dev: float


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up then linear decay to 0 (module docstring)."""
    if step < warmup:
        return step / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def cap(split: Split, n: int) -> Split:
    """The first ``n`` examples of a shuffle seeded with 0, in file order (``n <= 0``: all)."""
    examples, labels = split
    if n <= 0 or n >= len(labels):
        return list(examples), list(labels)
    order = list(range(len(labels)))
    random.Random(0).shuffle(order)
    keep = sorted(order[:n])
    return [examples[i] for i in keep], [labels[i] for i in keep]


def hold_out(split: Split, share: float, seed: int) -> tuple[Split, Split]:
    """(train, dev): dev is the first ``max(1, round(share * N))`` examples of a shuffle seeded
    with ``seed``; both keep file order."""
    examples, labels = split
    n = len(labels)
    if n < 2 or not 0 < share < 1:
        raise OptionError(f"cannot hold out a share {share} of {n} training examples as dev")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    k = min(n - 1, max(1, round(share * n)))
    dev, train = sorted(order[:k]), sorted(order[k:])
    return ([examples[i] for i in train], [labels[i] for i in train]), \
        ([examples[i] for i in dev], [labels[i] for i in dev])


def encode(tokenizer, examples: Sequence, label_ids: Sequence[int], head: str,
           max_length: int) -> Encoded:
    """Tokenize examples (module docstring) without padding."""
    def rows(enc) -> list[dict]:
        keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
        return [{k: enc[k][i] for k in keys} for i in range(len(enc["input_ids"]))]

    kw = {"truncation": True, "max_length": max_length}
    if head == MULTIPLE_CHOICE:
        firsts = [q for q, options in examples for _ in options]
        seconds = [o for _, options in examples for o in options]
        flat = rows(tokenizer(firsts, seconds, **kw)) if firsts else []
        features, at = [], 0
        for _, options in examples:
            features.append(flat[at:at + len(options)])
            at += len(options)
    else:
        texts = [t for t, _ in examples]
        pairs = [p for _, p in examples]
        if all(p is None for p in pairs):
            features = rows(tokenizer(texts, **kw)) if texts else []
        else:
            features = rows(tokenizer(texts, [p or "" for p in pairs], **kw))
    return Encoded(features, list(label_ids), tokenizer.pad_token_id, head == MULTIPLE_CHOICE)


def load_model(model_dir: str | Path, head: str, num_labels: int, seed: int):
    """(model, tokenizer) with a new head initialised under ``seed``."""
    from transformers import (
        AutoModelForMultipleChoice,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    seed_everything(seed)
    if head == MULTIPLE_CHOICE:
        model = AutoModelForMultipleChoice.from_pretrained(str(model_dir))
    else:
        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir),
                                                                   num_labels=num_labels)
    return model, tokenizer


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def predict(model, data: Encoded, options: FinetuneOptions) -> list[int]:
    """Argmax class (or option) of every example; batches of similar length."""
    model.eval()
    device = _device(model)
    order = sorted(range(len(data)), key=data.length)
    pred = [0] * len(data)
    for start in range(0, len(order), options.eval_batch_size):
        idx = order[start:start + options.eval_batch_size]
        with autocast(device, options.bf16):
            logits = model(**data.batch(idx, device)).logits
        for i, p in zip(idx, logits.argmax(-1).tolist(), strict=True):
            pred[i] = p
    return pred


def finetune(model, train: Encoded, dev: Encoded, options: FinetuneOptions, seed: int,
             score: Callable[[list[int], list[int]], float]) -> FinetuneResult:
    """Train ``model`` (module docstring); ``score(gold, pred)`` of the dev set picks the epoch
    whose state is restored into ``model`` on return."""
    if len(train) == 0 or len(dev) == 0:
        raise OptionError(f"empty split: {len(train)} train, {len(dev)} dev examples")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    n, bs, accum = len(train), options.batch_size, max(1, options.grad_accum)
    n_batches = math.ceil(n / bs)
    total = options.epochs * math.ceil(n_batches / accum)
    optimizer = torch.optim.AdamW(decay_groups(model.parameters(), options.weight_decay),
                                  lr=options.lr, betas=(0.9, 0.999), eps=1e-8)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: lr_factor(t, options.warmup_steps, total))
    labels = torch.tensor(train.labels)
    history: list[dict] = []
    best_state, best_dev, best_epoch = None, -math.inf, 0
    bar = tqdm(total=options.epochs * n_batches, desc="fine-tune", unit="batch", file=sys.stderr,
               disable=not options.progress)
    for epoch in range(1, options.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen).tolist()
        loss_sum = 0.0
        optimizer.zero_grad(set_to_none=True)
        for b in range(n_batches):
            idx = order[b * bs:(b + 1) * bs]
            with autocast(device, options.bf16):
                logits = model(**train.batch(idx, device)).logits
            loss = F.cross_entropy(logits.float(), labels[idx].to(device))
            (loss / accum).backward()
            if (b + 1) % accum == 0 or b == n_batches - 1:
                if options.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), options.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.item() * len(idx)
            bar.update(1)
        dev_score = float(score(dev.labels, predict(model, dev, options)))
        history.append({"epoch": epoch, "train_loss": loss_sum / n, "dev": dev_score})
        bar.set_postfix(epoch=epoch, dev=f"{dev_score:.4f}")
        if dev_score > best_dev:
            best_dev, best_epoch = dev_score, epoch
            best_state = {k: v.detach().to("cpu", copy=True)
                          for k, v in model.state_dict().items()}
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return FinetuneResult(history, best_epoch, best_dev)


def run_finetune(model_dir: str | Path, head: str, label_names: Sequence[str], splits:
                 dict[str, Split], options: FinetuneOptions, seed: int,
                 metrics: Callable[[list, list], dict[str, float]], primary: str) -> dict:
    """Cap, encode, fine-tune on ``splits["train"]``, pick the epoch on ``splits["dev"]`` and
    score ``splits["test"]``. Labels are names from ``label_names`` (classification) or option
    indices (multiple choice); ``metrics(gold, pred)`` gets them back in that form.

    Returns ``{"metrics": test metrics + dev_<primary>, "history", "best_epoch", "counts",
    "items"}``; ``items``: per test example (in the capped test order) id, gold, pred and
    correct (0/1), for paired comparisons.
    """
    used = {"train": cap(splits["train"], options.max_train),
            "dev": cap(splits["dev"], options.max_eval),
            "test": cap(splits["test"], options.max_eval)}
    index = {name: i for i, name in enumerate(label_names)}
    to_id = (lambda y: index[y]) if head == CLASSIFICATION else int
    to_name = (lambda i: label_names[i]) if head == CLASSIFICATION else int
    model, tokenizer = load_model(model_dir, head, len(label_names), seed)
    enc = {k: encode(tokenizer, ex, [to_id(y) for y in ys], head, options.max_length)
           for k, (ex, ys) in used.items()}

    def score(gold: list[int], pred: list[int]) -> float:
        return metrics([to_name(g) for g in gold], [to_name(p) for p in pred])[primary]

    result = finetune(model, enc["train"], enc["dev"], options, seed, score)
    pred = predict(model, enc["test"], options)
    test = metrics(list(used["test"][1]), [to_name(p) for p in pred])
    history = [{"epoch": h["epoch"], "train_loss": h["train_loss"], f"dev_{primary}": h["dev"]}
               for h in result.history]
    counts = {k: len(v[1]) for k, v in used.items()}
    counts.update({f"{k}_read": len(v[1]) for k, v in splits.items()})
    gold, predicted = list(used["test"][1]), [to_name(p) for p in pred]
    items = {"id": list(range(len(gold))), "gold": gold, "pred": predicted,
             "correct": [int(g == p) for g, p in zip(gold, predicted, strict=True)]}
    return {"metrics": {**test, f"dev_{primary}": result.best_dev}, "history": history,
            "best_epoch": result.best_epoch, "counts": counts, "items": items}
