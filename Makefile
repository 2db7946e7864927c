# wagtail-publish-hooks: `make help` lists the targets.

.DEFAULT_GOAL := help
SHELL := /bin/bash

# The primary row: Python 3.12 + Django 6.1. `make test ROW=py311` runs the second row
# (Python 3.11 + Django 5.2 LTS) in its own virtual environment.
ROW ?= py312
ifeq ($(ROW),py311)
  PYTHON ?= $(shell PYENV_VERSION=3.11.7 pyenv which python3.11 2>/dev/null || command -v python3.11)
  DJANGO_SPEC := Django>=5.2,<5.3
  VENV ?= .venv-py311
else
  PYTHON ?= $(shell PYENV_VERSION=3.12.1 pyenv which python3.12 2>/dev/null || command -v python3.12)
  DJANGO_SPEC := Django>=6.1,<6.2
  VENV ?= .venv
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-13s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x "$(PYTHON)" || { echo "No Python interpreter for row $(ROW) (PYTHON=$(PYTHON))"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(DJANGO_SPEC)" -e ".[test,lint,docs,db,dist]"
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create the virtual environment with everything installed

.PHONY: test
test: $(STAMP) ## Run the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

.PHONY: test-postgres
test-postgres: $(STAMP) ## Run the tests whose result depends on the database on a throwaway local PostgreSQL
	PUBLISH_HOOKS_TEST_DB=postgres $(BIN)/python -m pytest $(PYTEST_ARGS)

.PHONY: soak
soak: $(STAMP) ## Soak: 20,000 events through 4 workers against a flaky sink, on PostgreSQL
	$(BIN)/python benchmarks/soak.py

.PHONY: lint
lint: $(STAMP) ## ruff (lint and format check), mypy, and the import layers (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy wagtail_publish_hooks
	$(BIN)/lint-imports

.PHONY: format
format: $(STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: docs
docs: $(STAMP) ## Build the documentation, strict (warnings fail)
	$(BIN)/sphinx-build -E -W --keep-going -n -b html docs docs/_build/html

# BENCH_SIZE=quick: small data, checks statement counts and plans (CI); full: the docs' figures.
BENCH_SIZE ?= quick

.PHONY: bench
bench: $(STAMP) ## Run the benchmarks (figures as ratios); BENCH_SIZE=quick (default) or full
	$(BIN)/python benchmarks/run.py --size $(BENCH_SIZE)

.PHONY: dist
dist: $(STAMP) ## Build the sdist and the wheel into dist/ and check them with twine
	rm -rf dist build wagtail_publish_hooks.egg-info
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

.PHONY: demo
demo: $(STAMP) ## Run the sandbox site and worker on 127.0.0.1:8000 (admin / changeme)
	$(BIN)/python sandbox/demo.py

.PHONY: clean
clean: ## Remove virtual environments and build output
	rm -rf .venv .venv-py311 dist build wagtail_publish_hooks.egg-info docs/_build sandbox/db.sqlite3 .pytest_cache .mypy_cache .ruff_cache
