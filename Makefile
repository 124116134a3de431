# The two commands: `make serve` (set up, start the server on SQLite) and `make test` (set up, run everything).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
NEWMAN := .ci/node/node_modules/.bin/newman

.PHONY: serve test setup lint demo bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(NEWMAN):
	npm install --silent --no-audit --no-fund --prefix .ci/node newman@6

setup: $(VENV)/.installed

serve: setup
	$(PY) -m machinery serve

lint: setup
	$(VENV)/bin/ruff check machinery tests examples bench
	$(VENV)/bin/ruff format --check machinery tests examples bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pylint machinery

test: setup $(NEWMAN) lint
	$(PY) -m pytest

demo: setup
	$(PY) examples/demo.py

bench: setup
	$(PY) bench/seed_workflow.py
