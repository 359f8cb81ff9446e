# The model lifecycle on the embedded stack. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9
DEMO_START ?= 2013-01-01
DEMO_DAYS ?= 7

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@command -v java >/dev/null || { echo "error: Java not found: install a Java 17 runtime (e.g. apt-get install openjdk-17-jre-headless)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "error: Python 3.11 is needed (set PYTHON=python3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync -q --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

venv: $(STAMP) ## Create the virtual environment from the lock file

lock: ## Re-resolve requirements.in into requirements.lock
	$(BIN)/uv pip compile -q requirements.in --excludes requirements.excludes --generate-hashes \
		--python $(BIN)/python -o requirements.lock

demo: $(STAMP) ## Start the stack, backfill a window of 2013, train, stop at the sign-off
	$(BIN)/mlcycle demo --start $(DEMO_START) --days $(DEMO_DAYS)

start: $(STAMP) ## Start the embedded stack (Airflow, MLflow)
	$(BIN)/mlcycle stack start

stop: ## Stop the embedded stack
	@test -x $(BIN)/mlcycle && $(BIN)/mlcycle stack stop || echo "nothing to stop"

status: $(STAMP) ## Show what is up
	$(BIN)/mlcycle stack status

approve: $(STAMP) ## Approve the pending sign-off as the approver
	$(BIN)/mlcycle approve

lint: $(STAMP) ## ruff check
	$(BIN)/ruff check .

test: $(STAMP) ## Set up and run every test tier (unit, dags, integration, e2e)
	$(BIN)/python -m pytest -q --durations=12 tests/unit tests/dags tests/integration tests/e2e

BENCH_HOME ?= .mlcycle-bench

bench: $(STAMP) ## Run every benchmark of docs/PERFORMANCE.md on a stack of their own (about 1.5 h)
	$(BIN)/python bench/parse_cost.py --repeat 5
	$(BIN)/python bench/day_pipeline.py --home $(BENCH_HOME) --repeat 5 --preload on --engine both
	$(BIN)/python bench/backfill_growth.py --home $(BENCH_HOME) --sizes 7 30 90 --data-only --stop
	$(BIN)/python bench/scale.py --data-root $(BENCH_HOME)/data --work $(BENCH_HOME)/scale --copies 1 10 30
	$(BIN)/python bench/scoring_throughput.py --data-root $(BENCH_HOME)/data --days 14 --copies 1 10 30 --repeat 5

test-fast: $(STAMP) ## Tests that need no running service
	$(BIN)/python -m pytest tests/unit tests/dags -q

.PHONY: help venv lock demo start stop status approve lint test test-fast bench
