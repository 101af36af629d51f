# amplify_ml: the two commands a newcomer needs are `make demo` and `make test`.
# Each creates the environment it needs from the lock file (uv.lock) on first use.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON_PREFERENCE := only-system

.PHONY: demo test test-fast lint format bench serve env clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): uv.lock pyproject.toml | $(UV)
	rm -f $(VENV)/.synced-*
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	touch $@

env: $(STAMP) ## create or update the environment from the lock file

demo: $(STAMP) ## run the main job end to end on the small synthetic world
	$(VENV)/bin/amplify demo

test: $(STAMP) ## run the whole test suite
	$(VENV)/bin/pytest -n 2 --dist loadgroup

test-fast: $(STAMP) ## the suite without tests marked slow
	$(VENV)/bin/pytest -n 2 --dist loadgroup -m "not slow"

lint: $(STAMP) ## ruff: lint and format check
	$(VENV)/bin/ruff check amplify_ml tests
	$(VENV)/bin/ruff format --check amplify_ml tests

format: $(STAMP)
	$(VENV)/bin/ruff format amplify_ml tests
	$(VENV)/bin/ruff check --fix amplify_ml tests

clean: ## remove the environment and the workspace
	rm -rf $(VENV) $(TOOLS) .amplify .pytest_cache .ruff_cache
