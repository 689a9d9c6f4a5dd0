"""Geometry of a model's concept-name embedding space (paper §5.3.2's open question: why does
BALI lower SapBERT's linking?).

Names of a dictionary (:func:`bali.evaluate.el_zeroshot.read_dictionary`; a concept is one
distinct ids list) are embedded as in zero-shot linking (``cls``/``mean`` pooling,
L2-normalised ``f(x)``). From concepts with at least two names, at most ``max_concepts`` are
drawn (seeded) with at most ``max_names_per_concept`` names each. Then, with positive pairs
P = the pairs of distinct names of one concept, and N = pairs of names of different concepts:

- alignment (Wang & Isola 2020, Eq. 4, alpha = 2): ``E_{(x,y) in P} ||f(x) - f(y)||^2``
  (lower: synonyms closer);
- uniformity (Eq. 5, t = 2): ``log E_{x != y} exp(-2 ||f(x) - f(y)||^2)`` over all pairs of
  the drawn names (lower: more uniform on the sphere);
- intra_cos = mean cosine over P, inter_cos = mean cosine over N; their difference ``gap``.

``||f(x) - f(y)||^2 = 2 - 2 cos`` on the unit sphere, so every term is computed from one
Gram matrix of the drawn names.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import torch

from bali.errors import OptionError


@dataclass(frozen=True)
class GeometryOptions:
    """Options of :func:`evaluate_geometry`."""

    pooling: str = field(default="mean", metadata={"help": "cls or mean pooling of the LM"})
    max_concepts: int = field(default=1000, metadata={
        "help": "concepts (with >= 2 names) drawn from the dictionary"})
    max_names_per_concept: int = field(default=4, metadata={"help": "names per drawn concept"})
    max_length: int = field(default=25, metadata={"help": "tokens per name"})
    batch_size: int = field(default=256, metadata={"help": "names per encoder batch"})


def draw_names(dictionary: pl.DataFrame, opts: GeometryOptions, seed: int) -> pl.DataFrame:
    """``(name, concept)`` rows of the drawn concepts (module docstring), concept = 0..C-1."""
    rng = np.random.default_rng([seed, 271828])
    grouped = (dictionary.select("name", key=pl.col("ids").list.sort().list.join("|"))
               .unique(maintain_order=True).group_by("key", maintain_order=True)
               .agg("name").filter(pl.col("name").list.len() >= 2).sort("key"))
    if grouped.height == 0:
        raise OptionError("no concept of the dictionary has two names")
    take = np.sort(rng.choice(grouped.height, min(opts.max_concepts, grouped.height),
                              replace=False))
    rows = []
    for concept, names in enumerate(grouped[take.tolist()]["name"].to_list()):
        keep = rng.choice(len(names), min(len(names), opts.max_names_per_concept), replace=False)
        rows += [(names[i], concept) for i in np.sort(keep)]
    return pl.DataFrame(rows, schema={"name": pl.String, "concept": pl.Int64}, orient="row")


def geometry_metrics(vectors: torch.Tensor, concept: torch.Tensor) -> dict[str, float]:
    """The metrics of the module docstring for unit ``vectors [n, d]`` and ``concept [n]``."""
    cos = (vectors @ vectors.T).double().clamp(-1.0, 1.0)
    off = ~torch.eye(len(concept), dtype=torch.bool)
    same = (concept[:, None] == concept[None, :]) & off
    other = concept[:, None] != concept[None, :]
    sq = 2.0 - 2.0 * cos
    return {"alignment": float(sq[same].mean()),
            "uniformity": float(torch.log(torch.exp(-2.0 * sq[off]).mean())),
            "intra_cos": float(cos[same].mean()), "inter_cos": float(cos[other].mean()),
            "gap": float(cos[same].mean() - cos[other].mean())}


def evaluate_geometry(model_dir: Path, dictionary_path: Path, opts: GeometryOptions, *,
                      benchmark: str = "geometry", seed: int = 0,
                      labels: dict[str, str] | None = None) -> dict:
    """The geometry metrics of ``model_dir`` on the names of ``dictionary_path``, as a
    results record (:mod:`bali.evaluate.results`). Logs one summary line
    (:class:`bali.progress.Progress`, counting the names encoded)."""
    from transformers import AutoModel, AutoTokenizer

    from bali.evaluate.el_zeroshot import ELOptions, encode, read_dictionary
    from bali.evaluate.results import record
    from bali.progress import Progress

    if opts.pooling not in ("cls", "mean"):
        raise OptionError(f"pooling must be cls or mean, not {opts.pooling!r}")
    t0 = time.perf_counter()
    drawn = draw_names(read_dictionary(dictionary_path), opts, seed)
    n_concepts = int(drawn["concept"].n_unique())
    desc = "geometry" if benchmark == "geometry" else f"geometry {benchmark}"
    with Progress(desc, total=drawn.height, unit="name") as bar:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModel.from_pretrained(model_dir).eval()
        enc = ELOptions(pooling=opts.pooling, max_length=opts.max_length,
                        batch_size=opts.batch_size)
        vectors = encode(drawn["name"].to_list(), model, tokenizer, enc, progress=bar.update)
        metrics = geometry_metrics(vectors, torch.as_tensor(drawn["concept"].to_numpy()))
        bar.set_postfix(f"gap {metrics['gap']:.4f}, alignment {metrics['alignment']:.4f}, "
                        f"uniformity {metrics['uniformity']:.4f}: {n_concepts:,} concepts")
    return record(task="geometry", benchmark=benchmark, model=model_dir, seed=seed,
                  labels=labels, metrics=metrics, primary="gap", options=asdict(opts),
                  data=[dictionary_path], started=t0,
                  counts={"concepts": n_concepts, "names": drawn.height})
