"""``bali export``: a pretraining run -> a Hugging Face model directory.

Writes the text encoder with ``save_pretrained`` (safetensors; ``AutoModel.from_pretrained``
loads the encoder, ``AutoModelForMaskedLM`` the encoder with its MLM head), the tokenizer,
``bali_graph.safetensors`` (graph encoder, entity pooling and alignment-head weights, for
analysis; the paper discards them after pretraining) and the ``README.md`` run card
(:mod:`bali.train.card`). Weights are read from ``model.safetensors`` (the last
step; ``select="last"``) or ``best.safetensors`` (the step with the best dev Acc@1 of the
run's validation, ``select="best-dev"``), never from an untrusted pickle.

The exported weights keep every tensor of the base checkpoint the run started from (its
``model.model`` in the run's ``config.json``): a tensor the trained masked LM does not have
(BERT's ``pooler.dense.*``, which ``BertForMaskedLM`` drops; a pretraining checkpoint's
``cls.seq_relationship.*``) is copied unchanged (:func:`base_only_tensors`), so that
``AutoModel`` and ``AutoModelForSequenceClassification`` start BALI from the same pooler as
the base model, as the authors' saved encoders do.
"""

from __future__ import annotations

import json
from pathlib import Path

from bali.errors import OptionError
from bali.io import BaliInputError
from bali.model.config import ModelConfig

SELECT = ("last", "best-dev")


def export_run(run_dir: Path, out_dir: Path, select: str = "last") -> dict:
    """Export the ``select``-ed weights of ``run_dir`` into ``out_dir``; returns a summary."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    from bali.paths import resolve_model
    from bali.train.card import write_card
    from bali.train.checkpoint import BEST_INFO, BEST_WEIGHTS
    from bali.train.loop import build_model

    if select not in SELECT:
        raise OptionError(f"select must be one of {SELECT}, not {select!r}")
    weights = run_dir / "model.safetensors"
    if not weights.exists():
        raise BaliInputError(weights, "no final weights: has the pretraining run finished?")
    chosen = {"select": "last"}
    if select == "best-dev":
        if not (run_dir / BEST_INFO).exists():
            raise BaliInputError(run_dir / BEST_INFO, "no best-dev weights: select best-dev "
                                 "needs a run with validation (pretrain.validate.every > 0)")
        weights = run_dir / BEST_WEIGHTS
        chosen = {"select": "best-dev", **json.loads((run_dir / BEST_INFO).read_text())}
    config = json.loads((run_dir / "config.json").read_text())
    mcfg = ModelConfig(**config["model"])
    relations = json.loads((Path(config["shards"]) / "relations.json").read_text())
    model = build_model(mcfg, len(relations))
    model.load_state_dict(load_file(str(weights)))
    out_dir.mkdir(parents=True, exist_ok=True)
    model.lm.save_pretrained(out_dir, safe_serialization=True)
    copied = add_base_tensors(out_dir, resolve_model(mcfg.model), model.lm)
    AutoTokenizer.from_pretrained(config["shards_meta"]["tokenizer_dir"]).save_pretrained(out_dir)
    extra = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("lm.")}
    if extra:
        save_file(extra, str(out_dir / "bali_graph.safetensors"))
    metrics = (run_dir / "metrics.jsonl").read_text().splitlines()
    last = json.loads(metrics[-1]) if metrics else {}
    (out_dir / "bali_export.json").write_text(json.dumps(chosen) + "\n")
    write_card(run_dir, out_dir)
    return {"out_dir": str(out_dir), "graph_tensors": len(extra), "weights": chosen,
            "base_tensors_copied": copied, "last_metrics": last}


def read_checkpoint(model_dir: Path) -> dict:
    """All tensors of a Hugging Face checkpoint directory (safetensors, single or sharded;
    else ``pytorch_model.bin`` read with ``weights_only``), by their names in the files."""
    import torch
    from safetensors.torch import load_file

    for index_name, single in (("model.safetensors.index.json", "model.safetensors"),
                               ("pytorch_model.bin.index.json", "pytorch_model.bin")):
        index = model_dir / index_name
        files = (sorted(set(json.loads(index.read_text())["weight_map"].values()))
                 if index.exists() else [single] if (model_dir / single).exists() else [])
        if files:
            out = {}
            for name in files:
                path = model_dir / name
                out.update(load_file(str(path)) if name.endswith(".safetensors") else
                           torch.load(path, map_location="cpu", weights_only=True))
            return out
    raise BaliInputError(model_dir, "no model.safetensors or pytorch_model.bin weights")


def base_only_tensors(base: dict, lm) -> dict:
    """The tensors of the ``base`` checkpoint that the trained ``lm`` has no tensor for, named
    as in ``lm``'s files: a checkpoint of the bare encoder (no key under ``lm``'s
    ``base_model_prefix``, e.g. ``pooler.dense.weight``) gets the prefix
    (``bert.pooler.dense.weight``); a checkpoint with heads keeps its names."""
    prefix = lm.base_model_prefix
    bare = not any(k.startswith(f"{prefix}.") for k in base)
    have = set(lm.state_dict())
    out = {}
    for key, tensor in base.items():
        name = f"{prefix}.{key}" if bare else key
        if name not in have and key not in have:
            out[name] = tensor.contiguous()
    return out


def add_base_tensors(out_dir: Path, base_dir: Path, lm) -> list[str]:
    """Add :func:`base_only_tensors` of ``base_dir`` to the weights ``lm.save_pretrained``
    wrote into ``out_dir`` (a sharded export gets one more shard in its index); returns their
    names."""
    from safetensors.torch import load_file, save_file

    extra = base_only_tensors(read_checkpoint(base_dir), lm)
    if not extra:
        return []
    index = out_dir / "model.safetensors.index.json"
    if index.exists():
        shard = "model-base-tensors.safetensors"
        save_file(extra, str(out_dir / shard), metadata={"format": "pt"})
        meta = json.loads(index.read_text())
        meta["weight_map"].update({k: shard for k in extra})
        index.write_text(json.dumps(meta, indent=2) + "\n")
    else:
        path = out_dir / "model.safetensors"
        save_file({**load_file(str(path)), **extra}, str(path), metadata={"format": "pt"})
    return sorted(extra)
