# Tessera — the commands a new user needs. `make local` and `make test` work from a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.13 from PATH, else pyenv's (its shim only answers with PYENV_VERSION set).
PYTHON313 := $(shell if python3.13 -c '' >/dev/null 2>&1; then command -v python3.13; \
	elif command -v pyenv >/dev/null 2>&1 && [ -x "$$(pyenv prefix 3.13 2>/dev/null | head -1)/bin/python3.13" ]; then \
	echo "$$(pyenv prefix 3.13 | head -1)/bin/python3.13"; fi)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
API_PORT ?= 8000
EMULATOR_PORT ?= 5000
STAGE ?= dev

.PHONY: help venv local test lint bench package deploy clean

help:
	@echo "make local   - start the emulator and the API on http://127.0.0.1:$(API_PORT)"
	@echo "make test    - run the whole test suite"
	@echo "make lint    - ruff and mypy"
	@echo "make bench   - benchmarks (writes BENCHMARKS.md)"

$(STAMP): requirements.txt requirements-dev.txt
	@if [ -z "$(PYTHON313)" ]; then echo "Python 3.13 not found: install it (python3.13 on PATH or pyenv install 3.13)" >&2; exit 1; fi
	@if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then \
		rm -rf $(VENV); $(PYTHON313) -m venv $(VENV); fi
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

local: $(STAMP)
	API_PORT=$(API_PORT) EMULATOR_PORT=$(EMULATOR_PORT) $(PY) -m infra.local_stack

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build
