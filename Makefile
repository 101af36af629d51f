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

.PHONY: demo test test-fast lint format bench quality serve env browser clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): uv.lock pyproject.toml | $(UV)
	rm -f $(VENV)/.synced-*
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	touch $@

env: $(STAMP) ## create or update the environment from the lock file

# the page tests drive Debian's headless Chromium (test tools cannot download a browser here)
browser: ## install Debian's chromium and chromium-driver if they are missing
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium and chromium-driver for the page tests"; \
		(apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null)); \
	else \
		echo "the page tests need Debian's chromium and chromium-driver:" \
		     "sudo apt-get install chromium chromium-driver" >&2; exit 1; \
	fi

demo: $(STAMP) ## run the main job end to end on the small synthetic world
	$(VENV)/bin/amplify demo

test: $(STAMP) browser ## run the whole test suite
	$(VENV)/bin/pytest -n 2 --dist loadgroup

test-fast: $(STAMP) browser ## the suite without tests marked slow
	$(VENV)/bin/pytest -n 2 --dist loadgroup -m "not slow"

lint: $(STAMP) ## ruff: lint and format check
	$(VENV)/bin/ruff check amplify_ml tests
	$(VENV)/bin/ruff format --check amplify_ml tests

format: $(STAMP)
	$(VENV)/bin/ruff format amplify_ml tests
	$(VENV)/bin/ruff check --fix amplify_ml tests

bench: $(STAMP) ## the performance benchmarks on the small world (figures printed and written as JSON under the workspace)
	$(VENV)/bin/amplify bench ingest --scale small
	$(VENV)/bin/amplify bench features --scale small
	$(VENV)/bin/amplify bench scoring --scale small
	$(VENV)/bin/amplify bench transactions
	$(VENV)/bin/amplify bench serving

quality: $(STAMP) ## the four models against their targets on small worlds of three seeds, and the refit against the backtest's model (about 12 minutes on 2 cores)
	$(VENV)/bin/amplify bench quality --scale small --seed 7 --seed 1 --seed 2
	$(VENV)/bin/amplify bench refit --scale small --seed 7 --seed 1 --seed 2

serve: $(STAMP) ## the API on 127.0.0.1:8000 (docs at /docs) over the workspace (AMPLIFY_WORKSPACE or .amplify)
	$(VENV)/bin/amplify serve

clean: ## remove the environment and the workspace
	rm -rf $(VENV) $(TOOLS) .amplify .pytest_cache .ruff_cache
