"""Sampling stage: balanced sentences, neighbour-capped subgraphs, tokenized shards."""


rule sample_sentences:
    input:
        sentences=expand(f"{RESULTS}/text/{{shard}}/sentences.parquet", shard=sorted(SHARDS)),
        concepts=f"{RESULTS}/kg/concepts.parquet",
    output:
        sample=f"{RESULTS}/sample/sample.parquet",
        counts=f"{RESULTS}/sample/concept_counts.parquet",
        stats=f"{RESULTS}/sample/sample_stats.json",
        histogram=f"{RESULTS}/sample/sentences_per_concept.png",
    params:
        args=cli_flags(config["sample"] | {"seed": config["seed"]}),
        kg_dir=parent_dir_of_input("concepts"),
        out_dir=parent_dir("sample"),
        code=code_digest("sample"),
    log:
        f"{LOGS}/sample_sentences.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/bali.yaml"
    shell:
        "bali sample --sentences {input.sentences} --kg-dir {params.kg_dir} "
        "--out-dir {params.out_dir} {params.args} > {log} 2>&1"


rule build_subgraphs:
    input:
        counts=f"{RESULTS}/sample/concept_counts.parquet",
        edges=f"{RESULTS}/kg/edges.parquet",
        names=f"{RESULTS}/kg/names.parquet",
    output:
        subgraphs=f"{RESULTS}/sample/subgraphs.parquet",
        nodes=f"{RESULTS}/sample/nodes.parquet",
        stats=f"{RESULTS}/sample/subgraph_stats.json",
    params:
        args=cli_flags(config["subgraphs"] | {"seed": config["seed"]}),
        kg_dir=parent_dir_of_input("edges"),
        out_dir=parent_dir("subgraphs"),
        code=code_digest("sample"),
    log:
        f"{LOGS}/build_subgraphs.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/bali.yaml"
    shell:
        "bali subgraphs --counts {input.counts} --kg-dir {params.kg_dir} "
        "--out-dir {params.out_dir} {params.args} > {log} 2>&1"


rule tokenize:
    input:
        sample=f"{RESULTS}/sample/sample.parquet",
        subgraphs=f"{RESULTS}/sample/subgraphs.parquet",
        nodes=f"{RESULTS}/sample/nodes.parquet",
        checkpoint=lambda wildcards: checkpoint_files(wildcards.model),
    output:
        sentences=f"{RESULTS}/shards/{{model}}/sentences.arrow",
        names=f"{RESULTS}/shards/{{model}}/names.arrow",
        nodes=f"{RESULTS}/shards/{{model}}/nodes.arrow",
        relations=f"{RESULTS}/shards/{{model}}/relations.json",
        meta=f"{RESULTS}/shards/{{model}}/meta.json",
    params:
        args=cli_flags(config["tokenize"]),
        model=lambda wildcards: checkpoint(config, wildcards.model),
        out_dir=parent_dir("meta"),
        code=code_digest("sample"),
    log:
        f"{LOGS}/tokenize/{{model}}.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/bali.yaml"
    shell:
        "bali tokenize --sample {input.sample} --subgraphs {input.subgraphs} "
        "--nodes {input.nodes} --model {params.model} --out-dir {params.out_dir} "
        "{params.args} > {log} 2>&1"
