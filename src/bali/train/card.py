"""The run card of an exported model: ``README.md``, a Hugging Face model card.

YAML front matter (``library_name``, ``base_model``, ``tags``, and a ``model-index`` with
the evaluation results given), then: what the model is (base model, variant, objective),
the data it was trained on with counts (the training shards' ``meta.json``: sentences,
mentions, tokens, KG nodes and names), the pretraining (steps, batch, learning rates, wall
time, samples/s), the dev metrics (step 0 = the base model, the exported step, the last
step), the evaluation results that exist for it (results JSONs), and the full configuration.
``bali export`` writes it without evaluations; ``bali card`` rewrites it once they exist.
"""

from __future__ import annotations

import json
from pathlib import Path


def _pct(x) -> str:
    return f"{100 * x:.2f}" if isinstance(x, int | float) else "–"


def _metric(task: str, value: float) -> str:
    """Scores in percent; the geometry's distances and cosines as they are."""
    return f"{value:.4f}" if task == "geometry" else _pct(value)


def _front_matter(m: dict, variant: str, results: list[dict]) -> list[str]:
    """The YAML front matter lines (``---`` ... ``---``): library, base model, tags, and a
    ``model-index`` of the numeric metrics (rounded to 4 places) when there are results."""
    import yaml

    index = [{"task": {"type": r["task"]}, "dataset": {"name": r["benchmark"]},
              "metrics": [{"type": k, "value": round(v, 4)} for k, v in r["metrics"].items()
                          if isinstance(v, int | float)]} for r in results]
    front = {"library_name": "transformers", "base_model": m["model"],
             "tags": ["bali", "biomedical", "knowledge-graph", "masked-lm"]}
    if index:
        front["model-index"] = [{"name": f"bali-{variant or m['graph_encoder']}",
                                 "results": index}]
    return ["---", *yaml.safe_dump(front, sort_keys=False).splitlines(), "---"]


def _about(config: dict, variant: str) -> list[str]:
    """Title, what the model is, and the training data counts (``–`` where unknown)."""
    m = config["model"]
    counts = config.get("shards_meta", {}).get("counts", {})
    return [f"# BALI-pretrained {m['model']}" + (f" ({variant})" if variant else ""), "",
            "Text encoder aligned with a knowledge-graph encoder by BALI pretraining (SIGIR "
            f"2025): masked language modelling (weight {m['mlm_weight']}) plus "
            f"{m['alignment']} alignment (weight {m['align_weight']}, tau "
            f"{m['temperature']}) of entity mentions ({m['pooling']} pooling) with "
            f"{m['graph_encoder']} node representations of 1-hop subgraphs (<= "
            f"{m['max_neighbors']} neighbours). Load with "
            "`AutoModel.from_pretrained(this_dir)`.", "",
            "## Training data", "",
            "| sentences | mentions | tokens | KG nodes | names | relations |",
            "|---:|---:|---:|---:|---:|---:|",
            "| " + " | ".join(f"{counts[k]:,}" if k in counts else "–" for k in
                             ("sentences", "mentions", "tokens", "nodes", "names",
                              "relations")) + " |", "",
            f"Shards: `{config.get('shards', '')}`.", ""]


def _pretraining(t: dict, rows: list[dict], chosen: dict) -> list[str]:
    """Steps, batch, learning rates, wall time, mean samples/s and the final losses (the last
    row with a ``loss``), then the exported weights' choice."""
    train = [r for r in rows if "loss" in r]
    last = train[-1] if train else {}
    speed = [r["samples_per_s"] for r in train if "samples_per_s" in r]
    return ["## Pretraining", "",
            f"{last.get('step', '–')} of {t['steps']} steps, batch {t['batch_size']} x "
            f"{t['grad_accum']} (accumulation), lr {t['lr_lm']} (LM) / {t['lr_other']} "
            f"(other), seed {t['seed']}, backend {t['backend']}; wall time "
            f"{last.get('elapsed_s', '–')} s, mean "
            f"{sum(speed) / len(speed) if speed else 0:.1f} samples/s. Final losses: "
            f"total {last.get('loss', '–')}, MLM {last.get('mlm_loss', '–')}, alignment "
            f"{last.get('align_loss', '–')}.", "",
            f"Exported weights: `{json.dumps(chosen)}`.", ""]


def _dev_metrics(rows: list[dict]) -> list[str]:
    """One table row per validation (rows with ``dev_acc1``), in percent; none without."""
    dev = [r for r in rows if "dev_acc1" in r]
    if not dev:
        return []
    return ["## Dev metrics (validation during pretraining)", "",
            "| step | dev Acc@1 | dev Acc@5 | dev align acc |", "|---:|---:|---:|---:|",
            *(f"| {r['step']} | {_pct(r.get('dev_acc1'))} | {_pct(r.get('dev_acc5'))} | "
              f"{_pct(r.get('dev_align_acc'))} |" for r in dev),
            "", "Step 0 is the base model.", ""]


def _evaluation(results: list[dict]) -> list[str]:
    """One row per evaluation record (its numeric metrics, :func:`_metric`), or a note."""
    lines = ["## Evaluation", "", "Scores in percent (geometry: raw values).", ""]
    if not results:
        return [*lines, "No evaluation results yet (`bali card` adds them)."]
    return [*lines, "| benchmark | task | seed | metrics |", "|---|---|---:|---|",
            *(f"| {r['benchmark']} | {r['task']} | {r['seed']} | " + ", ".join(
                f"{k} {_metric(r['task'], v)}" for k, v in r["metrics"].items()
                if isinstance(v, int | float)) + " |" for r in results)]


def model_card(config: dict, rows: list[dict], chosen: dict, variant: str = "",
               results: list[dict] = ()) -> str:
    """The card's Markdown (module docstring) from a run's ``config.json``, its metrics rows,
    the exported weights' choice (``bali_export.json``) and evaluation records."""
    lines = [*_front_matter(config["model"], variant, results), *_about(config, variant),
             *_pretraining(config["train"], rows, chosen), *_dev_metrics(rows),
             *_evaluation(results),
             "", "## Configuration", "", "```json",
             json.dumps({k: config[k] for k in ("model", "train", "shards") if k in config},
                        indent=2), "```", ""]
    return "\n".join(lines)


def write_card(run_dir: Path, model_dir: Path, result_files: list[Path] = (),
               variant: str = "") -> Path:
    """(Re)write ``model_dir/README.md`` from the run and the given results JSONs."""
    from bali.evaluate.results import read_records
    from bali.io import atomic_paths
    from bali.report.plots import read_metrics

    config = json.loads((run_dir / "config.json").read_text())
    chosen = json.loads((model_dir / "bali_export.json").read_text())
    records = read_records(list(result_files)) if result_files else []
    card = model_card(config, read_metrics(run_dir), chosen, variant, records)
    with atomic_paths(model_dir / "README.md") as (tmp,):
        tmp.write_text(card)
    return model_dir / "README.md"
