# The two commands of the README: `make demo` and `make test`.
# Both create the virtual environment on first use and install what they need.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# llama-cpp-python builds from source (about 12 CPU-minutes once; pip caches the wheel).
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: demo test lint bench-convert bench-complete bench-serve bench-sandbox system-deps clean

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

test: $(VENV)/.test system-deps
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

# bubblewrap, the Linux sandbox for /run and eval (and the tests of it): installed with apt-get only when bwrap is
# missing and we may (Linux, root, apt-get present); otherwise this says what is missing and does nothing.
system-deps:
	@if [ "$$(uname -s)" != Linux ] || command -v bwrap >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq bubblewrap >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq bubblewrap; }; \
	else \
	  echo "note: bwrap is missing (package bubblewrap); the sandbox tests skip, or fail where CI is set" >&2; \
	fi

# The sandbox's cost: HumanEval's 164 canonical checks unconfined (--unsafe-no-sandbox) and inside bwrap.
bench-sandbox: $(VENV)/.runtime system-deps
	$(BIN)/python benchmarks/bench_sandbox.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
