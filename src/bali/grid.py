"""The experiment grid of a validated workflow config: which pretraining and evaluation jobs
exist (pure functions; the Snakefile expands them into wildcards).

- pretraining runs: ``(model, variant)`` for every variant and every model it lists
  (default all models); options = ``pretrain`` | ``models[m].pretrain`` |
  ``variants[v].pretrain`` (later wins), checked against the ``pretrain`` schema;
- ``only`` narrows both to the listed models, variants (``base`` included) and benchmarks
  (an empty list keeps all), so one model, variant or benchmark is a config change;
- evaluation jobs: ``(benchmark, model, variant, seed)`` for every benchmark, every
  pretraining run plus ``(model, "base")`` per model when ``evaluate.baseline``, filtered by
  the benchmark's ``models`` / ``variants`` lists, times its ``seeds`` (default
  ``evaluate.seeds``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from bali.config import DEFAULT_SCHEMA, ConfigError, load_schema

BASE = "base"


def checkpoint(config: Mapping, model: str) -> str:
    """The checkpoint (directory, hub name or packaged name) of base model ``model``."""
    spec = config["models"][model]
    return spec if isinstance(spec, str) else spec["checkpoint"]


def _selected(config: Mapping, key: str, known: list[str]) -> list[str]:
    """``known`` narrowed by ``only.<key>`` (empty: all), order kept; unknown names fail."""
    chosen = config["only"][key]
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ConfigError(f"config: only.{key}: unknown {unknown}")
    return [k for k in known if not chosen or k in chosen]


def pretrain_runs(config: Mapping) -> list[tuple[str, str]]:
    """``(model, variant)`` of every pretraining job, in config order."""
    models = list(config["models"])
    selected = _selected(config, "models", models)
    runs = []
    for variant in _selected(config, "variants", [BASE, *config["variants"]]):
        if variant == BASE:
            continue
        chosen = config["variants"][variant].get("models", models)
        unknown = sorted(set(chosen) - set(models))
        if unknown:
            raise ConfigError(f"config: variants.{variant}.models: unknown models {unknown}")
        runs += [(m, variant) for m in selected if m in chosen]
    return runs


def pretrain_options(config: Mapping, model: str, variant: str,
                     schema_path: str | Path = DEFAULT_SCHEMA) -> dict[str, Any]:
    """Merged pretraining options of one run (module docstring), validated."""
    spec = config["models"][model]
    merged = {**config["pretrain"], **({} if isinstance(spec, str) else spec["pretrain"]),
              **config["variants"][variant]["pretrain"]}
    schema = load_schema(schema_path)["properties"]["pretrain"]
    error = jsonschema.exceptions.best_match(
        jsonschema.validators.validator_for(schema)(schema).iter_errors(merged))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path)
        raise ConfigError(f"config: pretrain options of {model}/{variant}: {where}: "
                          f"{error.message}")
    return merged


def eval_jobs(config: Mapping) -> list[tuple[str, str, str, int]]:
    """``(benchmark, model, variant, seed)`` of every evaluation job."""
    ev = config["evaluate"]
    base = ev["baseline"] and BASE in _selected(config, "variants", [BASE, *config["variants"]])
    models = _selected(config, "models", list(config["models"]))
    runs = ([(m, BASE) for m in models] if base else []) + pretrain_runs(config)
    jobs = []
    for bench in _selected(config, "benchmarks", list(ev["benchmarks"])):
        spec = ev["benchmarks"][bench]
        for key, known in (("models", set(config["models"])),
                           ("variants", {*config["variants"], BASE})):
            unknown = sorted(set(spec.get(key, [])) - known)
            if unknown:
                raise ConfigError(f"config: evaluate.benchmarks.{bench}.{key}: unknown {unknown}")
        for model, variant in runs:
            if model in spec.get("models", [model]) and variant in spec.get("variants", [variant]):
                jobs += [(bench, model, variant, s) for s in spec.get("seeds", ev["seeds"])]
    return jobs
