# Everything a fresh machine needs: `make demo` (no root) and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
AZURITE := .tools/node_modules/.bin/azurite-blob
PYTEST_ARGS ?=
TEST_WORKERS ?= 2
DEBIAN_PACKAGES := rclone postgresql time chromium

.PHONY: all venv azurite tools test demo demo-gen1 lint bench clean

all: test

$(BIN)/lakeshift: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,dask]'
	touch $@

venv: $(BIN)/lakeshift

# The demo needs the venv (moto server comes from PyPI with the dev extra) and Azurite (npm,
# into .tools/): no root.  Tests and benchmarks also need PostgreSQL, rclone and time (Debian
# packages, installed as root); the web monitor's tests need Debian's chromium, which
# Playwright drives through executable_path (no `playwright install` download).
azurite: $(AZURITE)

tools: $(AZURITE) .tools/debian.ok

$(AZURITE): tools/package.json tools/package-lock.json
	mkdir -p .tools
	cp tools/package.json tools/package-lock.json .tools/
	cd .tools && npm ci --silent --no-audit --no-fund
	touch $@

.tools/debian.ok: Makefile
	mkdir -p .tools
	@if ! command -v rclone >/dev/null || ! test -x /usr/bin/time || ! test -x /usr/bin/chromium || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" != 0 ]; then echo "need root to apt-get install $(DEBIAN_PACKAGES)" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; \
	fi
	touch $@

# The suite in two phases, each failing make on a failure or on finding no test (pytest's
# exit 5): first all but the tests marked `alone` in two pytest-xdist workers, each with its
# own servers, a file whole on one worker (--dist loadfile), the longest files first
# (tests/conftest.py LONG_FILES); then the `alone` tests, which a busy neighbour can fail,
# in one process.  PYTEST_ARGS go to both phases.
test: venv tools
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy --strict src
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
	  --alone=exclude $(PYTEST_ARGS)
	$(BIN)/python -m pytest --alone=only $(PYTEST_ARGS)

demo: venv azurite
	$(BIN)/python scripts/demo.py

# ADLS Gen1 → ADLS Gen2 with ACLs, on the lab (tests/doubles/lab.py: the WebHDFS double in
# its Gen1 dialect, Azurite behind the DFS double): scan, copy --preserve, verify, then the
# files and ACLs checked with the Azure SDKs.  `python -m tests.doubles.lab` keeps it up.
demo-gen1: venv azurite
	$(BIN)/python -m tests.doubles.lab --demo

lint: venv
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy --strict src

bench: venv tools
	$(BIN)/python bench/copy_vs_rclone.py

clean:
	rm -rf $(VENV) .tools
