"""The BALI model: LM text encoder + graph encoder, returning embeddings, logits and losses.

Forward pass on a batch of :mod:`bali.train.data`:

1. ``LM(masked sentences)`` -> last-layer token vectors ``H``; the MLM head (the
   checkpoint's own is kept; the authors' code re-initialised it) is applied only at the
   masked positions.
2. Entity vectors ``e = pool(H, tokens of the entity's mentions)`` (paper: mean).
3. Node vectors: every *distinct* name of the batch is encoded once by the same LM (mean of
   its last-layer token vectors) and scattered to the slots of the star subgraphs;
   ``g = GNN(slots, edges)`` at the centres. For ``graph_encoder=linear`` the LM instead
   encodes each concept's linearised subgraph ``[CLS] s_v [SEP] s_u r s_v [SEP] ...``
   (mean pooled).
4. ``L = mlm_weight * L_MLM + align_weight * L_align(e, g, target)``; a weight of 0 skips the
   term (the -MLM / -align ablations). InfoNCE may take hard negatives beside the batch's
   concept rows: the name vectors of the neighbour slots (``neighbor_negatives``) and of the
   lexical slots (``lexical_negatives``, :mod:`bali.train.negatives`), each never a negative of
   an entity of its own node.
"""

from __future__ import annotations

import torch
from torch import nn

from bali import distributed as dist
from bali.model.config import ModelConfig
from bali.model.graph import GRAPH_ENCODERS, make_graph_encoder
from bali.model.losses import make_alignment_loss, total_loss
from bali.model.losses.mlm import mlm_loss
from bali.model.pooling import entity_tokens, make_pooling


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden [N, L, d]`` over positions where ``mask [N, L]`` is true."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


