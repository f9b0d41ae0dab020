# Every target sets up its own virtual environment from pyproject.toml (pinned by
# constraints.txt), so a machine with only Python >= 3.11 and make is enough.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint types layers schema soak clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit("credit-gateway needs Python >= 3.11" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

# PORT=8010 when 8000 is taken; SUBJECTS for a smaller or larger dataset.
demo: $(STAMP)
	$(BIN)/credit-gateway demo $(if $(PORT),--port $(PORT)) $(if $(SUBJECTS),--subjects $(SUBJECTS))

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
