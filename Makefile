# Doorstep: `make demo` installs it and plays a live simulated day, `make test` installs and runs
# every check, `make run` installs and starts it on your own data.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo run serve test lint typecheck pytest system-deps lock clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Doorstep needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --reinstall-package doorstep -e .
	touch $@

install: $(STAMP)

# A live simulated day on a fresh database of its own; DEMO_ARGS="--speed 120 --orders 60" etc.
demo: install
	$(BIN)/doorstep demo $(DEMO_ARGS)

run: install
	$(BIN)/doorstep serve

serve: run

# Debian's Chromium for the browser tests; installed once, skipped where apt is not ours.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not installed: browser tests will be skipped"; fi; }

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: install
	$(BIN)/mypy

pytest: install system-deps
	$(BIN)/pytest -n 2 --durations=15

test: lint typecheck pytest

lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
