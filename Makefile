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

# The main job on the embedded default. Until the pretraining job lands it builds the demo corpus
# (real recordings from Debian packages, cached in .uts-cache/; needs apt-get, and root for the one
# install, fluidsynth), its probe tasks with log-mel baselines, and the UTS vocabulary of the
# bundled sample of tag rows. Every step is skipped when its output is up to date.
demo: setup
	RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 $(BIN)/python jobs/ingest.py --store $(STORE) --corpus demo \
		--source demo --cache $(CACHE)
	$(BIN)/python jobs/tasks.py --store $(STORE) --corpus demo
	$(BIN)/python jobs/build_vocab.py --store $(STORE) --name demo \
		--tags uts/testing/data/sample_tags.parquet

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# Default and `ray` tiers; `gpu` tests skip themselves without a GPU.
unit: setup
	$(BIN)/python -m pytest

test: lint typecheck unit

bench: setup
	$(BIN)/python benchmarks/vocab.py
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/llm_stage.py
	$(BIN)/python benchmarks/encoder.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
