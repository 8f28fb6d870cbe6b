# grader: `make run` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Pin the thread pools: oversubscribed threads made torch 10-50x slower on 2 shared cores.
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2
export TOKENIZERS_PARALLELISM := false

.PHONY: setup run test bench bench-accuracy clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch first (a plain `torch` requirement would pull a multi-GB CUDA build).
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: setup
	$(BIN)/grader batch examples/candidates.csv --out reports/example.html --out reports/example.csv \
	  --out reports/example.md --out reports/example.jsonl --force

test: setup
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .cache reports .pytest_cache
