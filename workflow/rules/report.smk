"""Report stage: every results JSON and pretraining curve -> the paper's tables and plots."""


rule report:
    input:
        results=[eval_result(*job) for job in EVAL_JOBS],
        metrics=[f"{RESULTS}/pretrain/{m}/{v}/metrics.jsonl" for m, v in RUNS],
    output:
        report=f"{RESULTS}/report.md",
        aggregate=f"{RESULTS}/report/aggregate.csv",
    params:
        runs=" ".join(f"{m}/{v}={RESULTS}/pretrain/{m}/{v}" for m, v in RUNS),
        title=config["report"]["title"],
        out_dir=parent_dir("aggregate"),
        code=code_digest("report", "evaluate"),
    log:
        f"{LOGS}/report.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/bali.yaml"
    shell:
        "bali report --results {input.results} --pretrain-run {params.runs} "
        "--out-dir {params.out_dir} --markdown {output.report} --title {params.title:q} "
        "> {log} 2>&1"
