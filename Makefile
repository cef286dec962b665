# The two commands of the README: `make demo` and `make test`.
# Both create the virtual environment on first use and install what they need.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# llama-cpp-python builds from source (about 12 CPU-minutes once; pip caches the wheel).
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: demo test lint bench-convert bench-complete bench-serve bench-editor clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(BIN)/localcoder demo

test: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(VENV)/.test
	$(BIN)/ruff check .

# Conversion speed and memory on a synthetic checkpoint (default about 1 GB; SHAPE=7b for the real size).
SHAPE ?= 1gb
bench-convert: $(VENV)/.runtime
	$(BIN)/python benchmarks/bench_convert.py --shape $(SHAPE)

# Completion latency against llama-cpp-python's bare API (COMPLETE_SHAPE=7b for the real size).
COMPLETE_SHAPE ?= bench
bench-complete: $(VENV)/.runtime
	$(BIN)/python benchmarks/bench_complete.py --shape $(COMPLETE_SHAPE)

# Resident server: cold/warm/hot latency, generation speed against the bare API, --lookup speed-up.
bench-serve: $(VENV)/.runtime
	$(BIN)/python benchmarks/bench_serve.py --shape $(COMPLETE_SHAPE)

# An editing trace as llama.vim sends it (3 files, extra context, warm-ups): tokens read with 1 and 3 cache slots.
bench-editor: $(VENV)/.runtime
	$(BIN)/python benchmarks/bench_editor.py --shape $(COMPLETE_SHAPE)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
