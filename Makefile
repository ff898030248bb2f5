# optbot: two set-up commands, `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP     := $(VENV)/.dev-installed

.PHONY: run test lint audit docs bench clean help

help:  ## list targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e .
	@touch $@

$(DEV_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[dev]'
	@touch $@ $(RUNTIME_STAMP)

run: $(RUNTIME_STAMP)  ## start the whole system (simulated by default); dashboard on :5001
	$(BIN)/optbot up

test: $(DEV_STAMP)  ## install everything the tests need, run the whole suite
	scripts/ensure-test-tools.sh
	$(BIN)/python -m pytest -n 2

lint: $(DEV_STAMP)  ## ruff and mypy, as CI runs them
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

audit: $(DEV_STAMP)  ## known vulnerabilities in constraints.txt: pip-audit, else the committed snapshot
	$(BIN)/python scripts/audit.py

docs: $(RUNTIME_STAMP)  ## regenerate the settings and streams-and-keys tables in docs/ and services/*/README.md
	$(BIN)/python -m optbot.docs

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): pyproject.toml constraints.txt $(DEV_STAMP)
	$(PIP) -e '.[dev,bench]'
	@touch $@

bench: $(BENCH_STAMP)  ## benchmarks: ratios against baselines measured in the same run
	$(BIN)/python -m bench

clean:  ## remove the virtualenv and runtime state
	rm -rf $(VENV) var test-output .pytest_cache .mypy_cache .ruff_cache
