"""Text stage, one job per corpus file (shard): read -> annotate -> sentences. A shard's jobs
read its own file only: revisions and deletions by later files are resolved by the sample
stage's merge (bali.sample.supersede), so a new update file adds its own jobs and reruns the
merge, nothing else."""

rule read_corpus:
    input:
        corpus=lambda wildcards: SHARDS[wildcards.shard],
    output:
        documents=f"{RESULTS}/text/{{shard}}/documents.parquet",
        deleted=f"{RESULTS}/text/{{shard}}/deleted_pmids.txt",
    params:
        # annotator bern2-dump: every shard is a dump file, whatever text.format says
        fmt=(
            "bern2-dump"
            if config["text"]["annotator"] == "bern2-dump"
            else config["text"]["format"]
        ),
        code=code_digest("text"),
    log:
        f"{LOGS}/read_corpus/{{shard}}.log",
    benchmark:
        f"{LOGS}/benchmarks/read_corpus/{{shard}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/bali.yaml"
    shell:
        "bali text read --input {input.corpus} --format {params.fmt} "
        "--out {output.documents} --deleted-out {output.deleted} > {log} 2>&1"


rule annotate:
    input:
        documents=f"{RESULTS}/text/{{shard}}/documents.parquet",
        corpus=lambda wildcards: SHARDS[wildcards.shard],
        concepts=f"{RESULTS}/kg/concepts.parquet",
        names=f"{RESULTS}/kg/names.parquet",
        xrefs=f"{RESULTS}/kg/xrefs.parquet",
    output:
        mentions=f"{RESULTS}/text/{{shard}}/mentions.parquet",
        report=report(
            f"{RESULTS}/text/{{shard}}/annotate.json",
            caption="../report/text_annotate.rst",
            category="3. Data",
            subcategory="Text: annotation",
            labels={"shard": "{shard}"},
        ),
    params:
        args=annotate_args(),
        kg_dir=parent_dir_of_input("concepts"),
        cache=f"{RESULTS}/text/{{shard}}/bern2_cache.jsonl",
        failed=f"{RESULTS}/text/{{shard}}/bern2_failed.txt",
        code=code_digest("text", "kg/prefixes"),
    log:
        f"{LOGS}/annotate/{{shard}}.log",
    benchmark:
        f"{LOGS}/benchmarks/annotate/{{shard}}.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        "../../envs/bali.yaml"
    shell:
        "bali text annotate {params.args} --documents {input.documents} "
        "--corpus {input.corpus} --kg-dir {params.kg_dir} --cache {params.cache} "
        "--failed {params.failed} --out {output.mentions} --report {output.report} "
        "> {log} 2>&1"


rule split_sentences:
    input:
        documents=f"{RESULTS}/text/{{shard}}/documents.parquet",
        mentions=f"{RESULTS}/text/{{shard}}/mentions.parquet",
    output:
        sentences=f"{RESULTS}/text/{{shard}}/sentences.parquet",
        stats=report(
            f"{RESULTS}/text/{{shard}}/sentences.json",
            caption="../report/text_sentences.rst",
            category="3. Data",
            subcategory="Text: sentences",
            labels={"shard": "{shard}"},
        ),
    params:
        code=code_digest("text"),
    log:
        f"{LOGS}/split_sentences/{{shard}}.log",
    benchmark:
        f"{LOGS}/benchmarks/split_sentences/{{shard}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/bali.yaml"
    shell:
        "bali text sentences --documents {input.documents} --mentions {input.mentions} "
        "--out {output.sentences} --stats {output.stats} > {log} 2>&1"
