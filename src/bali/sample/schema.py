"""Tables of the sampling stage (Parquet).

sample          the sampled sentences: the ``sentences`` schema of :mod:`bali.text.schema`
                (doc_id, sentence_id, start, end, text, mentions[{start, end, cui}]) with only
                mentions of KG nodes kept; sorted by (doc_id, sentence_id)
concept_counts  cui: str, candidates: u32 (sentences mentioning it before sampling),
                sampled: u32 (sampled sentences mentioning it); sorted by cui
subgraphs       cui: str (a concept of the sample), degree: u32 (neighbours after filters),
                neighbors: list[struct{cui: str, relation: str, direction: str}] -- a seeded
                random pool of up to ``pool_size`` neighbours in priority order (training
                samples ``pretrain.max_neighbors`` of them per step); direction is ``out``
                for an edge (cui, r, n) and ``in`` for (n, r, cui); relation = relation_attr
                or relation
nodes           cui: str, names: list[str] (every KG name, preferred first) for every concept
                of the sample and every pool neighbour; sorted by cui (row index = node id)
"""

from __future__ import annotations

import polars as pl

from bali.text.schema import SENTENCES

SAMPLE = SENTENCES
CONCEPT_COUNTS = {"cui": pl.String(), "candidates": pl.UInt32(), "sampled": pl.UInt32()}
NEIGHBOR = pl.Struct({"cui": pl.String(), "relation": pl.String(), "direction": pl.String()})
SUBGRAPHS = {"cui": pl.String(), "degree": pl.UInt32(), "neighbors": pl.List(NEIGHBOR)}
NODES = {"cui": pl.String(), "names": pl.List(pl.String())}
