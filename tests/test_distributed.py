"""Global negatives: InfoNCE over all-gathered rows of 2 gloo ranks equals the single-process
loss on the concatenated batch, in value and in (data-parallel averaged) gradient."""

from __future__ import annotations

import types

import torch

from bali import distributed as dist
from bali.model.bali import BaliModel
from bali.model.config import ModelConfig
from bali.model.losses import InfoNCELoss

DIM, WORLD = 8, 2


def _shard(rank: int) -> dict:
    """Rank ``rank``'s batch: sizes differ by rank, concepts disjoint across ranks (ids
    10r + k), 2 neighbour slots per concept, one neighbour shared with the other rank."""
    g = torch.Generator().manual_seed(rank)
    n_concepts, n_entities = 3 + rank, 5 + 2 * rank
    slot_node, centre = [], []
    for c in range(n_concepts):
        centre.append(len(slot_node))
        slot_node += [10 * rank + c, 10 * rank + (c + 1) % n_concepts, 99]
    target = torch.arange(n_entities) % n_concepts
    return {"text": torch.randn(n_entities, DIM, generator=g),
            "graph": torch.randn(n_concepts, DIM, generator=g),
            "x": torch.randn(len(slot_node), DIM, generator=g),
            "batch": {"entity_target": target,
                      "concept_nodes": torch.arange(n_concepts) + 10 * rank,
                      "centre": torch.tensor(centre), "slot_node": torch.tensor(slot_node)}}


def _concatenated(shards: list[dict]) -> dict:
    batch, c_off, s_off = {k: [] for k in shards[0]["batch"]}, 0, 0
    for sh in shards:
        b = sh["batch"]
        batch["entity_target"].append(b["entity_target"] + c_off)
        batch["centre"].append(b["centre"] + s_off)
        batch["concept_nodes"].append(b["concept_nodes"])
        batch["slot_node"].append(b["slot_node"])
        c_off, s_off = c_off + len(b["concept_nodes"]), s_off + len(b["slot_node"])
    return {"batch": {k: torch.cat(v) for k, v in batch.items()},
            **{k: torch.cat([sh[k] for sh in shards]) for k in ("text", "graph", "x")}}


def _loss(shard: dict, training: bool = True):
    """BaliModel.align_loss on leaf copies of the shard: (loss, {name: grad})."""
    stub = types.SimpleNamespace(cfg=ModelConfig(), alignment=InfoNCELoss(), training=training)
    stub.hard_negatives = lambda b, x: BaliModel.hard_negatives(stub, b, x)
    leaves = {k: shard[k].clone().requires_grad_() for k in ("text", "graph", "x")}
    loss = BaliModel.align_loss(stub, leaves["text"], leaves["graph"], shard["batch"],
                                leaves["x"])
    loss.backward()
    return loss.detach(), {k: v.grad for k, v in leaves.items()}


def _worker(rank: int, port: int, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}",
                                         rank=rank, world_size=WORLD)
    loss, grads = _loss(_shard(rank))
    torch.save({"loss": loss, "grads": grads}, f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_gathered_infonce_equals_single_process(tmp_path):
    torch.multiprocessing.spawn(_worker, args=(dist.free_port(), str(tmp_path)), nprocs=WORLD)
    shards = [_shard(r) for r in range(WORLD)]
    full_loss, full_grads = _loss(_concatenated(shards))
    local_loss, _ = _loss(shards[0])
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    assert not torch.allclose(local_loss, full_loss)  # the gather changes the loss
    starts = {k: 0 for k in full_grads}
    for res, sh in zip(results, shards, strict=True):
        torch.testing.assert_close(res["loss"], full_loss)
        for k, grad in res["grads"].items():
            n = sh[k].shape[0]
            # DDP averages the ranks' gradients: each rank's own rows carry WORLD x theirs
            torch.testing.assert_close(grad / WORLD, full_grads[k][starts[k]:starts[k] + n])
            starts[k] += n


def test_gather_is_identity_in_one_process():
    x = torch.randn(3, 2, requires_grad=True)
    assert dist.gather_rows(x) is x and dist.world() == 1 and dist.rank() == 0
