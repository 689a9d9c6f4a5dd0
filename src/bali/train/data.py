"""Training batches from the shards: masked sentences, entities, and star subgraphs.

Batch ``n`` of the run holds sentences ``perm_e[j*B:(j+1)*B]`` of epoch ``e = n // J``
(``J`` batches per epoch, ``perm_e`` a permutation seeded by (seed, e), last partial batch
dropped; ``perm_e`` permutes the *train* split: ``dev_sentences`` sentences drawn by a seeded
generator are held out for validation, ``split="dev"`` serves them in order). Under data
parallelism rank ``r`` of ``w`` takes global batches ``n*w + r``. Every
random choice of the batch (MLM masking, neighbour sampling, which name of a
node) is drawn from a generator seeded by (seed, n), so a batch is the same whatever the
number of DataLoader workers and a resumed run sees exactly the batches it would have seen.

An *entity* is one (sentence, concept) pair; its mentions pool together. The concepts of
the batch are unique (``concepts``): a concept mentioned by several sentences has one star
subgraph and all its entities are positives of it. Each concept's star has its own node
slots (centre + up to ``max_neighbors`` pool neighbours sampled without replacement), so
message passing never leaks between stars. The names of all slots are deduplicated, so each
distinct name is encoded once per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bali.sample.tokenize import NodeTable, ShardDataset


@dataclass(frozen=True)
class SpecialIds:
    pad: int
    cls: int
    sep: int
    mask: int
    vocab_size: int


def _pad(rows: list[np.ndarray], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad int rows -> (ids [N, L] long, mask [N, L] bool)."""
    width = max((len(r) for r in rows), default=1) or 1
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.as_tensor(np.asarray(r, dtype=np.int64))
        mask[i, : len(r)] = True
    return ids, mask


