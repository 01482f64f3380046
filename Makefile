# Jicai — the two commands a newcomer needs: `make demo` and `make test`.
# Everything installs into .venv from PyPI; nothing else to install by hand.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export JICAI_HOME ?= $(CURDIR)/var
# test processes (pytest-xdist; a module's tests stay in one): one per core, PYTEST_WORKERS=0 for one process
PYTEST_WORKERS ?= auto

.DEFAULT_GOAL := help
.PHONY: help install demo serve test lint pytest format messages clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Jicai needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install Jicai with its tools

demo: install ## create the database, load the demo data, print the logins, serve on http://127.0.0.1:8000
	$(BIN)/jicai init --quiet
	$(BIN)/jicai demo
	$(BIN)/jicai serve --port $${PORT:-8000}

serve: install ## serve the web UI on http://127.0.0.1:8000
	$(BIN)/jicai init --quiet
	$(BIN)/jicai serve --port $${PORT:-8000}

test: install lint pytest ## lint, type-check and run every test

lint: install ## ruff, ruff format, mypy, import-linter, migrations and translations up to date
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy jicai
	$(BIN)/lint-imports --no-cache
	JICAI_HOME=$$(mktemp -d) $(BIN)/jicai makemigrations --check --dry-run
	$(BIN)/python scripts/check_messages.py

pytest: install ## run the test suite (DATABASE_URL=postgres://… to run it on PostgreSQL); policy/ must stay at 100% branch coverage
	COVERAGE_FILE=$${COVERAGE_FILE:-$$(mktemp -u)} $(BIN)/pytest -q -p no:cacheprovider \
		-n $(PYTEST_WORKERS) --dist loadfile \
		--cov=jicai.policy --cov-branch --cov-report=term:skip-covered --cov-fail-under=100

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

messages: install ## recompile the Chinese translations after editing the .po file
	$(BIN)/python scripts/check_messages.py --compile

clean: ## remove .venv and var/
	rm -rf $(VENV) var
