# Coalition — every task a fresh machine needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install lint fmt typecheck boundaries test test-slow ci demo bench clean

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade "pip>=24" "setuptools>=77" wheel
	$(BIN)/python -m pip install -qq -c constraints.txt -e ".[dev]" --config-settings editable_mode=strict
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install Coalition with its dev tools (pinned by constraints.txt)
	@# strict editable installs link each module: re-link so a module added since the last install is importable
	@$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e . --config-settings editable_mode=strict 2>/dev/null
	@# bytecode for every module, as pip writes it for an installed wheel: a command starts without compiling ~200
	@# modules from source (PYTHONDONTWRITEBYTECODE would otherwise make every process compile them again)
	@$(BIN)/python -m compileall -q build/__editable__.coalition-*-py3-none-any >/dev/null

lint: install ## ruff, ruff format --check, mypy --strict, import boundaries
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) --no-print-directory typecheck boundaries

typecheck: install ## mypy --strict over the installed package layout (coalition.bus, coalition.ledger, …)
	@# mypy cannot follow package-dir; the strict editable install links the real layout under build/
	cd build/__editable__.coalition-*-py3-none-any && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p coalition

boundaries: install ## import-linter contracts (which package may import which)
	cd build/__editable__.coalition-*-py3-none-any && ../../$(BIN)/lint-imports --config ../../pyproject.toml

fmt: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: install ## the test suite (unit, contract, integration, e2e; not the slow marker): in parallel, then the serial tests
	@# pytest-xdist: 3 workers (much of the suite waits on subprocesses); tests that time latency or race processes
	@# against the clock are marked serial and run alone afterwards
	$(BIN)/pytest -m "not slow and not serial" -n 3 --dist worksteal $(PYTEST_ARGS)
	$(BIN)/pytest -m "serial and not slow" -p no:xdist $(PYTEST_ARGS)

test-slow: install ## the larger fault runs
	$(BIN)/pytest -m slow $(PYTEST_ARGS)

ci: lint test ## what .ci/run runs: lint then the test suite

demo: install ## run the helios-launch scenario with no key and no server to set up
	$(BIN)/coalition demo

bench: install ## benchmarks, written to docs/benchmarks.md
	$(BIN)/python -m benchmarks

clean: ## remove the virtual environment, caches and run data
	@# this CLI remembers the newest checkpoint of every ledger it saw: forget the one removed here, on purpose
	@if [ -x $(BIN)/coalition ] && [ -f .coalition/ledger.db ]; then $(BIN)/coalition ledger forget --ledger .coalition/ledger.db; fi
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis .coalition
