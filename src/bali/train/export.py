"""``bali export``: a pretraining run -> a Hugging Face model directory.

Writes the text encoder with ``save_pretrained`` (safetensors; ``AutoModel.from_pretrained``
loads the encoder, ``AutoModelForMaskedLM`` the encoder with its MLM head), the tokenizer,
``bali_graph.safetensors`` (graph encoder, entity pooling and alignment-head weights, for
analysis; the paper discards them after pretraining) and the ``README.md`` run card
(:mod:`bali.train.card`). Weights are read from ``model.safetensors`` (the last
step; ``select="last"``) or ``best.safetensors`` (the step with the best dev Acc@1 of the
run's validation, ``select="best-dev"``), never from an untrusted pickle.
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
    AutoTokenizer.from_pretrained(config["shards_meta"]["tokenizer_dir"]).save_pretrained(out_dir)
    extra = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("lm.")}
    if extra:
        save_file(extra, str(out_dir / "bali_graph.safetensors"))
    metrics = (run_dir / "metrics.jsonl").read_text().splitlines()
    last = json.loads(metrics[-1]) if metrics else {}
    (out_dir / "bali_export.json").write_text(json.dumps(chosen) + "\n")
    write_card(run_dir, out_dir)
    return {"out_dir": str(out_dir), "graph_tensors": len(extra), "weights": chosen,
            "last_metrics": last}
