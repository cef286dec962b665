"""`localcoder bench`: the latency table (2,000 tokens of context; 16/32/64 new tokens) on this machine."""

from __future__ import annotations

from typing import Optional

import typer

from localcoder.bench import NEW_TOKENS, SCENARIOS, run_bench
from localcoder.cli._common import (
    ENGINE_MODEL,
    ENGINE_PROMPT,
    ENGINE_TIMEOUT,
    ENGINE_URL,
    GPU_LAYERS,
    MODEL,
    THREADS,
    fail,
    stderr,
    stdout,
    user_errors,
)
from localcoder.completion.engine import make_engine
from localcoder.render import print_json, render_bench

EPILOG = """\
cold: a new process loads the model and reads all 2,000 tokens; warm: a resident server with an empty
cache; hot-type / hot-enter: the resident server after a request on the same file, then three characters
typed, or Enter pressed. "read" is how many prompt tokens the model had to evaluate.

[bold]Examples[/]

  localcoder bench
  localcoder bench --model codegen25-7b-mono_P.Q4_K_M --new-tokens 16 --json
  localcoder bench --lookup 10 --no-cold
  localcoder bench --engine http://gpu-box:8080 --model codegen25-tokenizer   [dim]# serve --engine in front of it[/]

With --engine the resident server is `serve --engine` and the cold runs `complete --engine`: the table is what
editors get through localcoder from that engine ("read" counts what this side sent, not what the engine's own
cache saved). `make bench-engine` adds several editors at once and the overhead against the engine alone.
"""


def register(app: typer.Typer) -> None:
    app.command("bench", epilog=EPILOG)(bench_command)


@user_errors
def bench_command(
    model: Optional[str] = MODEL,
    new_tokens: str = typer.Option(",".join(map(str, NEW_TOKENS)), "--new-tokens", help="Comma list of lengths."),
    cold: bool = typer.Option(True, "--cold/--no-cold", help="Also time a new process per length (slow)."),
    lookup: int = typer.Option(0, "--lookup", min=0, max=64, help="Prompt-lookup decoding: draft tokens per step."),
    threads: Optional[int] = THREADS,
    gpu_layers: Optional[int] = GPU_LAYERS,
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    engine: Optional[str] = ENGINE_URL,
    engine_model: Optional[str] = ENGINE_MODEL,
    engine_prompt: str = ENGINE_PROMPT,
    engine_timeout: float = ENGINE_TIMEOUT,
) -> None:
    """Time infill at 2,000 tokens of context: cold, warm and hot (after typing), on this machine."""
    try:
        lengths = tuple(int(part) for part in new_tokens.split(","))
    except ValueError:
        raise fail(f"--new-tokens {new_tokens!r}: expected numbers like 16,32,64") from None
    if not lengths or any(not 1 <= length <= 512 for length in lengths):
        raise fail("--new-tokens: each length must be between 1 and 512")
    remote = make_engine(engine, engine_model, engine_prompt, engine_timeout)
    with stderr.status("benchmarking") as status:
        report = run_bench(
            model, lengths, lookup, threads, gpu_layers, cold, lambda text: status.update(text), engine=remote
        )
    if as_json:
        print_json("bench", report)
        return
    render_bench(stdout, report, SCENARIOS, cold)
