"""Training batches from the shards: masked sentences, entities, and star subgraphs.

Batch ``n`` of the run holds the sentences of batch ``j = n mod J`` of epoch ``e = n // J``
(``J = |pool| // B`` batches per epoch, ``B`` the batch size; ``pool`` is the *train* split:
``dev_sentences`` sentences drawn by a seeded generator are held out for validation,
``split="dev"`` serves them in order, ``pool[j*B:(j+1)*B]``). With ``p_e`` the permutation of
``pool`` seeded by (seed, e) and its first ``J*B`` sentences kept (the last partial batch is
dropped)::

    bucket = 0:  batch j = p_e[j*B:(j+1)*B]
    bucket = k:  s_e = p_e with each window s_e[i*k*B:(i+1)*k*B] stably sorted by length
                 (tokens of input_ids; the last window is shorter, a multiple of B),
                 batch j = s_e[q_e[j]*B:(q_e[j]+1)*B], q_e a permutation of J seeded by
                 (seed, 7, e)

so each epoch still sees every kept sentence once, batches hold sentences of similar length
(little padding), and the order of the batches stays random. Under data parallelism rank ``r``
of ``w`` takes global batches ``n*w + r``. Every random choice of the batch (MLM masking,
neighbour sampling, which name of a node) is drawn from a generator seeded by (seed, n), so a
batch is the same whatever the number of DataLoader workers and a resumed run sees exactly the
batches it would have seen: an epoch's batch list is a pure function of (seed, e, pool, lengths),
computed once per epoch and process.

An *entity* is one (sentence, concept) pair; its mentions pool together. The concepts of
the batch are unique (``concepts``): a concept mentioned by several sentences has one star
subgraph and all its entities are positives of it. Each concept's star has its own node
slots (centre + up to ``max_neighbors`` pool neighbours sampled without replacement), so
message passing never leaks between stars. With ``lexical`` (:mod:`bali.train.negatives`),
the lexical confusers of the batch's concepts follow as extra slots without edges
(``lexical_slot``; owner node in ``slot_node``; one slot per distinct name not already a slot),
the model's hard negatives. The names of all slots are deduplicated, so each distinct name is
encoded once per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bali.errors import OptionError
from bali.shards import MappedIpc


@dataclass(frozen=True)
class SpecialIds:
    pad: int
    cls: int
    sep: int
    mask: int
    vocab_size: int


def _pad(rows: list, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad int rows -> (ids [N, L] long, mask [N, L] bool); L = longest row, at least 1."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    width = int(lengths.max(initial=0)) or 1
    mask = np.arange(width) < lengths[:, None]
    ids = np.full((len(rows), width), pad, dtype=np.int64)
    if len(rows):
        ids[mask] = np.concatenate(rows)  # row-major: row after row
    return torch.from_numpy(ids), torch.from_numpy(mask)


class BatchDataset(torch.utils.data.Dataset):
    """``dataset[n]`` is the collated batch ``n`` of the run (see the module docstring)."""

    def __init__(self, shards, special: SpecialIds, batch_size: int, seed: int,
                 max_neighbors: int, mlm_probability: float, mask_tokens: bool = True,
                 mask_mentions: bool = True,
                 linearize=None, relation_ids: list[np.ndarray] | None = None,
                 linear_max_length: int = 128, num_batches: int | None = None,
                 rank: int = 0, world: int = 1, dev_sentences: int = 0, split: str = "train",
                 bucket: int = 0, centre_name: str = "random",
                 lexical: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None):
        self.shards = Path(shards)
        self.lexical = lexical  # (ptr, names, owners): bali.train.negatives
        self._rows = {f: MappedIpc(self.shards / f"{f}.arrow")  # each checks its file
                      for f in ("sentences", "nodes", "names")}
        self.special, self.batch_size, self.seed = special, batch_size, seed
        self.max_neighbors, self.mlm_probability = max_neighbors, mlm_probability
        self.mask_tokens, self.mask_mentions = mask_tokens, mask_mentions
        self.linearize, self.relation_ids = linearize, relation_ids
        self.linear_max_length = linear_max_length
        self.rank, self.world = rank, world
        self.split = split
        if centre_name not in ("random", "unlike-mention"):
            raise OptionError(f"centre_name must be random or unlike-mention, not {centre_name}")
        self.centre_name = centre_name
        self.pool = self.split_indices(len(self._rows["sentences"]), dev_sentences, seed)[split]
        self.per_epoch = len(self.pool) // batch_size
        if self.per_epoch == 0:
            raise OptionError(f"{shards}: {len(self.pool)} {split} sentences < batch size "
                             f"{batch_size}")
        self.num_batches = num_batches if num_batches is not None else self.per_epoch
        if bucket < 0:
            raise OptionError(f"bucket must be >= 0, not {bucket}")
        self.bucket = bucket if split == "train" else 0  # the dev split stays in order
        self.lengths = self._rows["sentences"].lengths("input_ids")[self.pool] \
            if self.bucket else None  # tokens per pool sentence, from the list offsets
        self._epoch, self._batches = None, None

    @classmethod
    def from_configs(cls, shards, mcfg, tcfg, special: SpecialIds, *, split: str = "train",
                     rank: int = 0, world: int = 1, linearize=None,
                     relation_ids: list[np.ndarray] | None = None,
                     lexical: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                     ) -> BatchDataset:
        """The dataset of a run (``bali.train.config.ModelConfig`` / ``TrainConfig``):
        ``tcfg.steps * tcfg.grad_accum`` train batches, or every dev batch."""
        return cls(shards, special, batch_size=tcfg.batch_size, seed=tcfg.seed,
                   max_neighbors=mcfg.max_neighbors, mlm_probability=mcfg.mlm_probability,
                   mask_tokens=mcfg.mlm_weight > 0, mask_mentions=mcfg.mask_mentions,
                   linearize=linearize, relation_ids=relation_ids,
                   linear_max_length=mcfg.linear_max_length,
                   num_batches=tcfg.steps * tcfg.grad_accum if split == "train" else None,
                   rank=rank, world=world,
                   dev_sentences=tcfg.validate_sentences if tcfg.validate_every else 0,
                   split=split, bucket=tcfg.bucket, centre_name=mcfg.centre_name,
                   lexical=lexical)

    def __len__(self) -> int:
        return self.num_batches

    @staticmethod
    def split_indices(n: int, dev: int, seed: int) -> dict[str, np.ndarray]:
        """Sentence indices of the ``train`` and ``dev`` splits: ``dev`` sentences drawn by a
        generator seeded by (seed, 424242), the rest (in order) train; ``dev=0``: all train."""
        if not 0 <= dev < n:
            raise OptionError(f"dev sentences must be in [0, {n}), not {dev}")
        held = np.sort(np.random.default_rng([seed, 424242]).choice(n, dev, replace=False)) \
            if dev else np.empty(0, dtype=np.int64)
        return {"train": np.setdiff1d(np.arange(n), held), "dev": held}

    def epoch_batches(self, epoch: int) -> np.ndarray:
        """Sentence indices of every train batch of ``epoch``, shape [J, B] (see the module
        docstring)."""
        b, kept = self.batch_size, self.per_epoch * self.batch_size
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.pool))[:kept]
        if self.bucket:
            length, width = self.lengths[order], self.bucket * b
            for w0 in range(0, kept, width):
                window = order[w0:w0 + width]
                order[w0:w0 + width] = window[np.argsort(length[w0:w0 + width],
                                                         kind="stable")]
        batches = self.pool[order].reshape(self.per_epoch, b)
        if self.bucket:
            batches = batches[np.random.default_rng([self.seed, 7, epoch]).permutation(
                self.per_epoch)]
        return batches

    def indices(self, n: int) -> np.ndarray:
        """Sentence indices of batch ``n``: the dev split in order, train shuffled per epoch."""
        epoch, j = divmod(n, self.per_epoch)
        if self.split == "dev":
            return self.pool[j * self.batch_size:(j + 1) * self.batch_size]
        if self._epoch != epoch:  # one batch list per epoch, not per batch
            self._batches, self._epoch = self.epoch_batches(epoch), epoch
        return self._batches[j]

    def _global(self, n: int) -> tuple[int, int]:
        """(global batch, random stream) of this rank's batch ``n``: train batch ``n`` of rank
        ``r`` is global batch ``n*w + r``; the dev batches are the same on every rank."""
        return (n, 2_000_003) if self.split == "dev" else (n * self.world + self.rank, 1_000_003)

    def sentence_indices(self, n: int) -> np.ndarray:
        """Sentence indices of this rank's batch ``n``."""
        return self.indices(self._global(n)[0])

    def __getitem__(self, n: int) -> dict[str, torch.Tensor]:
        g, stream = self._global(n)
        rng = np.random.default_rng([self.seed, stream, g])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        idx = self.indices(g)
        sp = self.special
        input_ids, attention = _pad(self._rows["sentences"].rows("input_ids", idx), sp.pad)
        batch = {"input_ids": input_ids, "attention_mask": attention}
        batch.update(self._entities(idx))
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
        avoid = self._mention_strings(input_ids, batch) \
            if self.centre_name == "unlike-mention" else None
        batch.update(self._graph(batch["concept_nodes"].tolist(), rng, avoid))
        return batch

    @staticmethod
    def _mention_strings(input_ids: torch.Tensor, batch: dict) -> list[set[tuple]]:
        """Per batch concept, the token tuples of its mentions (before any masking)."""
        concept = batch["entity_target"][batch["mention_entity"]].tolist()
        out: list[set[tuple]] = [set() for _ in range(len(batch["concept_nodes"]))]
        for c, b, s, e in zip(concept, batch["mention_batch"].tolist(),
                              batch["mention_start"].tolist(), batch["mention_end"].tolist(),
                              strict=True):
            out[c].add(tuple(input_ids[b, s:e].tolist()))
        return out

    def _unlike(self, slot_name: np.ndarray, centre: list[int], count: np.ndarray,
                flat: np.ndarray, avoid: list[set[tuple]], rng: np.random.Generator) -> None:
        """Redraw, in place, each centre name that spells one of its concept's mentions in the
        batch, uniformly among the concept's names that spell none (if it has any)."""
        first = np.cumsum(count) - count

        def bare(name_id: int) -> tuple:
            return tuple(self._bare_name(int(name_id)))

        for c, slot in enumerate(centre):
            if bare(slot_name[slot]) not in avoid[c]:
                continue
            other = [n for n in flat[first[slot]:first[slot] + count[slot]]
                     if bare(n) not in avoid[c]]
            if other:
                slot_name[slot] = other[int(rng.integers(len(other)))]

    def _entities(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        """Mentions of sentences ``idx`` -> entities (sentence, node) and the batch's unique
        concepts."""
        f = self._rows["sentences"]
        count, m_start = f.gather("mention_start", idx)
        _, m_end = f.gather("mention_end", idx)
        _, m_node = f.gather("mention_node", idx)
        m_batch = np.repeat(np.arange(len(idx), dtype=np.int64), count)
        # unique (sentence, node) pairs in lexicographic order = unique keys b * span + node
        span = int(m_node.max(initial=0)) + 1
        keys, m_entity = np.unique(m_batch * span + m_node, return_inverse=True)
        concepts, target = np.unique(keys % span, return_inverse=True)
        m_batch, m_entity, target, concepts = map(torch.from_numpy,
                                                  (m_batch, m_entity, target, concepts))
        return {"mention_batch": m_batch, "mention_start": torch.from_numpy(m_start),
                "mention_end": torch.from_numpy(m_end), "mention_entity": m_entity,
                "entity_target": target, "concept_nodes": concepts}

    def _graph(self, concepts: list[int], rng: np.random.Generator,
               avoid: list[set[tuple]] | None = None) -> dict[str, torch.Tensor]:
        """Star subgraphs: slots, edges, and the distinct names of the slots (``avoid``: the
        mention strings of each concept, for ``centre_name="unlike-mention"``)."""
        nodes = self._rows["nodes"]
        slot_node, src, dst, etype, centre = [], [], [], [], []
        for node, pool, rels in zip(concepts, nodes.rows("neighbor_nodes", concepts),
                                    nodes.rows("neighbor_relations", concepts), strict=True):
            c = len(slot_node)
            centre.append(c)
            slot_node.append(node)
            k = min(self.max_neighbors, len(pool))
            if k:  # one draw per concept, in concept order (the batch's random stream)
                pick = rng.choice(len(pool), size=k, replace=False)
                src.extend(range(c + 1, c + 1 + k))
                dst.extend([c] * k)
                etype.extend(rels[pick].tolist())
                slot_node.extend(pool[pick].tolist())
        # one name per slot: integers(0, counts) draws exactly what rng.choice(name_ids) would
        # draw slot after slot
        count, flat = nodes.gather("name_ids", slot_node)
        draw = rng.integers(0, count, dtype=np.int64)
        slot_name = flat[np.cumsum(count) - count + draw]
        if avoid is not None:
            self._unlike(slot_name, centre, count, flat, avoid, rng)
        lexical = np.zeros(len(slot_node), dtype=bool)
        if self.lexical is not None:  # extra slots outside every star (no edge, no draw)
            ptr, l_names, l_owners = self.lexical
            pick = np.concatenate([np.arange(ptr[v], ptr[v + 1]) for v in concepts])
            pick = pick[~np.isin(l_names[pick], slot_name)]
            l_name, first = np.unique(l_names[pick], return_index=True)
            slot_node.extend(l_owners[pick][first].tolist())
            slot_name = np.concatenate([slot_name, l_name])
            lexical = np.concatenate([lexical, np.ones(l_name.size, dtype=bool)])
        names, slot_name_idx = np.unique(slot_name, return_inverse=True)
        name_ids, name_mask = _pad(self._rows["names"].rows("input_ids", names),
                                   self.special.pad)
        out = {
            "name_input_ids": name_ids, "name_attention_mask": name_mask,
            "slot_name": torch.as_tensor(slot_name_idx, dtype=torch.long),
            "slot_node": torch.as_tensor(slot_node, dtype=torch.long),
            "edge_index": torch.tensor([src, dst], dtype=torch.long).reshape(2, -1),
            "edge_type": torch.tensor(etype, dtype=torch.long),
            "centre": torch.tensor(centre, dtype=torch.long),
        }
        if self.lexical is not None:
            out["lexical_slot"] = torch.from_numpy(lexical)
        if self.linearize is not None:
            out.update(self._linearized(slot_name.tolist(), src, dst, etype, centre))
        return out

    def _bare_name(self, name_id: int) -> list[int]:
        """Token ids of name ``name_id`` without [CLS], [SEP] and padding."""
        sp = self.special
        ids = self._rows["names"].list_row("input_ids", name_id).tolist()
        return [t for t in ids if t not in (sp.cls, sp.sep, sp.pad)]

    def _linearized(self, slot_name, src, dst, etype, centre) -> dict[str, torch.Tensor]:
        """``[CLS] s_v [SEP] s_u r s_v [SEP] ...`` per concept (graph_encoder=linear)."""
        sp, bare = self.special, self._bare_name

        edges: dict[int, list] = {c: [] for c in centre}
        for s, d, t in zip(src, dst, etype, strict=True):
            edges[d].append((bare(slot_name[s]), self.relation_ids[t].tolist()))
        rows = []
        for c in centre:
            rows.append(np.asarray(self.linearize(bare(slot_name[c]), edges[c], sp.cls, sp.sep,
                                                  self.linear_max_length)))
        ids, mask = _pad(rows, sp.pad)
        return {"linear_input_ids": ids, "linear_attention_mask": mask}
