"""The fine-tuning benchmarks (paper Tables 2 and 4): label sets, heads and hyperparameters.

The paper (§5, "Evaluation Implementation") adopts BioLinkBERT's fine-tuning hyperparameters,
loading the best dev epoch. They are taken from michiyasunaga/LinkBERT @ 6b60e0f,
``src/run_examples_blurb_biolinkbert-base.sh`` (PubMedQA, BioASQ, ChemProt, DDI, GAD) and
``src/run_examples_medqa_biolinkbert-base.sh`` (MedQA); both run the Hugging Face Trainer, so
what they do not set is the Trainer's default: weight decay 0, gradient clipping at norm 1,
warm-up 0 steps. Every value is a CLI flag (``bali evaluate chemprot --lr 5e-5``).

========  ====  =====================  ====  ======  =====================  =======  ======
name      task  head (labels)          lr    epochs  batch                  max_len  warm-up
========  ====  =====================  ====  ======  =====================  =======  ======
pubmedqa  qa    classes yes/no/maybe   2e-5  30      16                     512      100
bioasq    qa    classes yes/no         2e-5  20      16                     512      100
medqa     qa    4-option choice        2e-5  2       4 x 8 accumulated      512      100
chemprot  re    False, CPR:3/4/5/6/9   3e-5  10      32                     256      0
ddi       re    0, DDI-advise/-effect  2e-5  5       32                     256      0
                /-int/-mechanism
gad       re    0, 1                   3e-5  10      32                     256      0
========  ====  =====================  ====  ======  =====================  =======  ======

Metrics on the test set: ``accuracy`` (QA); ``micro_f1``, ``precision``, ``recall`` over the
positive classes (RE, the first label above is the negative one, as BLURB). Our choices where
LinkBERT's scripts say nothing: bf16 autocast instead of fp16 on CUDA, evaluation batch 64.
Label aliases (other formats' spellings): DDI ``DDI-false`` -> ``0``; ChemProt ``false`` ->
``False``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bali.evaluate.finetune import CLASSIFICATION, MULTIPLE_CHOICE, FinetuneOptions
from bali.evaluate.metrics import accuracy, micro_f1
from bali.evaluate.qa import PUBMEDQA_LABELS, YES_NO


def options_class(name: str, **defaults) -> type[FinetuneOptions]:
    """A frozen subclass of :class:`FinetuneOptions` whose fields default to ``defaults``."""
    hints = typing.get_type_hints(FinetuneOptions)
    unknown = set(defaults) - set(hints)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}")
    fields = [(f.name, hints[f.name], field(default=defaults[f.name], metadata=f.metadata))
              for f in dataclasses.fields(FinetuneOptions) if f.name in defaults]
    cls = dataclasses.make_dataclass(name, fields, bases=(FinetuneOptions,), frozen=True)
    cls.__module__ = __name__
    cls.__doc__ = f"{FinetuneOptions.__doc__} Defaults of {name.removesuffix('Options')}."
    return cls


@dataclass(frozen=True)
class Benchmark:
    """A fine-tuning benchmark: record ``task``, model ``head``, class ``labels`` (empty for
    multiple choice), RE ``negative`` class, label ``aliases`` and its ``options`` class."""

    name: str
    task: str
    head: str
    labels: tuple[str, ...]
    negative: str | None
    options: type[FinetuneOptions]
    aliases: Mapping[str, str] = field(default_factory=dict)

    @property
    def primary(self) -> str:
        return "accuracy" if self.task == "qa" else "micro_f1"

    def metrics(self, gold: Sequence, pred: Sequence) -> dict[str, float]:
        """Test metrics of the module docstring."""
        if self.task == "qa":
            return {"accuracy": accuracy(gold, pred)}
        return micro_f1(gold, pred, self.negative)


_QA = {"lr": 2e-5, "max_length": 512, "warmup_steps": 100}
_RE = {"batch_size": 32, "max_length": 256, "warmup_steps": 0}

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("pubmedqa", "qa", CLASSIFICATION, PUBMEDQA_LABELS, None,
              options_class("PubMedQAOptions", epochs=30, batch_size=16, **_QA)),
    Benchmark("bioasq", "qa", CLASSIFICATION, YES_NO, None,
              options_class("BioASQOptions", epochs=20, batch_size=16, **_QA)),
    Benchmark("medqa", "qa", MULTIPLE_CHOICE, (), None,
              options_class("MedQAOptions", epochs=2, batch_size=4, grad_accum=8, **_QA)),
    Benchmark("chemprot", "re", CLASSIFICATION,
              ("False", "CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9"), "False",
              options_class("ChemProtOptions", lr=3e-5, epochs=10, **_RE),
              aliases={"false": "False"}),
    Benchmark("ddi", "re", CLASSIFICATION,
              ("0", "DDI-advise", "DDI-effect", "DDI-int", "DDI-mechanism"), "0",
              options_class("DDIOptions", lr=2e-5, epochs=5, **_RE),
              aliases={"DDI-false": "0"}),
    Benchmark("gad", "re", CLASSIFICATION, ("0", "1"), "0",
              options_class("GADOptions", lr=3e-5, epochs=10, **_RE)),
)}
