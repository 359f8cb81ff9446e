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
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@command -v java >/dev/null || { echo "error: Java not found: install a Java 17 runtime (e.g. apt-get install openjdk-17-jre-headless)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "error: Python 3.11 is needed (set PYTHON=python3.11)"; exit 1; }
	@# A venv left half-made by an interrupted run (no pip in it) is made again.
	$(BIN)/python -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	@# Bytecode compiled once here: where PYTHONDONTWRITEBYTECODE is set, every process would
	@# otherwise compile Airflow, MLflow and GX again at each start (22 s against 8 s to import them).
	$(BIN)/uv pip sync -q --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

# The Spark JVM's classes, loaded once into an archive every later Spark JVM maps (about 40 s here,
# then 2 to 6 s less at each JVM start: mlcycle/class_archive.py); made again with the environment.
ARCHIVE := $(VENV)/share/mlcycle/spark-classes.jsa
$(ARCHIVE): $(STAMP) mlcycle/class_archive.py
	$(BIN)/python -m mlcycle.class_archive

venv: $(STAMP) $(ARCHIVE) ## Create the virtual environment from the lock file

lock: ## Re-resolve requirements.in into requirements.lock
	$(BIN)/uv pip compile -q requirements.in --excludes requirements.excludes --generate-hashes \
		--python $(BIN)/python -o requirements.lock

demo: $(ARCHIVE) ## Start the stack, backfill a window of 2013, train, stop at the sign-off
	$(BIN)/mlcycle demo --start $(DEMO_START) --days $(DEMO_DAYS)

start: $(ARCHIVE) ## Start the embedded stack (Airflow, MLflow)
	$(BIN)/mlcycle stack start

stop: ## Stop the embedded stack
	@test -x $(BIN)/mlcycle && $(BIN)/mlcycle stack stop || echo "nothing to stop"

status: $(STAMP) ## Show what is up
	$(BIN)/mlcycle stack status

approve: $(STAMP) ## Approve the pending sign-off as the approver
	$(BIN)/mlcycle approve

lint: $(STAMP) ## ruff check
	$(BIN)/ruff check .

# What the tests need that the lock cannot hold: Debian's Chromium (the browser tests drive the
# Airflow UI in it) and a compose client (docker-compose.yaml is checked by it; no engine needed).
# Installed when missing and this user may install packages; otherwise one line names them.
# Chromium is only needed by the end-to-end tier: it is installed in the background while the
# other tiers run (CHROMIUM_INSTALL holds its exit status when done), and `make test` waits for it
# before that tier.
CHROMIUM_INSTALL := .chromium-install
system-packages: ## Install the Debian packages the tests need (Chromium, a compose client) if missing
	@missing=""; rm -f $(CHROMIUM_INSTALL).rc; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	{ command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1; } || missing="$$missing docker-compose"; \
	if [ -z "$$missing" ]; then echo 0 > $(CHROMIUM_INSTALL).rc; exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	  echo "error: the tests need$$missing: install with 'sudo apt-get install$$missing', then run make test again"; exit 1; \
	fi; \
	echo "installing Debian packages the tests need:$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq || { echo "error: apt-get update failed: run 'apt-get install$$missing' and try again"; exit 1; }; \
	case "$$missing" in *docker-compose*) apt-get install -y -qq docker-compose >/dev/null \
	  || { echo "error: could not install docker-compose: run 'apt-get install docker-compose' and try again"; exit 1; };; esac; \
	case "$$missing" in *chromium*) \
	  setsid bash -c 'apt-get install -y -qq chromium > $(CHROMIUM_INSTALL).log 2>&1; echo $$? > $(CHROMIUM_INSTALL).rc' \
	    </dev/null >/dev/null 2>&1 & ;; \
	  *) echo 0 > $(CHROMIUM_INSTALL).rc;; esac

# Waits for the background Chromium install of system-packages (at most 15 minutes).
chromium-ready:
	@for i in $$(seq 900); do [ -f $(CHROMIUM_INSTALL).rc ] && break; sleep 1; done; \
	[ "$$(cat $(CHROMIUM_INSTALL).rc 2>/dev/null)" = 0 ] && command -v chromium >/dev/null \
	  || { echo "error: could not install chromium (see $(CHROMIUM_INSTALL).log): run 'apt-get install chromium' and try again"; exit 1; }

# The tiers one after the other, each run to the end; make fails at the end, naming the tiers that
# failed.
# - unit+integration: their modules in two processes (`pytest -n 2 --dist loadfile`), each with its
#   own Spark session: no module shares state with another, a module's tests stay in one process, in
#   order, and the many small unit modules fill the gaps the integration modules leave. The longest
#   integration modules go first (a module of few long tests would otherwise wait behind one of many
#   quick ones), the unit modules last, to fill the ends.
# - e2e: the embedded stack and the tests that drive it, once Chromium is there (installed in the
#   background while the first tier runs).
# One after the other, not side by side: the end-to-end tier waits on the stack's processes, and
# beside the other tier it took twice its time alone (1064 s against 550 s), more than the other
# tier's whole run (312 s alone) saves.
# The venv and the Debian packages are set up side by side (-j2).
LONG_FIRST := $(addprefix tests/integration/test_,bench_scale_smoke.py bench_smoke.py raw_gate.py range_jobs.py on_spark_connect.py model_path.py second_model.py)
FIRST_TIER := $(LONG_FIRST) $(filter-out $(LONG_FIRST),$(sort $(wildcard tests/integration/test_*.py))) tests/unit tests/dags
test: ## Set up and run every test tier (unit, dags, integration, e2e)
	@$(MAKE) --no-print-directory -j2 $(ARCHIVE) system-packages
	@start=$$(date +%s); failed=""; \
	echo "== unit+integration: -n 2 --dist loadfile $(FIRST_TIER)"; \
	$(BIN)/python -m pytest -q --durations=25 -n 2 --dist loadfile --no-loadscope-reorder $(FIRST_TIER) \
	  || failed="$$failed unit+integration"; \
	echo "== unit+integration took $$(( $$(date +%s) - start )) s"; \
	if $(MAKE) --no-print-directory chromium-ready; then \
	  e2e_start=$$(date +%s); echo "== e2e: tests/e2e"; \
	  $(BIN)/python -m pytest -q --durations=25 tests/e2e || failed="$$failed e2e"; \
	  echo "== e2e took $$(( $$(date +%s) - e2e_start )) s"; \
	else failed="$$failed e2e"; fi; \
	echo "== all tiers took $$(( $$(date +%s) - start )) s"; \
	if [ -n "$$failed" ]; then echo "FAILED tiers:$$failed"; exit 1; fi

BENCH_HOME ?= .mlcycle-bench

bench: $(ARCHIVE) ## Run every benchmark of docs/PERFORMANCE.md on a stack of their own (about 3 h)
	$(BIN)/python bench/parse_cost.py --repeat 5
	$(BIN)/python bench/day_pipeline.py --home $(BENCH_HOME) --repeat 5 --preload on --engine both --gates both
	$(BIN)/python bench/serving.py --home $(BENCH_HOME) --rounds 5
	$(BIN)/python bench/backfill_growth.py --home $(BENCH_HOME) --sizes 7 30 90 --data-only
	$(BIN)/python bench/feature_views.py --data-root $(BENCH_HOME)/feature-views-connect --days 29 --rounds 5 --keep checkpoint views cache --remote sc://127.0.0.1:15202
	$(BIN)/python bench/backfill_year.py --home $(BENCH_HOME) --months 12 --stop
	$(BIN)/python bench/scale.py --source $(BENCH_HOME)/year --make-source --work $(BENCH_HOME)/scale --sizes 1 10 30
	$(BIN)/python bench/scoring_throughput.py --data-root $(BENCH_HOME)/data --days 14 --copies 1 10 30 --repeat 5
	$(BIN)/python bench/feature_views.py --data-root $(BENCH_HOME)/feature-views --days 29 --rounds 5 --keep checkpoint views cache
	$(BIN)/python bench/class_archive.py --data-root $(BENCH_HOME)/class-archive --rounds 5

test-fast: $(ARCHIVE) ## Tests that need no running service
	$(BIN)/python -m pytest tests/unit tests/dags -q

.PHONY: help venv lock demo start stop status approve lint system-packages chromium-ready test test-fast bench
