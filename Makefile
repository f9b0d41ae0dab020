# Every target sets up its own virtual environment from pyproject.toml (pinned by
# constraints.txt), so a machine with only Python >= 3.11 and make is enough.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo cluster test check lint types layers schema soak bench bench-anchor clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit("credit-gateway needs Python >= 3.11" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

# PORT=8010 when 8000 is taken; SUBJECTS for a smaller or larger dataset.
demo: $(STAMP)
	$(BIN)/credit-gateway demo $(if $(PORT),--port $(PORT)) $(if $(SUBJECTS),--subjects $(SUBJECTS))

# The sandbox, REPLICAS gateways (3) on the local PostgreSQL and Redis, a round-robin front
# on PORT (8000) and the replicas on the ports after it (docs/deployment.md, Several replicas).
cluster: $(STAMP)
	$(BIN)/credit-gateway cluster $(if $(PORT),--port $(PORT)) $(if $(REPLICAS),--replicas $(REPLICAS)) $(if $(SUBJECTS),--subjects $(SUBJECTS))

test: $(STAMP)
	$(BIN)/pytest

check: lint types layers schema

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

# The one-way dependencies written in .importlinter (docs/architecture.md).
layers: $(STAMP)
	$(BIN)/lint-imports

schema: $(STAMP)
	$(BIN)/pytest -q tests/test_schema.py

# Not in CI: the gateway under mixed load and department faults; MINUTES=10 by default.
soak: $(STAMP)
	$(BIN)/python -m sandbox.soak --minutes $(or $(MINUTES),10)

# Not in CI: the gateway's figures over the sandbox beside their goals, a few minutes
# (docs/performance.md); LATENCY_MS=20 by default, BENCH_ARGS for the other knobs.
bench: $(STAMP)
	$(BIN)/python -m bench.run $(if $(LATENCY_MS),--latency-ms $(LATENCY_MS)) $(BENCH_ARGS)

# Not in CI: a market-only query against Hive Gateway; needs Node 20 and npm (the packages
# go to ~/.cache/credit-gateway/bench-anchor), else it says why and skips.
bench-anchor: $(STAMP)
	$(BIN)/python -m bench.run --suite anchor $(if $(LATENCY_MS),--latency-ms $(LATENCY_MS)) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