class BatchDataset(torch.utils.data.Dataset):
    """``dataset[n]`` is the collated batch ``n`` of the run (see the module docstring)."""

    def __init__(self, shards, special: SpecialIds, batch_size: int, seed: int,
                 max_neighbors: int, mlm_probability: float, mask_tokens: bool = True,
                 mask_mentions: bool = True,
                 linearize=None, relation_ids: list[np.ndarray] | None = None,
                 linear_max_length: int = 128, num_batches: int | None = None,
                 rank: int = 0, world: int = 1, dev_sentences: int = 0, split: str = "train"):
        self.sentences = ShardDataset(shards)
        self.nodes = NodeTable(shards)
        self.special, self.batch_size, self.seed = special, batch_size, seed
        self.max_neighbors, self.mlm_probability = max_neighbors, mlm_probability
        self.mask_tokens, self.mask_mentions = mask_tokens, mask_mentions
        self.linearize, self.relation_ids = linearize, relation_ids
        self.linear_max_length = linear_max_length
        self.rank, self.world = rank, world
        self.split = split
        self.pool = self.split_indices(len(self.sentences), dev_sentences, seed)[split]
        self.per_epoch = len(self.pool) // batch_size
        if self.per_epoch == 0:
            raise ValueError(f"{shards}: {len(self.pool)} {split} sentences < batch size "
                             f"{batch_size}")
        self.num_batches = num_batches if num_batches is not None else self.per_epoch
        self._perm_epoch, self._perm = None, None

    def __len__(self) -> int:
        return self.num_batches

    @staticmethod
    def split_indices(n: int, dev: int, seed: int) -> dict[str, np.ndarray]:
        """Sentence indices of the ``train`` and ``dev`` splits: ``dev`` sentences drawn by a
        generator seeded by (seed, 424242), the rest (in order) train; ``dev=0``: all train."""
        if not 0 <= dev < n:
            raise ValueError(f"dev sentences must be in [0, {n}), not {dev}")
        held = np.sort(np.random.default_rng([seed, 424242]).choice(n, dev, replace=False)) \
            if dev else np.empty(0, dtype=np.int64)
        return {"train": np.setdiff1d(np.arange(n), held), "dev": held}

    def indices(self, n: int) -> np.ndarray:
        """Sentence indices of batch ``n``: the dev split in order, train shuffled per epoch."""
        epoch, j = divmod(n, self.per_epoch)
        if self.split == "dev":
            return self.pool[j * self.batch_size:(j + 1) * self.batch_size]
        if self._perm_epoch != epoch:  # one permutation per epoch, not per batch
            self._perm = self.pool[np.random.default_rng([self.seed, epoch]).permutation(
                len(self.pool))]
            self._perm_epoch = epoch
        return self._perm[j * self.batch_size:(j + 1) * self.batch_size]

    def __getitem__(self, n: int) -> dict[str, torch.Tensor]:
        g = n * self.world + self.rank  # this rank's share of the global batch sequence
        stream = 1_000_003
        if self.split == "dev":  # the same dev batches on every rank, from their own stream
            g, stream = n, 2_000_003
        rng = np.random.default_rng([self.seed, stream, g])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        items = [self.sentences[int(i)] for i in self.indices(g)]
        sp = self.special
        input_ids, attention = _pad([it["input_ids"].numpy() for it in items], sp.pad)
        batch = {"input_ids": input_ids, "attention_mask": attention}
        batch.update(self._entities(items))
        if self.mask_tokens:
            from bali.model.losses.mlm import mask_tokens

            keep = ~attention | (input_ids == sp.cls) | (input_ids == sp.sep)
            if not self.mask_mentions:  # mention tokens are never corrupted
                from bali.model.pooling import entity_tokens

                tok_batch, tok_pos, _ = entity_tokens(
                    batch["mention_batch"], batch["mention_start"], batch["mention_end"],
                    batch["mention_entity"])
                keep[tok_batch, tok_pos] = True
            batch["input_ids"], batch["mlm_labels"] = mask_tokens(
                input_ids, keep, sp.vocab_size, sp.mask, self.mlm_probability, gen)
        batch.update(self._graph(batch["concept_nodes"].tolist(), rng))
        return batch

    def _entities(self, items: list[dict]) -> dict[str, torch.Tensor]:
        """Mentions -> entities (sentence, node) and the batch's unique concepts."""
        m_batch, m_start, m_end, m_node = [], [], [], []
        for b, it in enumerate(items):
            m_batch.append(torch.full_like(it["mention_node"], b))
            m_start.append(it["mention_start"])
            m_end.append(it["mention_end"])
            m_node.append(it["mention_node"])
        m_batch, m_node = torch.cat(m_batch), torch.cat(m_node)
        pairs, m_entity = torch.unique(torch.stack([m_batch, m_node]), dim=1, return_inverse=True)
        concepts, target = torch.unique(pairs[1], return_inverse=True)
        return {"mention_batch": m_batch, "mention_start": torch.cat(m_start),
                "mention_end": torch.cat(m_end), "mention_entity": m_entity,
                "entity_target": target, "concept_nodes": concepts}

    def _graph(self, concepts: list[int], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Star subgraphs: slots, edges, and the distinct names of the slots."""
        slot_node, src, dst, etype, centre = [], [], [], [], []
        for node in concepts:
            c = len(slot_node)
            centre.append(c)
            slot_node.append(node)
            pool, rels = self.nodes.neighbors(node)
            k = min(self.max_neighbors, len(pool))
            for j in (rng.choice(len(pool), size=k, replace=False) if k else ()):
                src.append(len(slot_node))
                dst.append(c)
                etype.append(int(rels[j]))
                slot_node.append(int(pool[j]))
        slot_name = [int(rng.choice(self.nodes.name_ids(n))) for n in slot_node]
        names, slot_name_idx = np.unique(np.asarray(slot_name, dtype=np.int64),
                                         return_inverse=True)
        name_ids, name_mask = _pad([self.nodes.name_input_ids(int(i)) for i in names],
                                   self.special.pad)
        out = {
            "name_input_ids": name_ids, "name_attention_mask": name_mask,
            "slot_name": torch.as_tensor(slot_name_idx, dtype=torch.long),
            "slot_node": torch.as_tensor(slot_node, dtype=torch.long),
            "edge_index": torch.tensor([src, dst], dtype=torch.long).reshape(2, -1),
            "edge_type": torch.tensor(etype, dtype=torch.long),
            "centre": torch.tensor(centre, dtype=torch.long),
        }
        if self.linearize is not None:
            out.update(self._linearized(slot_name, src, dst, etype, centre))
        return out

    def _linearized(self, slot_name, src, dst, etype, centre) -> dict[str, torch.Tensor]:
        """``[CLS] s_v [SEP] s_u r s_v [SEP] ...`` per concept (graph_encoder=linear)."""
        sp = self.special

        def bare(name_id: int) -> list[int]:
            ids = self.nodes.name_input_ids(name_id).tolist()
            return [t for t in ids if t not in (sp.cls, sp.sep, sp.pad)]

        edges: dict[int, list] = {c: [] for c in centre}
        for s, d, t in zip(src, dst, etype, strict=True):
            edges[d].append((bare(slot_name[s]), self.relation_ids[t].tolist()))
        rows = []
        for c in centre:
            rows.append(np.asarray(self.linearize(bare(slot_name[c]), edges[c], sp.cls, sp.sep,
                                                  self.linear_max_length)))
        ids, mask = _pad(rows, sp.pad)
        return {"linear_input_ids": ids, "linear_attention_mask": mask}
