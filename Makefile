# depthgate developer commands. `make test` is the whole test suite (what .ci/run runs).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: all install plan test lint typecheck unit bench golden clean

all: test

$(BIN)/depthgate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/depthgate

# The main job, offline: the routing plan of the example PR diff.
plan: install
	$(BIN)/depthgate plan --diff examples/pr.diff -v

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q

test: lint typecheck unit

bench: install
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/plan_bench.py
	$(BIN)/python bench/token_estimate.py

golden: install
	$(BIN)/python scripts/regen_golden_diffs.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis src/*.egg-info
