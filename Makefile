# Two commands for a fresh machine (Python 3.11, no GPU):
#   make demo   install into .venv and run the whole DAG on the embedded default config
#   make test   install into .venv and run lint + tests
# torch==2.13.0 is installed first on purpose: an unpinned torch pulls GBs of CUDA wheels.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= model,workflow,dev
CORES  ?= 2
export PATH := $(abspath $(BIN)):$(PATH)
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/snakemake --cores $(CORES)
	@sed -n '/^## Headline/,/^## Pipeline summary/{/^## Pipeline summary/!p}' results/report.md
	@echo "Report: results/report.md (HTML: $(BIN)/snakemake --report results/report.html)"

lint: install
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint

test: lint
	$(BIN)/pytest -q

clean:
	rm -rf results logs .snakemake
