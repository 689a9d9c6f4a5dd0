"""KG stage: UMLS RRF or OBO ontologies -> concepts/names/edges/xrefs Parquet tables."""


rule build_kg:
    input:
        unpack(kg_inputs),
    output:
        concepts=f"{RESULTS}/kg/concepts.parquet",
        names=f"{RESULTS}/kg/names.parquet",
        edges=f"{RESULTS}/kg/edges.parquet",
        xrefs=f"{RESULTS}/kg/xrefs.parquet",
        stats=report(
            f"{RESULTS}/kg/stats.json",
            caption="../report/kg_stats.rst",
            category="3. Data",
            subcategory="Knowledge graph",
            labels={"result": "KG counts and options (stats.json)"},
        ),
        **kg_outputs(),
    params:
        args=kg_args(),
        out_dir=parent_dir("concepts"),
        code=code_digest("kg"),
    log:
        f"{LOGS}/build_kg.log",
    benchmark:
        f"{LOGS}/benchmarks/build_kg/build_kg.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/bali.yaml"
    shell:
        "bali kg {params.args} --out-dir {params.out_dir} > {log} 2>&1"
