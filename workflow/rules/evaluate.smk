"""Evaluation stage: one rule evaluate_BENCHMARK per configured benchmark, one job per
model x variant x seed of the grid (bali.grid.eval_jobs), each writing a results JSON."""

for _bench, _spec in config["evaluate"]["benchmarks"].items():

    rule:
        name:
            f"evaluate_{_bench}"
        input:
            unpack(lambda wildcards, b=_bench: benchmark_files(b)),
            model=model_files,
        output:
            result=eval_result(_bench, "{model}", "{variant}", "{seed}"),
        params:
            command=_spec["command"],
            args=benchmark_args(_bench),
            model=lambda wildcards: model_dir(wildcards.model, wildcards.variant),
            code=code_digest("evaluate"),
        log:
            f"{LOGS}/evaluate/{_bench}/{{model}}/{{variant}}/seed{{seed}}.log",
        benchmark:
            f"{LOGS}/benchmarks/evaluate/{_bench}/{{model}}/{{variant}}/seed{{seed}}.tsv"
        threads: 2
        resources:
            mem_mb=16000,
            runtime=240,
            # GPUs of the job (sbatch --gpus=N); on SLURM, profiles/slurm/partitions.yaml
            # sends the job to the GPU partition when it asks for any, else to the CPU one
            gpu=config["evaluate"]["gpus"],
        conda:
            "../../envs/bali.yaml"
        shell:
            "OMP_NUM_THREADS={threads} bali evaluate {params.command} --model {params.model} "
            "--out {output.result} --seed {wildcards.seed} --label model={wildcards.model} "
            "--label variant={wildcards.variant} {params.args} > {log} 2>&1"
