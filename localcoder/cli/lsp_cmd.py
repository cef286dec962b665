"""`localcoder lsp`: the completion core as a language server on stdin/stdout."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Optional

import typer

from localcoder.cli._common import (
    CONTEXT_BUDGET,
    CTX,
    ENGINE_MODEL,
    ENGINE_PROMPT,
    ENGINE_TIMEOUT,
    ENGINE_URL,
    GPU_LAYERS,
    LOOKUP,
    MODEL,
    NO_REPO_CONTEXT,
    THREADS,
    TOP_P,
    note,
    user_errors,
)
from localcoder.completion.engine import make_engine
from localcoder.completion.generate import MAX_TEMPERATURE, SEED_MAX, SEED_MIN
from localcoder.completion.prompts import check_layout
from localcoder.completion.truncate import check_scope
from localcoder.lsp.options import LspOptions
from localcoder.server.client import Completer, LoadOptions, open_completer, server_url

EPILOG = """\
Speaks the Language Server Protocol on stdin and stdout, for an editor's built-in LSP client: inline
completion (textDocument/inlineCompletion, LSP 3.18: ghost text) and one textDocument/completion item for
editors without it. The editor starts it; you do not run it by hand. Logs go to stderr.

[bold]Model[/]: when `localcoder serve` answers (at --server, LOCALCODER_SERVER, or http://127.0.0.1:8788),
completions come from its resident model, shared with the HTTP clients. Otherwise the model is loaded
here at the first request. initializationOptions and workspace/didChangeConfiguration may set model,
maxTokens, temperature, topP, seed, scope, promptLayout, contextBudget and debounceMs.

[bold]Examples[/] (the command an editor runs)

  localcoder lsp
  localcoder lsp --model codegen25-7b-multi-q4_k_m --max-tokens 48
  localcoder lsp --server http://127.0.0.1:8788      [dim]# share serve's model[/]
  localcoder lsp --no-server --debounce-ms 150
"""


def register(app: typer.Typer) -> None:
    app.command("lsp", epilog=EPILOG)(lsp_command)


@user_errors
def lsp_command(
    model: Optional[str] = MODEL,
    max_tokens: int = typer.Option(64, "--max-tokens", min=1, help="Most new tokens per completion."),
    temperature: float = typer.Option(
        0.0, "--temperature", "-t", min=0.0, max=MAX_TEMPERATURE, help="Sampling temperature; 0 = greedy."
    ),
    top_p: float = TOP_P,
    seed: Optional[int] = typer.Option(None, "--seed", min=SEED_MIN, max=SEED_MAX, help="Sampling seed, 32-bit."),
    scope: Optional[str] = typer.Option(None, "--scope", "-s", help="line | block | full (default: by cursor)."),
    layout: str = typer.Option("stable", "--prompt-layout", help="stable (typing appends to the cache) | cursor."),
    debounce_ms: float = typer.Option(
        75.0, "--debounce-ms", min=0.0, max=10_000.0, help="Wait for a newer keystroke before an automatic request."
    ),
    context_budget: Optional[int] = CONTEXT_BUDGET,
    no_repo_context: bool = NO_REPO_CONTEXT,
    threads: Optional[int] = THREADS,
    gpu_layers: Optional[int] = GPU_LAYERS,
    ctx: Optional[int] = CTX,
    lookup: int = LOOKUP,
    server: Optional[str] = typer.Option(
        None, "--server", help="URL of a `localcoder serve` to use (default: LOCALCODER_SERVER, then :8788)."
    ),
    no_server: bool = typer.Option(False, "--no-server", help="Always load the model in this process."),
    engine: Optional[str] = ENGINE_URL,
    engine_model: Optional[str] = ENGINE_MODEL,
    engine_prompt: str = ENGINE_PROMPT,
    engine_timeout: float = ENGINE_TIMEOUT,
) -> None:
    """Run a language server for editors (Neovim, Helix, Zed, Emacs, Sublime, VS Code) on stdin/stdout."""
    from localcoder.lsp.server import serve_stdio  # pygls loads only for this command

    options = LspOptions(
        model=model,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        scope=None if scope is None else check_scope(scope),
        prompt_layout=check_layout(layout),
        context_budget=0 if no_repo_context else context_budget,
        debounce_ms=debounce_ms,
    )
    remote = make_engine(engine, engine_model, engine_prompt, engine_timeout)
    load = LoadOptions(model, ctx, threads, gpu_layers, lookup, engine=remote)
    where = server_url(server, no_server)

    def completer_for(name: Optional[str]) -> Completer:
        return open_completer(replace(load, model=name), where, note)

    # stdout is the protocol's: anything else written there (llama.cpp's chatter, a stray print) goes to stderr.
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    raise typer.Exit(serve_stdio(options, completer_for, protocol_out))
