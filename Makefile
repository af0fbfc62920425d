# The two commands a newcomer runs: `make run` and `make test`. Everything else is a helper of those.
# bash with pipefail: a step piped into `tee` (make reliability) fails the target when the step fails.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)

.PHONY: run test test-only lint install chromium services bench bench-stats loadtest reliability serve clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## make run: install, migrate, load the demo region, serve on http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/exchange migrate
	$(BIN)/exchange load-demo --if-empty
	@$(BIN)/python -m exchange.demo.logins
	@echo "Open http://$(HOST):$(PORT)  (API docs: http://$(HOST):$(PORT)/docs)"
	$(BIN)/exchange serve --host $(HOST) --port $(PORT)

## make test: install what the tests need (incl. Debian's chromium), then lint, type-check and run the suite
test: $(STAMP) chromium services test-only

test-only: $(STAMP)
	$(BIN)/ruff check exchange solver tests
	$(BIN)/ruff format --check exchange solver tests
	$(BIN)/mypy
	$(BIN)/pytest

chromium:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		echo "Installing Debian's chromium and chromium-driver for the browser tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

## Redis for the queue tests (and PostgreSQL for .ci/run): start them if this machine has them but they are down
services:
	@bash scripts/ensure_services.sh

lint: $(STAMP)
	$(BIN)/ruff check exchange solver tests && $(BIN)/ruff format --check exchange solver tests && $(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m solver.bench

## Dashboard queries at national scale (50,000 enterprises x 24 months) on SQLite and PostgreSQL
bench-stats: $(STAMP) services
	$(BIN)/python -m exchange.stats.bench

## Locust on loopback against `exchange serve --workers 2` on PostgreSQL: 50 and 200 users pausing 1-5 s,
## then 200 users pausing 0.5-2 s (the stress setting)
loadtest: $(STAMP) services
	NEED_POSTGRES=1 bash scripts/ensure_services.sh
	$(BIN)/python scripts/loadtest/run.py --users 50 200 --seconds 60
	$(BIN)/python scripts/loadtest/run.py --users 200 --seconds 60 --think 0.5 2

## Everything in docs/reliability.md, figures written to var/reliability/ (about 28 minutes)
RELIABILITY := var/reliability
reliability: $(STAMP) chromium services
	NEED_POSTGRES=1 bash scripts/ensure_services.sh
	mkdir -p $(RELIABILITY)
	EXCHANGE_FUZZ_EXAMPLES=50 $(BIN)/pytest -p no:cacheprovider tests/exchange/security tests/reliability \
		tests/exchange/rounds/test_concurrency.py tests/exchange/ops | tee $(RELIABILITY)/tests.txt
	$(BIN)/python scripts/reliability/concurrent_accepts.py --runs 100 --json $(RELIABILITY)/accepts.json
	$(BIN)/python scripts/reliability/kill_worker.py --iterations 200 --json $(RELIABILITY)/kill_worker.json
	$(BIN)/python scripts/reliability/pg_restart.py --json $(RELIABILITY)/pg_restart.json
	$(BIN)/python scripts/loadtest/run.py --users 50 200 --seconds 60 --json $(RELIABILITY)/loadtest.json \
		| tee $(RELIABILITY)/loadtest.txt
	$(BIN)/python scripts/loadtest/run.py --users 200 --seconds 60 --think 0.5 2 \
		--json $(RELIABILITY)/loadtest_stress.json | tee $(RELIABILITY)/loadtest_stress.txt
	@echo "figures in $(RELIABILITY)/; compare with docs/reliability.md"

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
