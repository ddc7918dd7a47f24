# The two Quick start commands (`make demo`, `make test`) each do their own set-up: a virtual
# environment in .venv with the CPU build of torch (on machines without an NVIDIA GPU) and this
# project installed editable with its dev extra. Set-up reruns only when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STORE ?= ./uts-store
CACHE ?= .uts-cache/demo

.PHONY: setup demo test lint typecheck unit bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU torch first: a bare `torch` requirement would pull several GB of CUDA libraries.
	command -v nvidia-smi >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip check
	touch $(STAMP)

# The main job on the embedded default: jobs/pretrain.py with no model arguments. It makes what
# the store lacks (the demo corpus from real recordings in Debian packages, cached in .uts-cache/;
# needs apt-get, and root for the one install, fluidsynth; its probe tasks, captions, rules tags and
# vocabulary), trains the demo preset on 2 CPU workers and prints the probe table. A rerun finds
# every step done and prints the table again.
demo: setup
	RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 $(BIN)/python jobs/pretrain.py --store $(STORE) --cache $(CACHE)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# Default and `ray` tiers; `gpu` tests skip themselves without a GPU.
unit: setup
	$(BIN)/python -m pytest --durations=25

test: lint typecheck unit

bench: setup
	$(BIN)/python benchmarks/vocab.py
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/llm_stage.py
	$(BIN)/python benchmarks/acoustic.py
	$(BIN)/python benchmarks/encoder.py
	$(BIN)/python benchmarks/pretrain.py
	$(BIN)/python benchmarks/serve.py
	# a GPU: the paper's step per precision; no GPU: the CPU dry run of the same code
	if $(BIN)/python -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; \
		then $(BIN)/python benchmarks/gpu.py; else $(BIN)/python benchmarks/gpu.py --device cpu --quick; fi

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
