# The two commands of the README: `make demo` and `make test`.
# Both create the virtual environment on first use and install exactly the versions in requirements/.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# llama-cpp-python builds from source (about 12 CPU-minutes for each new environment).
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)
# Without llama.cpp's AMX kernels: on x86-64 processors that report AMX (Xeon 4th generation and later) its
# native build runs them for quantized weights, and under this project's virtual machines they die with SIGILL
# (`tileloadd` in ggml_backend_amx_mul_mat) although AMX itself works there. Every other native instruction stays.
# pip caches a built wheel under the source's hash alone, whatever CMAKE_ARGS were, so a wheel cached by an
# earlier build (with AMX, or with other flags) is removed before the install and the wheel is built anew.
ifeq ($(shell uname -m),x86_64)
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
export CMAKE_ARGS := $(strip $(CMAKE_ARGS) -DCMAKE_C_FLAGS="$(NO_AMX)" -DCMAKE_CXX_FLAGS="$(NO_AMX)")
endif

# The lock: every direct and indirect dependency at an exact version with its hashes (uv pip compile).
# runtime.txt serves `make demo` on any platform; test.txt adds the test references for Linux x86_64,
# with torch as the CPU build found in TORCH_WHEELS (pip's find-links).
LOCK_RUNTIME := requirements/runtime.txt
LOCK_TEST    := requirements/test.txt
TORCH_WHEELS ?= /opt/wheels
PIP_VERSION  := 26.3
UV_VERSION   := 0.13.8
FIND_LINKS   := $(if $(wildcard $(TORCH_WHEELS)),--find-links $(TORCH_WHEELS))
PIP_LOCKED   := $(BIN)/pip install --quiet --require-hashes $(FIND_LINKS) -r
FORGET_LLAMA := $(BIN)/pip cache remove llama_cpp_python >/dev/null 2>&1 || true

.PHONY: demo test test-latest lock lint system-deps bench-convert bench-complete bench-serve bench-editor \
	bench-sandbox bench-prompt bench-kld bench-engine bench-wire bench-context bench-context-hazards bench-llama-server lsp-client clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==$(PIP_VERSION)

$(VENV)/.runtime: $(LOCK_RUNTIME) pyproject.toml | $(BIN)/python
	$(FORGET_LLAMA)
	$(PIP_LOCKED) $(LOCK_RUNTIME)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.test: $(LOCK_TEST) pyproject.toml | $(BIN)/python
	$(FORGET_LLAMA)
	$(PIP_LOCKED) $(LOCK_TEST)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(BIN)/localcoder demo

test: $(VENV)/.test system-deps lsp-client
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(VENV)/.test
	$(BIN)/ruff check .

# Regenerate the lock from pyproject.toml: keeps the pinned versions that still fit and pins new
# dependencies; `make lock UPGRADE=1` moves every package to its newest release instead.
UV := $(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 $(if $(UPGRADE),--upgrade)
lock: | $(BIN)/python
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(UV) --extra test --python-platform x86_64-manylinux_2_28 --find-links $(TORCH_WHEELS) \
		--constraint requirements/torch-cpu.txt -o $(LOCK_TEST)
	$(UV) --universal --constraint $(LOCK_TEST) -o $(LOCK_RUNTIME)

# The tests against the newest release of every dependency (torch stays the local CPU build), in a
# throwaway environment: drift shows here before a fresh install breaks for users. Not part of CI.
test-latest: system-deps
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install --quiet --upgrade pip
	.venv-latest/bin/pip install --quiet --upgrade -e '.[test]'
	.venv-latest/bin/pip freeze --exclude-editable > .venv-latest/versions.txt
	@echo "newest versions: .venv-latest/versions.txt"
	.venv-latest/bin/pytest

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

# An editing trace as llama.vim sends it (3 files, extra context, warm-ups): tokens read with 1 and 3 cache slots;
# then a typing trace through `localcoder lsp` (inlineCompletion) against the same over /infill: ms per keystroke.
bench-editor: $(VENV)/.runtime
	$(BIN)/python benchmarks/bench_editor.py --shape $(COMPLETE_SHAPE)
	$(BIN)/python benchmarks/bench_editor_lsp.py --shape $(COMPLETE_SHAPE)

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
	@# Neovim: its built-in LSP client drives `localcoder lsp` in tests/test_lsp_clients.py (Debian's is 0.7).
	@if [ "$$(uname -s)" != Linux ] || command -v nvim >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq neovim >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq neovim; }; \
	else \
	  echo "note: nvim is missing (package neovim); its language server test skips, or fails where CI is set" >&2; \
	fi
	@# Emacs with eglot, its own LSP client, drives `localcoder lsp` in batch mode in tests/test_lsp_clients.py.
	@if [ "$$(uname -s)" != Linux ] || emacs --batch --eval "(require 'eglot)" >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq emacs-nox elpa-eglot >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq emacs-nox elpa-eglot; }; \
	else \
	  echo "note: emacs or eglot is missing (packages emacs-nox, elpa-eglot); its language server test skips, or fails where CI is set" >&2; \
	fi

