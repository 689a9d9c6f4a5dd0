"""Config validation, the experiment grid and input/argument helpers shared by all rules."""

import os
import re
import shlex
from pathlib import Path

from bali.config import cli_flags, validate_config
from bali.grid import BASE, checkpoint, eval_jobs, pretrain_options, pretrain_runs
from bali.kg.holdout import DEV_FILE, DICTIONARY_FILE, HELDOUT_FILE, TEST_FILE
from bali.paths import PACKAGED_MODELS, code_digest, resolve_input, resolve_model

validate_config(config)  # the schema ships with bali: src/bali/config.schema.yaml

RESULTS = config["results"]
LOGS = config["logs"]
RRF_FILES = ("MRCONSO", "MRREL", "MRSTY")
MODELS = list(config["models"])
RUNS = pretrain_runs(config)  # (model, variant) pretraining jobs
EVAL_JOBS = eval_jobs(config)  # (benchmark, model, variant, seed) evaluation jobs


wildcard_constraints:
    model="|".join(map(re.escape, MODELS)),
    variant="|".join(map(re.escape, [BASE, *config["variants"]])),
    seed=r"\d+",


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
    holdout = cli_flags({f"holdout_{k}": v for k, v in kg["holdout"].items()})
    if kg["source"] == "umls":
        meta = Path(files["mrconso"]).parent
        umls = cli_flags(kg["umls"], skip=("meta_dir",))
        return " ".join(["umls", "--meta", str(meta), umls, holdout])
    parts = ["obo", "--obo", *map(str, files["obo"])]
    for key in ("hpoa", "genes_to_phenotype"):
        if key in files:
            parts += [f"--{key.replace('_', '-')}", str(files[key])]
    parts.append(cli_flags(kg["obo"], skip=("files", "hpoa", "genes_to_phenotype")))
    return " ".join([*parts, holdout])


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
SAMPLE_ARGS = cli_flags(config["sample"] | {"seed": config["seed"]})
# the modules a balanced draw runs (subgraphs and tokenize are not among them)
SAMPLE_DRAW_CODE = ("sample/balanced", "sample/bottomk", "sample/priority", "sample/schema",
                    "sample/supersede",
                    "sample/commands", "text/schema")


def sample_inputs(wildcards):
    """The merge's inputs: every shard's text index (documents, DeleteCitation list) and,
    for union, its bali sample-shard reduction; for greedy, its sentences."""
    names = sorted(SHARDS)
    files = {f: expand(f"{RESULTS}/text/{{shard}}/{f}", shard=names)
             for f in ("documents.parquet", "deleted_pmids.txt")}
    if config["sample"]["strategy"] == "union":
        files["reductions"] = expand(f"{RESULTS}/sample/shards/{{shard}}/reduction.json",
                                     shard=names)
    files["sentences"] = expand(f"{RESULTS}/text/{{shard}}/sentences.parquet", shard=names)
    return {k.split(".")[0]: v for k, v in files.items()}


def sample_command():
    """`bali sample-merge ...` (union) or `bali sample ...` (greedy), with the shard names in
    sorted order: a later shard's copy of a document wins (names, not paths, keep the
    command short at 1,000+ shards)."""
    names = " ".join(shlex.quote(n) for n in sorted(SHARDS))
    common = f"--text-dir {RESULTS}/text --shards {names}"
    if config["sample"]["strategy"] == "union":
        return f"sample-merge {common} --reductions-dir {RESULTS}/sample/shards"
    return f"sample {common}"


def pipeline_stats():
    """Every stage's own stats file that the report's pipeline summary reads."""
    return [
        f"{RESULTS}/kg/stats.json",
        *(f"{RESULTS}/text/{shard}/{f}" for shard in SHARDS
          for f in ("annotate.json", "sentences.json")),
        f"{RESULTS}/sample/sample_stats.json",
        f"{RESULTS}/sample/subgraph_stats.json",
        *(f"{RESULTS}/shards/{m}/meta.json" for m in sorted({m for m, _ in RUNS})),
    ]


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


def kg_outputs():
    """Extra outputs of build_kg: the held-out synonyms when kg.holdout.share > 0."""
    if config["kg"]["holdout"]["share"] > 0:
        return {"heldout": f"{RESULTS}/kg/{HELDOUT_FILE}",
                "heldout_dev": f"{RESULTS}/kg/{DEV_FILE}",
                "heldout_test": f"{RESULTS}/kg/{TEST_FILE}",
                "heldout_dictionary": f"{RESULTS}/kg/{DICTIONARY_FILE}"}
    return {}


