"""Pretraining stage, one job per (model, variant) of the grid: shards -> BALI run
(checkpoints, metrics, curves) -> HF model dir."""


rule pretrain:
    input:
        shards=f"{RESULTS}/shards/{{model}}/sentences.arrow",
        meta=f"{RESULTS}/shards/{{model}}/meta.json",
        validation=lambda wildcards: [
            f
            for v in validation_files(wildcards.model, wildcards.variant).values()
            for f in ([v] if isinstance(v, str) else v)
        ],
    output:
        weights=f"{RESULTS}/pretrain/{{model}}/{{variant}}/model.safetensors",
        metrics=f"{RESULTS}/pretrain/{{model}}/{{variant}}/metrics.jsonl",
        curves=report(
            f"{RESULTS}/pretrain/{{model}}/{{variant}}/curves.png",
            caption="../report/pretrain_curves.rst",
            category="2. Pretraining",
            subcategory="Training curves",
            labels={"model": "{model}", "variant": "{variant}"},
        ),
    params:
        args=pretrain_args,
        program=pretrain_program,
        shards=parent_dir_of_input("meta"),
        run_dir=parent_dir("weights"),
        code=code_digest("model", "train"),
    log:
        f"{LOGS}/pretrain/{{model}}/{{variant}}.log",
    benchmark:
        f"{LOGS}/benchmarks/pretrain/{{model}}/{{variant}}.tsv"
    threads: 2
    resources:
        mem_mb=16000,
        runtime=1440,
        gpu=pretrain_gpus,
    conda:
        "../../envs/bali-gpu.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.program} pretrain --shards {params.shards} "
        "--run-dir {params.run_dir} --resume --no-progress {params.args} > {log} 2>&1"


rule export:
    input:
        weights=f"{RESULTS}/pretrain/{{model}}/{{variant}}/model.safetensors",
    output:
        model=f"{RESULTS}/models/{{model}}/{{variant}}/model.safetensors",
    params:
        run_dir=parent_dir_of_input("weights"),
        out_dir=parent_dir("model"),
        select=config["export"]["select"],
        code=code_digest("model", "train"),
    log:
        f"{LOGS}/export/{{model}}/{{variant}}.log",
    benchmark:
        f"{LOGS}/benchmarks/export/{{model}}/{{variant}}.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/bali.yaml"
    shell:
        "bali export --run-dir {params.run_dir} --out-dir {params.out_dir} "
        "--select {params.select} > {log} 2>&1"


rule model_card:
    """The exported model's README.md run card, with the evaluation results of that model
    (bali card; `bali export` writes a first card without them)."""
    input:
        model=f"{RESULTS}/models/{{model}}/{{variant}}/model.safetensors",
        metrics=f"{RESULTS}/pretrain/{{model}}/{{variant}}/metrics.jsonl",
        results=lambda wildcards: [
            eval_result(*job)
            for job in EVAL_JOBS
            if job[1] == wildcards.model and job[2] == wildcards.variant
        ],
    output:
        card=f"{RESULTS}/models/{{model}}/{{variant}}/README.md",
    params:
        run_dir=parent_dir_of_input("metrics"),
        model_dir=parent_dir_of_input("model"),
        code=code_digest("train/card"),
    log:
        f"{LOGS}/model_card/{{model}}/{{variant}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/bali.yaml"
    shell:
        "bali card --run-dir {params.run_dir} --model-dir {params.model_dir} "
        "--results {input.results} --variant {wildcards.variant} > {log} 2>&1"
