"""bali: raw files -> KG -> ... -> the paper's tables. See README.md."""

from snakemake.utils import min_version

min_version("8.20")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/kg.smk"
include: "workflow/rules/text.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/train.smk"


rule all:
    default_target: True
    input:
        rules.build_kg.output,
        rules.export.output,
