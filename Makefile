# depthgate developer commands. `make test` is the whole test suite (what .ci/run runs).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

GW_VENV ?= .venv-gw
REQ := requirements

.PHONY: all install gateway-venv plan test lint typecheck unit bench golden lock mutants clean

all: test

# Every environment installs from its hash-locked file (make lock): nothing unpinned, nothing
# unhashed, no dependency resolved at install time (--no-deps), and `pip check` proves the lock
# complete for this interpreter.
$(BIN)/depthgate: pyproject.toml $(REQ)/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(REQ)/dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $@

install: $(BIN)/depthgate

$(GW_VENV)/bin/litellm: $(REQ)/gateway.txt
	$(PYTHON) -m venv $(GW_VENV)
	$(GW_VENV)/bin/pip install --quiet --require-hashes --no-deps -r $(REQ)/gateway.txt
	touch $@

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
	$(BIN)/python bench/plan_bench.py
	$(BIN)/python bench/review_bench.py
	$(BIN)/python bench/token_estimate.py
	$(BIN)/python bench/action_bench.py
	$(BIN)/python bench/webhook_load.py

golden: install
	$(BIN)/python scripts/regen_golden_diffs.py

# One universal resolution per environment, hash-locked, for every Python >= 3.11 and platform
# (markers kept, e.g. async-timeout for redis on Python < 3.11.3):
#   dev.txt      make install / make test (runtime + test + app + bench extras)
#   action.txt   the composite action (action.yml): runtime dependencies only
#   app.txt      the Docker image: runtime + app extra
#   gateway.txt  the LiteLLM proxy of the interop tests (.venv-gw)
# action.txt and app.txt are constrained by dev.txt, so the suite tests the versions they ship.
# Existing pins are kept where they still fit; `make lock LOCK_ARGS=--upgrade` moves them all.
UV_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" --no-annotate $(LOCK_ARGS)
lock: install
	$(UV_COMPILE) -o $(REQ)/dev.txt pyproject.toml $(REQ)/build.in --extra test --extra app --extra bench
	$(UV_COMPILE) -c $(REQ)/dev.txt -o $(REQ)/action.txt pyproject.toml $(REQ)/build.in
	$(UV_COMPILE) -c $(REQ)/dev.txt -o $(REQ)/app.txt pyproject.toml $(REQ)/build.in --extra app
	$(UV_COMPILE) -o $(REQ)/gateway.txt $(REQ)/gateway.in

# Mutation testing of the posting rules (not part of make test; figures in the README): placement,
# publish, the posting rules of the PR review (duplicates, the 422 re-check, the summary write),
# the sanitizer's whole-text steps, secrets, links, images and mentions, and the fail-on rule.
# mutmut 3 works in its own mutants/ copy; each mutant runs only the tests of [tool.mutmut] that
# reach the mutated function. MUTANT_JOBS: the machine is shared, so two workers by default.
MUTANT_JOBS ?= 2
PRREVIEW_RULES := _prior _trusted _post _still_valid _demote _write_summary
SANITIZE_STEPS := sanitize invariant_violations _settle _analyze _fit _fallback _cut _redact \
	_secret_spans _secret_matches _pem_blocks _url_allowed
SANITIZE_PROSE := _at _slash _wrap _bang
MUTANTS ?= 'depthgate.core.placement.*' 'depthgate.core.publish.*' \
	$(foreach f,$(PRREVIEW_RULES),'depthgate.core.prreview.x_$(f)__mutmut_*') \
	$(foreach f,$(SANITIZE_STEPS),'depthgate.core.sanitize.x_$(f)__mutmut_*') \
	$(foreach f,$(SANITIZE_PROSE),'depthgate.core.sanitize.xǁ_Proseǁ$(f)__mutmut_*') \
	'depthgate.cli.run.x_fails_on__mutmut_*'
mutants: install
	$(BIN)/mutmut run --max-children $(MUTANT_JOBS) $(MUTANTS)
	$(BIN)/python scripts/mutation_score.py $(MUTANTS)

clean:
	rm -rf $(VENV) $(GW_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis src/*.egg-info
