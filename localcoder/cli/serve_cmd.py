"""`localcoder serve`: keep models loaded and answer completions over HTTP."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.text import Text

from localcoder.cli._common import (
    CTX,
    ENGINE_MODEL,
    ENGINE_PROMPT,
    ENGINE_TIMEOUT,
    ENGINE_URL,
    GPU_LAYERS,
    LOOKUP,
    THREADS,
    fail,
    stderr,
    user_errors,
)
from localcoder.completion.engine import make_engine
from localcoder.runtime import LoadOptions
from localcoder.server.engine_pool import DEFAULT_PARALLEL
from localcoder.server.http import DEFAULT_HOST, DEFAULT_PORT, LOOPBACK, ServeOptions, serve
from localcoder.server.pool import PoolOptions, duration_seconds
from localcoder.server.routes import ROUTES
from localcoder.terminal import plain
from localcoder.tokenizer_only import BUNDLED_TOKENIZER

_ROUTES = "\n".join(f"  {route.method:<5}{route.path:<17}{escape(route.summary)}" for route in ROUTES)
EPILOG = f"""\
The model stays in memory between requests, and so does what it has read: a request that shares the
start of a cached prompt re-reads only what changed. With the default stable prompt layout, typing at
the cursor or pressing Enter only appends to the prompt. --cache-slots N keeps N prompts cached (say, one
per file you switch between); each request is served from the one sharing the longest start with it.

