"""``bali pretrain`` and ``bali export``: the training stage's command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bali.config import add_options, options_from_args


def _pretrain(args: argparse.Namespace) -> None:
    import os

    from bali import distributed as dist
    from bali.model.config import ModelConfig
    from bali.train.config import TrainConfig
    from bali.train.loop import pretrain

    if args.local_rank is not None:  # the deepspeed launcher's flag; torchrun sets the env
        os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    summary = pretrain(args.shards, args.run_dir, options_from_args(ModelConfig, args),
                       options_from_args(TrainConfig, args), resume=args.resume,
                       progress=not args.no_progress)
    if dist.rank() == 0:
        print(json.dumps(summary))
    if dist.initialized():
        import torch.distributed

        torch.distributed.destroy_process_group()


def _export(args: argparse.Namespace) -> None:
    from bali.train.export import export_run

    print(json.dumps(export_run(args.run_dir, args.out_dir, args.select)))


def _card(args: argparse.Namespace) -> None:
    from bali.train.card import write_card

    print(write_card(args.run_dir, args.model_dir, args.results, args.variant))


def add_parser(stages: argparse._SubParsersAction) -> None:
    """Register ``bali pretrain``, ``bali export`` and ``bali card``."""
    from bali.model.config import ModelConfig
    from bali.train.config import TrainConfig

    pre = stages.add_parser(
        "pretrain", help="BALI pretraining (MLM + graph alignment), torch or DeepSpeed",
        description="Pretrain the LM on the training shards. Writes config.json, "
        "metrics.jsonl, checkpoints/, model.safetensors and curves.png into --run-dir. "
        "Several processes: torchrun --standalone --nproc_per_node N $(command -v bali) "
        "pretrain ... (both backends).")
    pre.add_argument("--shards", required=True, type=Path, help="directory of bali tokenize")
    pre.add_argument("--run-dir", required=True, type=Path)
    pre.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    pre.add_argument("--no-progress", action="store_true", help="no progress bar")
    pre.add_argument("--local_rank", "--local-rank", type=int, default=None,
                     help="set by the deepspeed launcher (torchrun sets LOCAL_RANK instead)")
    add_options(pre, ModelConfig)
    add_options(pre, TrainConfig)
    pre.set_defaults(func=_pretrain)

    exp = stages.add_parser(
        "export", help="pretraining run -> Hugging Face model directory",
        description="Write the text encoder and tokenizer (save_pretrained, safetensors), "
        "the graph encoder weights and a model card.")
    exp.add_argument("--run-dir", required=True, type=Path)
    exp.add_argument("--out-dir", required=True, type=Path)
    exp.add_argument("--select", choices=("last", "best-dev"), default="last",
                     help="weights of the last step, or of the step with the best dev Acc@1 "
                     "(needs validation during pretraining; default: last)")
    exp.set_defaults(func=_export)

    card = stages.add_parser(
        "card", help="(re)write an exported model's README.md run card with its evaluations",
        description="The Hugging Face model card of bali.train.card: base model, data counts, "
        "pretraining, dev metrics and the given evaluation results.")
    card.add_argument("--run-dir", required=True, type=Path, help="the pretraining run")
    card.add_argument("--model-dir", required=True, type=Path, help="its bali export")
    card.add_argument("--results", nargs="*", default=[], type=Path, metavar="JSON",
                      help="results JSONs of this model")
    card.add_argument("--variant", default="", help="variant label for the title")
    card.set_defaults(func=_card)
