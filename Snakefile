"""bali: raw files -> KG -> ... -> the paper's tables. See README.md."""

from snakemake.utils import min_version

min_version("8.20")


# The embedded demo config, unless --configfile names others (which then replace it rather
# than merge into it: `--configfile config/paper.yaml` runs the paper, not demo + paper).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"



include: "workflow/rules/common.smk"
include: "workflow/rules/kg.smk"
include: "workflow/rules/text.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        rules.build_kg.output,
        [f"{RESULTS}/models/{m}/{v}/model.safetensors" for m, v in RUNS],
        [f"{RESULTS}/models/{m}/{v}/README.md" for m, v in RUNS],
        rules.report.output,