# The JavaScript LSP libraries VS Code extensions use (vscode-jsonrpc, vscode-languageserver-protocol), pinned
# by tests/lsp_client/package-lock.json, for the language server's tests. Without node: a note (CI: an error).
LSP_CLIENT := tests/lsp_client
lsp-client:
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "note: node/npm are missing; the language server's VS Code client test skips, or fails where CI is set" >&2; \
	  if [ -n "$$CI" ]; then exit 1; fi; \
	elif [ ! -f $(LSP_CLIENT)/node_modules/.package-lock.json ] \
	  || [ $(LSP_CLIENT)/package-lock.json -nt $(LSP_CLIENT)/node_modules/.package-lock.json ]; then \
	  npm ci --prefix $(LSP_CLIENT) --no-audit --no-fund --silent; \
	fi

# The sandbox's cost: HumanEval's 164 canonical checks unconfined (--unsafe-no-sandbox) and inside bwrap.
bench-sandbox: $(VENV)/.runtime system-deps
	$(BIN)/python benchmarks/bench_sandbox.py

# Prompt building time for 0.1 / 1 / 10 / 50 MB files, and its per-MB ratio (linear: 1.0).
# The server's request checks: hand-written fields.py against a pydantic model of the same body.
bench-wire: $(VENV)/.runtime
	$(BIN)/python benchmarks/bench_wire.py

bench-prompt: $(VENV)/.runtime
	$(BIN)/python benchmarks/bench_prompt.py

# eval kld's cost: seconds per 1k tokens, peak RSS (one model at a time), base top-k bytes. KLD_SHAPE=7b: real size.
KLD_SHAPE ?= 1gb
bench-kld: $(VENV)/.runtime
	$(BIN)/python benchmarks/bench_kld.py --shape $(KLD_SHAPE)

# eval samples/s in-process against llama-cpp-python's server at --concurrency 1 / 4 / 16 (needs the test extra); then
# four editors through serve --engine: overhead against the engine alone, --parallel 1 against 4.
bench-engine: $(VENV)/.test system-deps
	$(BIN)/python benchmarks/bench_engine.py

# The editor-latency trace against llama.cpp's own llama-server, side by side (LLAMA_SERVER=path to its binary,
# built from the llama.cpp sources in llama-cpp-python's sdist; see the script's --help).
bench-llama-server: $(VENV)/.runtime
	$(BIN)/python benchmarks/bench_llama_server.py --llama-server $(LLAMA_SERVER) --shape $(COMPLETE_SHAPE)

# Repository context: recall@1024 and MRR on thirteen PyPI sdists (downloaded by pip into ~/.cache/localcoder-bench,
# or $LOCALCODER_BENCH_CACHE; a tuning and a held-out half) beside Copilot's Jaccard windows; cold, warm, per keystroke.
bench-context: $(VENV)/.runtime
	$(BIN)/python benchmarks/bench_context.py

# Repository context in TypeScript, JavaScript, Go, Rust, Java and C: recall@1024 beside Jaccard windows on real
# repositories fetched into ~/.cache/localcoder-bench (npm pack, apt-get download, pip download); cold and warm time.
.PHONY: bench-context-langs
bench-context-langs: $(VENV)/.runtime
	$(BIN)/python benchmarks/bench_context_langs.py

# The context stage's deadline on hostile or huge repositories (200,000 files, 50,000 .js, a FIFO HEAD).
.PHONY: bench-context-hazards
bench-context-hazards: $(VENV)/.runtime
	$(BIN)/python benchmarks/bench_context_hazards.py

clean:
	rm -rf $(VENV) .venv-latest .pytest_cache .ruff_cache build *.egg-info
