# depthgate developer commands. `make test` is the whole test suite (what .ci/run runs).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

GW_VENV ?= .venv-gw
# The real LiteLLM proxy the interop tests run against (tests/interop). Its own venv: LiteLLM's
# dependency tree must not decide depthgate's.
LITELLM_SPEC ?= litellm[proxy]==1.108.7 prisma==0.15.0

.PHONY: all install gateway-venv plan test lint typecheck unit bench golden lock clean

all: test

$(BIN)/depthgate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/depthgate

$(GW_VENV)/bin/litellm:
	$(PYTHON) -m venv $(GW_VENV)
	$(GW_VENV)/bin/pip install --quiet $(LITELLM_SPEC)

gateway-venv: $(GW_VENV)/bin/litellm

# The main job, offline: the routing plan of the example PR diff.
plan: install
	$(BIN)/depthgate plan --diff examples/pr.diff -v

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: install
	$(BIN)/mypy

unit: install gateway-venv
	$(BIN)/pytest -q

test: lint typecheck unit

bench: install
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/plan_bench.py
	$(BIN)/python bench/review_bench.py
	$(BIN)/python bench/token_estimate.py
	$(BIN)/python bench/action_bench.py
	$(BIN)/python bench/webhook_load.py

golden: install
	$(BIN)/python scripts/regen_golden_diffs.py

# requirements/action.txt: the composite action's hash-locked install (action.yml), i.e. the runtime
# dependencies of [project] plus setuptools (the build backend, installed with --no-build-isolation).
# Resolved for the Python this venv runs (3.11, the action's). Rerun after changing dependencies;
# existing pins are kept where they still fit: `make lock LOCK_ARGS=--upgrade` moves them all to the
# newest releases.
lock: install
	$(BIN)/pip install --quiet -e '.[test,lock]'
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet $(LOCK_ARGS) --generate-hashes \
		--allow-unsafe --strip-extras --build-deps-for wheel --no-emit-index-url \
		--no-emit-find-links -o requirements/action.txt pyproject.toml
	# requirements/app.txt: the Docker image's hash-locked install (the app extra + the build backend)
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet $(LOCK_ARGS) --generate-hashes \
		--allow-unsafe --strip-extras --extra app --build-deps-for wheel --no-emit-index-url \
		--no-emit-find-links -o requirements/app.txt pyproject.toml

clean:
	rm -rf $(VENV) $(GW_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis src/*.egg-info
