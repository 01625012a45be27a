# Everything runs inside .venv, created on first use from the python3 on PATH (3.11+).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Sets up and runs the demo: embedded signaling server, two nodes, echo over WebRTC.
demo: $(STAMP)
	$(BIN)/unisockets demo

## Sets up and runs every check: ruff, mypy, the whole pytest suite.
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check unisockets tests benchmarks
	$(BIN)/ruff format --check unisockets tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV)
