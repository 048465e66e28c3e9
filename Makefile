# The two commands a newcomer needs: `make demo` and `make test`. Each installs what it needs first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export UV_PYTHON_DOWNLOADS := never

.PHONY: install demo test test-fast lint lint-template bench local clean

# uv makes a fresh install take seconds. Use the machine's uv if there is one; otherwise bootstrap it inside the
# project's venv with pip, so nothing is installed outside the project (and PEP 668 systems are fine).
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if command -v uv >/dev/null 2>&1; then uv=uv; else \
		test -x $(VENV)/bin/uv || $(PY) -m pip install -q --disable-pip-version-check uv; uv=$(VENV)/bin/uv; fi; \
		$$uv pip install -q -p $(PY) -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/memberflow local demo

local: install
	$(VENV)/bin/memberflow local up

test: install lint
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest tests/unit

lint-template: install
	$(VENV)/bin/cfn-lint template.yaml

lint: install lint-template
	$(VENV)/bin/ruff check shared functions infra tests
	$(VENV)/bin/mypy shared/memberflow
	@for handler in functions/*/app.py; do $(VENV)/bin/mypy $$handler || exit 1; done

bench: install
	$(PY) tests/benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache bench-results.json
