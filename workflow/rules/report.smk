"""Report stage: every results JSON and pretraining curve -> the paper's tables and plots.

Outputs wrapped in report(...) (and those of the other stages) make up
`snakemake --report results/report.html`, one self-contained page; workflow/report/ holds
its captions and its landing text (workflow.rst: the headline of report.md)."""


report: "../report/workflow.rst"


rule report:
    input:
        results=[eval_result(*job) for job in EVAL_JOBS],
        metrics=[f"{RESULTS}/pretrain/{m}/{v}/metrics.jsonl" for m, v in RUNS],
        # the stages' own counts, for the pipeline summary (bali.report.pipeline)
        stats=pipeline_stats(),
    output:
        report=report(
            f"{RESULTS}/report.md",
            caption="../report/report_md.rst",
            category="1. Results",
            subcategory="Tables",
            labels={"table": "report.md", "content": "the whole report page (Markdown)"},
        ),
        aggregate=report(
            f"{RESULTS}/report/aggregate.csv",
            caption="../report/report_aggregate.rst",
            category="1. Results",
            subcategory="Tables",
            labels={"table": "aggregate.csv", "content": "every metric, mean and std"},
        ),
        tables=report(
            directory(f"{RESULTS}/report/tables"),
            caption="../report/report_tables.rst",
            category="1. Results",
            subcategory="Tables",
            patterns=["table{n}.md"],
            labels={"table": "Table {n}", "content": "paper table (Markdown)"},
        ),
        # the plots; none (and no directory) when there is no run and no evaluation
        **(
            {
                "plots": report(
                    directory(f"{RESULTS}/report/plots"),
                    caption="../report/report_plots.rst",
                    category="1. Results",
                    subcategory="Plots",
                    patterns=["{plot}.png"],
                    labels=lambda w: {"plot": w.plot.replace("_", " ")},
                )
            }
            if RUNS or EVAL_JOBS
            else {}
        ),
    params:
        runs=" ".join(f"{m}/{v}={RESULTS}/pretrain/{m}/{v}" for m, v in RUNS),
        title=config["report"]["title"],
        out_dir=parent_dir("aggregate"),
        results=parent_dir("report"),  # report.md lies in the results directory
        logs=lambda wildcards: LOGS,
        code=code_digest("report", "evaluate"),
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{LOGS}/benchmarks/report/report.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/bali.yaml"
    shell:
        "bali report --results {input.results} --pretrain-run {params.runs} "
        "--out-dir {params.out_dir} --markdown {output.report} --title {params.title:q} "
        "--pipeline {params.results} --logs {params.logs} > {log} 2>&1"
