# Glassbox developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATASET ?= ../shared/data/beir/scifact
COLLECTION ?= scifact
HOST ?= 127.0.0.1
PORT ?= 8000
export HF_HUB_OFFLINE ?= 1

.PHONY: help install check test serve demo benchmarks clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# the same install steps the Dockerfile runs: torch==2.13.0 first (pinned, CPU), then glassbox editable with `.[dev]`
$(BIN)/.installed: pyproject.toml scripts/install.sh
	PYTHON=$(PYTHON) bash scripts/install.sh $(VENV)
	touch $@

install: $(BIN)/.installed ## create .venv and install glassbox with dev tools (CPU torch first)

check: install ## ruff lint + format check, mypy strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install ## set up and run the whole test suite (CI runs exactly this)
	$(BIN)/python -m pytest

serve: install ## serve the collections in GLASSBOX_HOME
	$(BIN)/glassbox serve --host $(HOST) --port $(PORT)

demo: install ## set up, ingest DATASET (default SciFact) into COLLECTION, then serve it
	$(BIN)/glassbox ingest --collection $(COLLECTION) --dataset $(DATASET)
	$(BIN)/glassbox serve --host $(HOST) --port $(PORT)

clean: ## remove the virtualenv and caches (not GLASSBOX_HOME)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
