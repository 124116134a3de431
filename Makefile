# The two commands: `make serve` (set up, start the server on SQLite) and `make test` (set up, run everything).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
NEWMAN := .ci/node/node_modules/.bin/newman
# The console's front end: npm packages from frontend/package-lock.json, built into the package.
WEB_DIST := machinery/web/static/dist
FRONTEND_MODULES := frontend/node_modules/.installed

.PHONY: serve test setup lint demo bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(NEWMAN):
	npm install --silent --no-audit --no-fund --prefix .ci/node newman@6

$(FRONTEND_MODULES): frontend/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed to build the console (Debian: apt-get install npm)"; exit 1; }
	npm ci --silent --no-audit --no-fund --ignore-scripts --prefix frontend
	touch $@

$(WEB_DIST)/.built: $(FRONTEND_MODULES) frontend/build.mjs $(shell find frontend/src -type f)
	npm run --silent --prefix frontend build
	touch $@

setup: $(VENV)/.installed $(WEB_DIST)/.built

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