def checkpoint_files(model):
    """The local files of a base model's checkpoint (none for a hub name: not tracked)."""
    name = checkpoint(config, model)
    if name in PACKAGED_MODELS:
        return [str(resolve_model(name))]
    return [name] if (Path(name) / "config.json").is_file() else []


def validation_files(model, variant):
    """{validate_dictionary, validate_mentions} of a run's pretrain.validate.benchmark."""
    validate = pretrain_options(config, model, variant).get("validate", {})
    bench = validate.get("benchmark", "")
    if not validate.get("every") or not bench:
        return {}
    spec = config["evaluate"]["benchmarks"].get(bench)
    if spec is None or "dev" not in spec or "dictionary" not in spec["inputs"]:
        raise ValueError(f"config pretrain.validate.benchmark: {bench!r} must be an "
                         "evaluate.benchmarks entry with inputs.dictionary and a dev split")
    files = benchmark_files(bench, {"dev": spec["dev"], **spec["inputs"]})
    out = {"validate_dictionary": files["dictionary"], "validate_mentions": files["dev"]}
    if validate.get("refine", True):  # the dev split refined by the test's seen files
        seen = files.get("seen", [])
        out["validate_seen"] = [p for p in ([seen] if isinstance(seen, str) else seen)
                                if p != files["dev"]]
    return out


def validation_refinement(model, variant):
    """{validate_match, validate_filter_dictionary}: the benchmark's own refinement options,
    applied to the dev split unless pretrain.validate.refine is false."""
    if "validate_seen" not in validation_files(model, variant):
        return {}  # no validation, or validate.refine: false
    bench = pretrain_options(config, model, variant)["validate"]["benchmark"]
    opts = config["evaluate"]["benchmarks"][bench].get("options", {})
    return {"validate_match": opts.get("match", "exact"),
            "validate_filter_dictionary": bool(opts.get("filter_dictionary", False))}


def pretrain_args(wildcards):
    """`bali pretrain` options of one (model, variant) run, with the run's one seed."""
    options = pretrain_options(config, wildcards.model, wildcards.variant)
    options |= {"seed": config["seed"], "model": checkpoint(config, wildcards.model)}
    validate = options.pop("validate", {})
    options |= {f"validate_{k}": v for k, v in validate.items()
                if k not in ("benchmark", "refine")}
    options |= validation_files(wildcards.model, wildcards.variant)
    options |= validation_refinement(wildcards.model, wildcards.variant)
    return cli_flags(options, skip=("gpus",))


def pretrain_gpus(wildcards):
    return pretrain_options(config, wildcards.model, wildcards.variant)["gpus"]


def pretrain_program(wildcards):
    """`bali`, or bali under torchrun for several GPUs (both backends: DeepSpeed initialises
    from torchrun's environment; --standalone picks a free rendezvous port, so jobs that
    share a node never collide, and CUDA_VISIBLE_DEVICES from SLURM is left alone)."""
    gpus = pretrain_options(config, wildcards.model, wildcards.variant)["gpus"]
    if gpus <= 1:
        return "bali"
    return f"torchrun --standalone --nproc_per_node {gpus} $(command -v bali)"


def model_dir(model, variant):
    """The model a job evaluates: the base checkpoint, or the exported BALI model dir."""
    if variant == BASE:
        return checkpoint(config, model)
    return f"{RESULTS}/models/{model}/{variant}"


def model_files(wildcards):
    if wildcards.variant == BASE:
        return checkpoint_files(wildcards.model)
    return [f"{model_dir(wildcards.model, wildcards.variant)}/model.safetensors"]


def benchmark_files(bench, inputs=None):
    """{flag: path or paths} of a benchmark's inputs ("kg:FILE" = the KG stage's FILE)."""
    def place(path):
        return f"{RESULTS}/kg/{path[3:]}" if path.startswith("kg:") else path

    inputs = config["evaluate"]["benchmarks"][bench]["inputs"] if inputs is None else inputs
    return {flag: [place(p) for p in v] if isinstance(v, list) else place(v)
            for flag, v in inputs.items()}


def benchmark_args(bench):
    """`bali evaluate` flags of a benchmark: its inputs and options (a recorded string)."""
    spec = config["evaluate"]["benchmarks"][bench]
    return " ".join([cli_flags(benchmark_files(bench)), cli_flags(spec["options"])])


def eval_result(bench, model, variant, seed):
    return f"{RESULTS}/eval/{bench}/{model}/{variant}/seed{seed}.json"
