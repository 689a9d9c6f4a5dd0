"""Sampling stage: balanced sentences, neighbour-capped subgraphs, tokenized shards."""


rule sample_shard:
    input:
        sentences=f"{RESULTS}/text/{{shard}}/sentences.parquet",
        concepts=f"{RESULTS}/kg/concepts.parquet",
    output:
        bottom=f"{RESULTS}/sample/shards/{{shard}}/bottomk.parquet",
        counts=f"{RESULTS}/sample/shards/{{shard}}/counts.parquet",
        meta=f"{RESULTS}/sample/shards/{{shard}}/reduction.json",
    params:
        # the draw's options only (docs_per_pass is the merge's), so that changing a merge
        # option or the code of a later stage reruns no shard
        args=cli_flags(config["sample"] | {"seed": config["seed"]}, skip=("docs_per_pass",)),
        kg_dir=parent_dir_of_input("concepts"),
        out_dir=parent_dir("meta"),
        code=code_digest(*SAMPLE_DRAW_CODE),
    log:
        f"{LOGS}/sample_shard/{{shard}}.log",
    benchmark:
        f"{LOGS}/benchmarks/sample_shard/{{shard}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/bali.yaml"
    shell:
        "bali sample-shard --sentences {input.sentences} --kg-dir {params.kg_dir} "
        "--out-dir {params.out_dir} {params.args} > {log} 2>&1"


rule sample_sentences:
    input:
        unpack(sample_inputs),
        concepts=f"{RESULTS}/kg/concepts.parquet",
    output:
        sample=f"{RESULTS}/sample/sample.parquet",
        counts=f"{RESULTS}/sample/concept_counts.parquet",
        stats=report(
            f"{RESULTS}/sample/sample_stats.json",
            caption="../report/sample_stats.rst",
            category="3. Data",
            subcategory="Sampling",
            labels={"result": "balanced sample (sample_stats.json)"},
        ),
        histogram=report(
            f"{RESULTS}/sample/sentences_per_concept.png",
            caption="../report/sentences_per_concept.rst",
            category="3. Data",
            subcategory="Sampling",
            labels={"result": "sentences per concept (plot)"},
        ),
    params:
        # union: merge the per-shard draws; greedy: one job over every candidate
        command=sample_command(),
        args=SAMPLE_ARGS,
        kg_dir=parent_dir_of_input("concepts"),
        out_dir=parent_dir("sample"),
        code=code_digest(*SAMPLE_DRAW_CODE),
    log:
        f"{LOGS}/sample_sentences.log",
    benchmark:
        f"{LOGS}/benchmarks/sample_sentences/sample_sentences.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/bali.yaml"
    shell:
        "bali {params.command} --kg-dir {params.kg_dir} --out-dir {params.out_dir} "
        "{params.args} > {log} 2>&1"


rule build_subgraphs:
    input:
        counts=f"{RESULTS}/sample/concept_counts.parquet",
        edges=f"{RESULTS}/kg/edges.parquet",
        names=f"{RESULTS}/kg/names.parquet",
    output:
        subgraphs=f"{RESULTS}/sample/subgraphs.parquet",
        nodes=f"{RESULTS}/sample/nodes.parquet",
        stats=report(
            f"{RESULTS}/sample/subgraph_stats.json",
            caption="../report/subgraph_stats.rst",
            category="3. Data",
            subcategory="Sampling",
            labels={"result": "subgraphs (subgraph_stats.json)"},
        ),
    params:
        args=cli_flags(config["subgraphs"] | {"seed": config["seed"]}),
        kg_dir=parent_dir_of_input("edges"),
        out_dir=parent_dir("subgraphs"),
        code=code_digest("sample"),
    log:
        f"{LOGS}/build_subgraphs.log",
    benchmark:
        f"{LOGS}/benchmarks/build_subgraphs/build_subgraphs.tsv"
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
        meta=report(
            f"{RESULTS}/shards/{{model}}/meta.json",
            caption="../report/shards_meta.rst",
            category="3. Data",
            subcategory="Shards",
            labels={"model": "{model}"},
        ),
    params:
        args=cli_flags(config["tokenize"]),
        model=lambda wildcards: checkpoint(config, wildcards.model),
        out_dir=parent_dir("meta"),
        code=code_digest("sample"),
    log:
        f"{LOGS}/tokenize/{{model}}.log",
    benchmark:
        f"{LOGS}/benchmarks/tokenize/{{model}}.tsv"
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
