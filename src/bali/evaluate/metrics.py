"""Evaluation metrics, as pure functions of gold and predicted labels.

- ``accuracy = #(pred == gold) / N``
- ``acc_at_k``: a mention is a hit at ``k`` when any of its gold ids is among the ids of its
  ``k`` best candidates (a candidate may carry several ids, e.g. a composite or a dictionary
  name listed under several concepts); ``Acc@k = hits / N``.
- ``micro_f1`` (BLURB/BioBERT RE): over every positive class ``c`` (the negative class
  excluded), ``TP = sum_c #(pred = c and gold = c)``, ``FP = sum_c #(pred = c and gold != c)``,
  ``FN = sum_c #(gold = c and pred != c)``; ``P = TP / (TP + FP)``, ``R = TP / (TP + FN)``,
  ``F1 = 2PR / (P + R)`` (0 when undefined).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def accuracy(gold: Sequence, pred: Sequence) -> float:
    """Share of equal pairs (0.0 on no examples)."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold) if gold else 0.0


def hits_at_k(gold: Sequence[Iterable[str]], ranked: Sequence[Sequence[Iterable[str]]],
              k: int) -> list[int]:
    """Per mention, 1 if any of its top-k candidates shares a gold id, else 0 (``gold[i]``:
    the gold ids of mention i; ``ranked[i]``: its candidates, best first, each an iterable of
    ids)."""
    if len(gold) != len(ranked):
        raise ValueError(f"{len(gold)} mentions but {len(ranked)} candidate lists")
    return [int(any(set(ids) & set(c) for c in cands[:k]))
            for ids, cands in zip(gold, ranked, strict=True)]


def acc_at_k(gold: Sequence[Iterable[str]], ranked: Sequence[Sequence[Iterable[str]]],
             k: int) -> float:
    """Acc@k as in the module docstring: the mean of :func:`hits_at_k`."""
    hits = hits_at_k(gold, ranked, k)
    return sum(hits) / len(hits) if hits else 0.0


def micro_f1(gold: Sequence, pred: Sequence, negative) -> dict[str, float]:
    """Micro precision, recall and F1 over the positive classes (``negative`` excluded)."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    tp = sum(g == p != negative for g, p in zip(gold, pred, strict=True))
    pred_pos = sum(p != negative for p in pred)
    gold_pos = sum(g != negative for g in gold)
    precision = tp / pred_pos if pred_pos else 0.0
    recall = tp / gold_pos if gold_pos else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"micro_f1": f1, "precision": precision, "recall": recall}