Work nobody waits for stops: a client that hangs up stops its request mid-prompt, and a newer request from
the same client and file (llama-server's id_slot, OpenAI's user, localcoder's path) supersedes the older
(--no-supersede: first come, first served). Typing what was just suggested is answered with its rest at once;
--prefetch reads, while the model is idle, the prompt of the position accepting a suggestion leads to.

A POST /infill that names a file's absolute path gets context from that file's repository (see `localcoder
context`), while the server listens on loopback, only for requests from your own user (its uid on Linux, or the
token in your runtime folder that `complete` and `lsp` send), and never with / or a home directory as the root;
--repo-root DIR allows only repositories inside DIR; --repo-context / --no-repo-context say otherwise.

What it refuses: a Host that is not loopback or its own address, a web page's Origin, a POST body that is not
Content-Type: application/json (403/415). Beyond loopback it needs --api-key (clients send Authorization:
Bearer KEY; LOCALCODER_API_KEY sets it without showing it in `ps`), or --no-auth to serve anyone.

With --engine URL (vLLM, llama-server, llama_cpp.server) the engine generates and this server builds the
prompts: every route answers as with a local model. --model then names the GGUF whose vocabulary is read (no
weights), or {BUNDLED_TOKENIZER} for CodeGen2.5 (bundled: no GGUF needed); --parallel N requests go to the
engine at once (default {DEFAULT_PARALLEL}; a local model serves one at a time). A request the engine fails
(down, slow, garbled) gets a 502 with one line; /health shows the engine's state.

Editors: llama.vim and llama.vscode (llama-server's /infill), Continue and twinny (Ollama's API: set
OLLAMA_HOST=127.0.0.1:{DEFAULT_PORT} for ollama clients), minuet-ai.nvim and the openai client (/v1/completions).

[bold]Routes[/]
{_ROUTES}

[bold]Examples[/]

  localcoder serve                                  [dim]# http://{DEFAULT_HOST}:{DEFAULT_PORT}[/]
  localcoder serve --model codegen25-7b-mono_P.Q4_K_M --keep-alive 30m --lookup 10
  localcoder serve --cache-slots 4                  [dim]# four files' prompts stay cached[/]
  localcoder serve --prefetch --no-supersede        [dim]# read ahead; first come, first served[/]
  LOCALCODER_API_KEY=$(cat ~/.serve-key) localcoder serve --host 0.0.0.0  [dim]# a team's server[/]
  localcoder serve --repo-root ~/src                [dim]# context only for repositories under ~/src[/]
  localcoder serve --engine http://gpu-box:8000 --engine-model codegen25 --model {BUNDLED_TOKENIZER} --parallel 8
  localcoder complete app.py:42                     [dim]# uses the running server[/]
  curl -s localhost:{DEFAULT_PORT}/v1/completions -H 'Content-Type: application/json' \\
       -d '{{"prompt": "def add(a, b):", "suffix": "\\n", "max_tokens": 32}}'
"""


def parse_duration(text: str) -> float:
    """--keep-alive's seconds (server/pool.duration_seconds), or the one-line error."""
    seconds = duration_seconds(text)
    if seconds is None:
        raise fail(f"--keep-alive {text!r}: use seconds or a duration like 30s, 5m, 1h (0: unload, -1: forever)")
    return seconds


def register(app: typer.Typer) -> None:
    app.command("serve", epilog=EPILOG)(serve_command)


@user_errors
def serve_command(
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="Default model: GGUF path or name (else LOCALCODER_MODEL, config, the only one)."
    ),
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to listen on; anything but loopback is public."),
    port: int = typer.Option(DEFAULT_PORT, "--port", "-p", min=0, max=65535, help="Port (0: any free port)."),
    keep_alive: str = typer.Option(
        "5m",
        "--keep-alive",
        help="How long an idle model stays loaded, e.g. 30s, 5m, 1h; 0 unloads at once, -1 keeps it forever.",
    ),
    lookup: int = LOOKUP,
    ctx: Optional[int] = CTX,
    threads: Optional[int] = THREADS,
    gpu_layers: Optional[int] = GPU_LAYERS,
    max_models: int = typer.Option(1, "--max-models", min=1, help="Models kept loaded at once."),
    max_waiting: int = typer.Option(16, "--max-waiting", min=1, help="Queued requests per model before 503."),
    cache_slots: int = typer.Option(
        1, "--cache-slots", min=1, max=64, help="Prompts kept cached per model (RAM: about 0.5 MiB a token for 7B)."
    ),
    preload: bool = typer.Option(True, "--preload/--no-preload", help="Load the default model before listening."),
    supersede: bool = typer.Option(
        True,
        "--supersede/--no-supersede",
        help="A newer request from the same client and file (id_slot, user, path) stops the older one.",
    ),
    prefetch: bool = typer.Option(
        False, "--prefetch", help="After answering, read the prompt of where accepting the suggestion leads."
    ),
    repo_context: Optional[bool] = typer.Option(
        None,
        "--repo-context/--no-repo-context",
        help="Add context from the repository of the file a POST /infill names (default: on when listening on"
        " loopback only: a public server would show its own files to whoever asks).",
        show_default=False,
    ),
    api_key: Optional[str] = typer.Option(
        None,
        "--api-key",
        envvar="LOCALCODER_API_KEY",
        help="Requests must send Authorization: Bearer KEY (needed to listen beyond loopback; the environment"
        " variable keeps it out of `ps`).",
        show_envvar=True,
    ),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="Listen beyond loopback without an API key: anyone who reaches it may use it."
    ),
    repo_roots: Optional[list[Path]] = typer.Option(
        None, "--repo-root", help="Repository context only for repositories inside this folder (repeatable)."
    ),
    engine: Optional[str] = ENGINE_URL,
    engine_model: Optional[str] = ENGINE_MODEL,
    engine_prompt: str = ENGINE_PROMPT,
    engine_timeout: float = ENGINE_TIMEOUT,
    parallel: Optional[int] = typer.Option(
        None,
        "--parallel",
        min=1,
        max=256,
        help=f"Requests in flight to --engine at once (default {DEFAULT_PARALLEL}); a local model: one at a time.",
        show_default=False,
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No request log on stderr."),
) -> None:
    """Keep models loaded and serve completions over HTTP (llama-server, Ollama and OpenAI compatible)."""
    if host not in LOOPBACK and no_auth and not api_key:
        stderr.print(
            Text.assemble(
                ("warning:", "yellow"),
                plain(
                    f" listening on {host}: anyone who can reach this address"
                    " can use the model; there is no authentication"
                ),
            )
        )
    remote = make_engine(engine, engine_model, engine_prompt, engine_timeout)
    if remote is None and parallel is not None and parallel > 1:
        raise fail("--parallel above 1 needs --engine (a model in this process generates one request at a time)")
    if remote is not None and prefetch:
        raise fail("--prefetch reads prompts into a model in this process; with --engine the engine keeps its cache")
    options = ServeOptions(
        host=host,
        port=port,
        pool=PoolOptions(
            LoadOptions(model, ctx, threads, gpu_layers, lookup, cache_slots),
            parse_duration(keep_alive),
            max_models,
            max_waiting,
        ),
        preload=preload,
        quiet=quiet,
        supersede=supersede,
        prefetch=prefetch,
        repo_context=repo_context,
        api_key=api_key or None,
        no_auth=no_auth,
        repo_roots=tuple(path.absolute() for path in repo_roots or ()),
        engine=remote,
        parallel=parallel or DEFAULT_PARALLEL,
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as cleanly on SIGTERM as on Ctrl-C

    def ready(url: str) -> None:
        stderr.print(Text.assemble("localcoder serving on ", (url, "bold"), " (Ctrl-C stops)"), soft_wrap=True)

    try:
        serve(options, ready, lambda line: stderr.print(plain(line), soft_wrap=True))
    except KeyboardInterrupt:
        stderr.print("stopped")
