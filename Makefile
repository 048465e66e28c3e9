# The two commands a newcomer needs: `make demo` and `make test`. Each installs what it needs first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export UV_PYTHON_DOWNLOADS := never

.PHONY: install bytecode demo test test-fast lint lint-template lint-code bench bench-power local clean lock

# uv makes a fresh install take seconds. Use the machine's uv if there is one; otherwise bootstrap it inside the
# project's venv with pip, so nothing is installed outside the project (and PEP 668 systems are fine). Installed with
# bytecode: where the interpreter is told not to write it (PYTHONDONTWRITEBYTECODE), every test process and every
# cold start the tests measure would otherwise compile boto3, moto and the rest again.
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if command -v uv >/dev/null 2>&1; then uv=uv; else \
		test -x $(VENV)/bin/uv || $(PY) -m pip install -q --disable-pip-version-check uv; uv=$(VENV)/bin/uv; fi; \
		$$uv pip install -q --compile-bytecode -p $(PY) -e '.[local,dev]'
	@touch $@

# The health report's browser test needs Chromium (Debian's package; Playwright drives it without a browser of its
# own): installed quietly where it is missing and apt-get can run (CI runs as root).
install: $(VENV)/.installed
	@command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || \
		echo "chromium could not be installed: the health report's browser test needs it (apt-get install chromium)"

demo: install bytecode
	$(VENV)/bin/memberflow local demo

local: install
	$(VENV)/bin/memberflow local up

# `make test`: the linters and the domain unit tests side by side (a failure stops here, each step's output printed
# whole), then the other tests (integration, end to end) on TEST_WORKERS processes. tests/conftest.py says which tests
# share a process (those sharing a module-scoped local stack) and which go first (the longest waits). The other tests
# use no Hypothesis: without its plugin, no process pays about 2 s of CPU to load it (pytest rewrites the assertions of
# every module of a package that brings a pytest plugin, on every import where no bytecode is written).
TEST_WORKERS ?= 6
test: install bytecode
	@$(MAKE) --no-print-directory -j3 --output-sync=target lint test-fast
	$(PY) -m pytest -n $(TEST_WORKERS) -p no:hypothesispytest --dist loadscope --no-loadscope-reorder --ignore=tests/unit

test-fast: install bytecode
	$(PY) -m pytest -n 2 tests/unit

# Our own modules' bytecode, for the same reason as the installed packages' (only what changed is compiled again).
bytecode: install
	@$(PY) -m compileall -q -j 0 shared functions infra relays >/dev/null

lint: lint-template lint-code

# cfn-lint with the Serverless Rules (cfn-lint-serverless): logging, tracing, failure destinations, redrive
# policies. Deliberate exceptions are ignored in template.yaml itself, next to the resource, with the reason.
lint-template: install
	$(VENV)/bin/cfn-lint template.yaml -a cfn_lint_serverless.rules

lint-code: install
	$(VENV)/bin/ruff check shared functions infra relays tests
	$(VENV)/bin/ruff format --check shared functions infra relays tests
	$(VENV)/bin/lint-imports --no-cache --no-logo
	$(VENV)/bin/mypy shared/memberflow
	$(VENV)/bin/mypy relays/discord/memberflow_discord_relay
	@for handler in functions/*/app.py; do $(VENV)/bin/mypy $$handler || exit 1; done

# The shared layer's lock: shared/requirements.txt, with hashes, from shared/requirements.in, for the layer's
# runtime (python3.12, arm64: see SharedLayer in template.yaml). Keeps the current pins unless
# `make lock LOCK_ARGS=--upgrade` (or --upgrade-package NAME).
LOCK_FLAGS := --generate-hashes --python-version 3.12 --python-platform aarch64-manylinux2014
lock: install
	@uv=$$(command -v uv || echo $(VENV)/bin/uv); \
		$$uv pip compile -q shared/requirements.in -o shared/requirements.txt --no-header $(LOCK_FLAGS) $(LOCK_ARGS)
	@{ echo '# Lock of the shared Lambda layer (sam build installs it into the layer): python3.12 on arm64.'; \
		echo '# Generated from shared/requirements.in; do not edit. Regenerate with `make lock`, which runs'; \
		echo '#   uv pip compile shared/requirements.in -o shared/requirements.txt $(LOCK_FLAGS)'; \
		echo '# (`make lock LOCK_ARGS=--upgrade` moves every pin to the newest allowed version).'; \
		echo '# boto3/botocore are not here: the Lambda Python runtime provides them.'; \
		cat shared/requirements.txt; } > shared/requirements.txt.tmp && mv shared/requirements.txt.tmp shared/requirements.txt

# run.py, then every automation's own benchmark (tests/benchmarks/bench_*.py); each adds its keys to bench-results.json.
bench: install
	$(PY) tests/benchmarks/run.py
	@for bench in tests/benchmarks/bench_*.py; do [ -e "$$bench" ] || continue; echo "== $$bench"; $(PY) "$$bench" || exit 1; done

# Each function's cold request and warm invocations under the CPU share of each Lambda memory size (a cgroup CPU
# quota), the cost per million invocations, the size chosen for each deadline (about 5 minutes on 2 cores).
bench-power: install
	$(PY) tests/benchmarks/power.py

clean:
	rm -rf $(VENV) .pytest_cache bench-results.json
