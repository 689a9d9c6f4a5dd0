"""Config validation and input/argument helpers shared by all rules."""

import os
from pathlib import Path

from bali.config import cli_flags, validate_config
from bali.paths import code_digest, resolve_input

validate_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")

RESULTS = config["results"]
LOGS = config["logs"]
RRF_FILES = ("MRCONSO", "MRREL", "MRSTY")


def kg_inputs(wildcards):
    """The raw KG files the configured source reads (so a change of them reruns build_kg)."""
    kg = config["kg"]
    if kg["source"] == "umls":
        meta = Path(kg["umls"]["meta_dir"])
        return {name.lower(): meta / f"{name}.RRF" for name in RRF_FILES}
    obo = kg["obo"]
    files = {"obo": [resolve_input(f) for f in obo["files"]]}
    for key in ("hpoa", "genes_to_phenotype"):
        if obo[key]:
            files[key] = resolve_input(obo[key])
    return files


def kg_args():
    """`bali kg ...` arguments for the configured source. A plain string evaluated at parse
    time, so Snakemake records it and a changed option reruns build_kg."""
    kg = config["kg"]
    files = kg_inputs(None)
    if kg["source"] == "umls":
        meta = Path(files["mrconso"]).parent
        return " ".join(["umls", "--meta", str(meta), cli_flags(kg["umls"], skip=("meta_dir",))])
    parts = ["obo", "--obo", *map(str, files["obo"])]
    for key in ("hpoa", "genes_to_phenotype"):
        if key in files:
            parts += [f"--{key.replace('_', '-')}", str(files[key])]
    parts.append(cli_flags(kg["obo"], skip=("files", "hpoa", "genes_to_phenotype")))
    return " ".join(parts)


def parent_dir(name):
    """Params function: the directory of the named output file."""
    return lambda wildcards, output: Path(output[name]).parent


def corpus_shards():
    """{shard name: corpus file}; a shard is one input file (globs expanded, sorted)."""
    import glob

    shards = {}
    for entry in config["text"]["corpus"]:
        paths = sorted(glob.glob(entry)) if glob.has_magic(entry) else [resolve_input(entry)]
        if not paths:
            raise ValueError(f"config text.corpus: {entry!r} matches no file")
        for path in map(Path, paths):
            name = path.name.split(".")[0]
            if name in shards and shards[name] != path:
                raise ValueError(f"config text.corpus: two files make shard {name!r}")
            shards[name] = path
    return shards


SHARDS = corpus_shards()


def annotate_args():
    """`bali text annotate` options from config (a plain string: recorded by Snakemake)."""
    text = config["text"]
    parts = [f"--annotator {text['annotator']}", cli_flags(text["normalize"])]
    if text["annotator"] == "dictionary":
        parts.append(cli_flags(text["dictionary"]))
    elif text["annotator"] == "pubtator":
        parts.append(cli_flags(text["pubtator"]))
    else:
        parts.append(cli_flags(text["bern2"]))
    return " ".join(p for p in parts if p)


os.environ.setdefault(
    "BALI_BERN2_URL", config["text"]["bern2"]["url"] or "http://localhost:8888"
)


envvars:
    "BALI_BERN2_URL",


def parent_dir_of_input(name):
    """Params function: the directory of the named input file."""
    return lambda wildcards, input: Path(input[name]).parent


def pretrain_args():
    """`bali pretrain` options (model from tokenize.model, the run's one seed)."""
    options = config["pretrain"] | {"seed": config["seed"], "model": config["tokenize"]["model"]}
    return cli_flags(options, skip=("gpus",))


def pretrain_program():
    """`bali`, or bali under the deepspeed/torchrun launcher for several GPUs."""
    gpus = config["pretrain"]["gpus"]
    if gpus <= 1:
        return "bali"
    if config["pretrain"]["backend"] == "deepspeed":
        return f"deepspeed --num_gpus {gpus} $(command -v bali)"
    return f"torchrun --standalone --nproc_per_node {gpus} $(command -v bali)"