class BaliModel(nn.Module):
    """``lm`` is a Hugging Face ``*ForMaskedLM``; everything else is built from ``cfg``."""

    def __init__(self, lm: nn.Module, cfg: ModelConfig, num_relations: int):
        super().__init__()
        self.lm, self.cfg = lm, cfg
        dim = lm.config.hidden_size
        self.pooling = make_pooling(cfg.pooling, dim)
        self.linearized = getattr(GRAPH_ENCODERS[cfg.graph_encoder], "is_linearized", False)
        self.graph = None if self.linearized else make_graph_encoder(
            cfg.graph_encoder, dim, hidden=cfg.gnn_hidden or None, layers=cfg.gnn_layers,
            heads=cfg.gnn_heads, num_relations=num_relations, use_relations=cfg.use_relations,
            skip=cfg.gnn_skip)
        kwargs = {"temperature": cfg.temperature} if cfg.alignment == "infonce" else {}
        self.alignment = make_alignment_loss(cfg.alignment, dim, **kwargs)

    #: names of LM tensors absent from the checkpoint (set by the loader; e.g. a new MLM head)
    new_lm_parameters: list[str] = []

    def _new_lm_ids(self) -> set[int]:
        if self.cfg.new_lm_lr != "other":
            return set()
        named = dict(self.named_parameters(remove_duplicate=False))
        return {id(named[n]) for n in self.new_lm_parameters if n in named}

    def lm_parameters(self) -> list[nn.Parameter]:
        """Parameters trained at ``lr_lm``: the LM's (minus new ones if ``new_lm_lr=other``)."""
        new = self._new_lm_ids()
        return [p for p in self.lm.parameters() if id(p) not in new]

    def other_parameters(self) -> list[nn.Parameter]:
        """Parameters trained at ``lr_other``: graph encoder, pooling, loss heads (+ new LM)."""
        lm = {id(p) for p in self.lm_parameters()}
        return [p for p in self.parameters() if id(p) not in lm]

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean-pooled last-layer vectors of (unmasked) token sequences, e.g. names."""
        hidden = self.lm.base_model(input_ids=input_ids, attention_mask=attention_mask)
        return masked_mean(hidden.last_hidden_state, attention_mask)

    def node_vectors(self, batch: dict[str, torch.Tensor]
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(g [C, d], x [slots, d])``: concept vectors and the slots' name vectors."""
        if self.linearized:
            return self.encode(batch["linear_input_ids"], batch["linear_attention_mask"]), None
        names = self.encode(batch["name_input_ids"], batch["name_attention_mask"])
        x = names[batch["slot_name"]]
        return self.graph(x, batch["edge_index"], batch["edge_type"], batch["centre"]), x

    def hard_negatives(self, batch: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(vectors [K, d], node ids [K])`` of the slots' names used as extra negatives: the
        neighbour slots (``neighbor_negatives``) and the lexical ones (``lexical_slot``)."""
        keep = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        keep[batch["centre"]] = False
        if not self.cfg.neighbor_negatives:
            keep &= batch.get("lexical_slot", torch.zeros_like(keep))
        return x[keep], batch["slot_node"][keep]

    def align_loss(self, text: torch.Tensor, graph: torch.Tensor, batch: dict,
                   x: torch.Tensor | None) -> torch.Tensor:
        """L_align of the batch; InfoNCE with ``align_gather`` in a multi-process training
        run compares every entity with the concept rows and neighbour names of all ranks
        (positives and allowed negatives by concept id, :mod:`bali.distributed`)."""
        target = batch["entity_target"]
        infonce = self.cfg.alignment == "infonce"
        wanted = self.cfg.neighbor_negatives or self.cfg.lexical_negatives
        neighbors = self.hard_negatives(batch, x) if (  # InfoNCE over node slots only
            infonce and wanted and x is not None) else None
        if not (infonce and self.cfg.align_gather and self.training and dist.world() > 1):
            extra = {} if neighbors is None else {
                "negatives": neighbors[0],
                "allowed": batch["concept_nodes"][target][:, None] != neighbors[1][None, :]}
            return self.alignment(text, graph, target, **extra)
        own = dist.gather_rows(batch["concept_nodes"][target])
        positive = own[:, None] == dist.gather_rows(batch["concept_nodes"])[None, :]
        extra = {} if neighbors is None else {
            "negatives": dist.gather_rows(neighbors[0]),
            "allowed": own[:, None] != dist.gather_rows(neighbors[1])[None, :]}
        return self.alignment(dist.gather_rows(text), dist.gather_rows(graph), positive, **extra)

    def mlm_head(self) -> nn.Module | None:
        """The checkpoint's position-wise MLM head (BERT ``cls``, RoBERTa ``lm_head``)."""
        return getattr(self.lm, "cls", None) or getattr(self.lm, "lm_head", None)

    def masked_lm_loss(self, hidden: torch.Tensor, batch: dict) -> torch.Tensor:
        """L_MLM, with the head applied only at the masked positions (15% of the tokens)."""
        labels, head = batch["mlm_labels"], self.mlm_head()
        if head is None:  # unknown head layout: full logits
            logits = self.lm(input_ids=batch["input_ids"],
                             attention_mask=batch["attention_mask"]).logits
            return mlm_loss(logits, labels)
        selected = labels != -100
        return mlm_loss(head(hidden[selected]).unsqueeze(0), labels[selected].unsqueeze(0))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        hidden = self.lm.base_model(input_ids=batch["input_ids"],
                                    attention_mask=batch["attention_mask"]).last_hidden_state
        zero = hidden.sum() * 0.0
        losses = {"mlm_loss": zero, "align_loss": zero}
        if self.cfg.mlm_weight and "mlm_labels" in batch:
            losses["mlm_loss"] = self.masked_lm_loss(hidden, batch)
        tok = entity_tokens(batch["mention_batch"], batch["mention_start"],
                            batch["mention_end"], batch["mention_entity"])
        n_entities = int(batch["entity_target"].numel())
        text = self.pooling(hidden, *tok, n_entities)
        result = {"text": text}
        if self.cfg.align_weight:
            graph, x = self.node_vectors(batch)
            losses["align_loss"] = self.align_loss(text, graph, batch, x)
            with torch.no_grad():
                sim = nn.functional.normalize(text.float(), dim=-1) @ nn.functional.normalize(
                    graph.float(), dim=-1).T
                result["align_acc"] = (sim.argmax(1) == batch["entity_target"]).float().mean()
            result["graph"] = graph
        result.update(losses)
        result["loss"] = total_loss(losses["mlm_loss"], losses["align_loss"],
                                    self.cfg.mlm_weight, self.cfg.align_weight)
        return result
