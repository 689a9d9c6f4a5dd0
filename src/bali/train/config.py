"""Typed configuration of the BALI pretraining loop (paper Table 1 defaults, scaled for a CPU
demo where noted). Field names equal the config keys and the ``bali pretrain`` flags."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation loop (AdamW, two parameter groups, cosine decay with warm-up)."""

    backend: str = field(default="torch", metadata={
        "help": "training backend (bali.train.backends.BACKENDS)",
        "choices": ("torch", "deepspeed")})
    steps: int = field(default=200, metadata={"help": "optimizer steps (paper: 65,000)"})
    batch_size: int = field(default=8, metadata={"help": "sentences per micro-batch"})
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
    validate_max_names: int = field(default=512, metadata={
        "help": "dictionary names drawn beside the dev mentions' gold names"})
    validate_hard_names: int = field(default=4, metadata={
        "help": "nearest names of each dev mention by TF-IDF, kept as hard distractors"})
    validate_seen: tuple[str, ...] = field(default=(), metadata={
        "help": "mention files whose texts refine the dev mentions as the test is refined "
        "(bali.evaluate.el_zeroshot.refine: the benchmark's train split, never the dev split "
        "itself); none = the dev mentions as they are"})
    validate_match: str = field(default="exact", metadata={
        "help": "text comparison of that refinement", "choices": ("exact", "casefold")})
    validate_filter_dictionary: bool = field(default=False, metadata={
        "help": "the refinement also drops dev mentions spelled as a dictionary name"})
    validate_sentences: int = field(default=32, metadata={
        "help": "training sentences held out for dev_align_acc (when validating)"})
