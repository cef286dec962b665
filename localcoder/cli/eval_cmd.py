"""`localcoder eval BENCHMARK`: pass@k of a model on HumanEval, HumanEval-Infilling or MTPB."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from localcoder.cli._common import (
    CTX,
    ENGINE_MODEL,
    ENGINE_PROMPT,
    ENGINE_TIMEOUT,
    ENGINE_URL,
    GPU_LAYERS,
    MODEL,
    TEMPERATURE,
    THREADS,
    TOP_P,
    fail,
    stderr,
    stdout,
    user_errors,
)
from localcoder.cli.progress import RichEvalEvents
from localcoder.completion.engine import make_engine
from localcoder.completion.generate import SEED_MAX, SEED_MIN
from localcoder.evaluate.datasets import BENCHMARKS
from localcoder.evaluate.runner import EvalInterrupted, EvalRequest, run_eval, validate
from localcoder.render import print_json, render_eval
from localcoder.runtime import resolve_model

EPILOG = f"""\
[bold]Benchmarks[/]

{chr(10).join(f"  [cyan]{name:<18}[/] {b.description}" for name, b in BENCHMARKS.items())}

Each sample's program runs in the OS sandbox (bubblewrap on Linux, sandbox-exec on macOS): none of your
files, no network, no new processes, a time limit (3 s, MTPB 20 s) and 1 GB of memory. Without one, eval
refuses and says what to install; --unsafe-no-sandbox runs the programs anyway, unconfined, as you: only
the limits and a guard against accidents hold, so a hostile model's code could read, write or send your files.

With --out, every finished sample is appended to the file at once; the same command run again skips the
samples the file holds (a larger -n adds samples). The file refuses samples of other options.

[bold]Examples[/]

  localcoder eval humaneval -t 0 --out he.jsonl                     [dim]# greedy pass@1[/]
  localcoder eval humaneval -n 100 -k 1,10,100 -t 0.8 --out he-100.jsonl
  localcoder eval infill-single --limit 100 --workers 8
  localcoder eval mtpb --limit 10 --json
  localcoder eval humaneval --unsafe-no-sandbox    [dim]# no bubblewrap here; only for models you trust[/]
  localcoder eval kld --base F16.gguf Q4_K_M.gguf  [dim]# what a quantization costs, in minutes: eval kld -h[/]
  localcoder eval humaneval -n 10 --engine http://gpu-box:8000 -c 8   [dim]# a batching engine[/]
"""


def register(app: typer.Typer) -> None:
    app.command("eval", epilog=EPILOG)(eval_command)


@user_errors
def eval_command(
    benchmark: str = typer.Argument(..., help=f"{' | '.join(BENCHMARKS)}, or kld (see eval kld --help)"),
    model: Optional[str] = MODEL,
    samples: int = typer.Option(1, "-n", "--samples", help="Samples per task (n)."),
    ks: str = typer.Option("1", "-k", help="pass@k to report: a comma list, each at most n (e.g. 1,10,100)."),
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    seed: int = typer.Option(
        0, "--seed", min=SEED_MIN, max=SEED_MAX, help="Sample i of every task uses seed + i (32-bit)."
    ),
    max_tokens: Optional[int] = typer.Option(
        None, "--max-tokens", min=1, help="Most new tokens per sample (MTPB: per turn). Default: the benchmark's."
    ),
    limit: Optional[int] = typer.Option(
        None, "--limit", help="Only the first N tasks (MTPB: five per problem, one per input)."
    ),
    workers: int = typer.Option(
        min(4, os.cpu_count() or 1), "--workers", "-w", min=1, help="Programs run in parallel."
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Results file (JSON Lines); a rerun resumes it."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of a table."),
    ctx: Optional[int] = CTX,
    threads: Optional[int] = THREADS,
    gpu_layers: Optional[int] = GPU_LAYERS,
    unsafe_no_sandbox: bool = typer.Option(
        False,
        "--unsafe-no-sandbox",
        help="Run the programs WITHOUT the OS sandbox: as you, able to read and write your files and reach the"
        " network; only time and memory limits and a guard against accidents hold.",
    ),
    engine: Optional[str] = ENGINE_URL,
    engine_model: Optional[str] = ENGINE_MODEL,
    engine_prompt: str = ENGINE_PROMPT,
    engine_timeout: float = ENGINE_TIMEOUT,
    concurrency: int = typer.Option(
        1,
        "--concurrency",
        "-c",
        min=1,
        help="Completions in flight at once through --engine (its batching decides the gain);"
        " in-process generation is always one at a time.",
    ),
) -> None:
    """Measure pass@k on HumanEval, HumanEval-Infilling or MTPB, running each program in a sandbox."""
    try:
        k_values = tuple(int(part) for part in ks.split(","))
    except ValueError:
        raise fail(f"-k {ks!r}: expected numbers like 1,10,100") from None
    options = dict(samples=samples, ks=k_values, temperature=temperature, top_p=top_p, seed=seed)
    options |= dict(max_tokens=max_tokens, limit=limit, workers=workers, out=out)
    options |= dict(ctx=ctx, threads=threads, gpu_layers=gpu_layers, unsafe_no_sandbox=unsafe_no_sandbox)
    options |= dict(engine=make_engine(engine, engine_model, engine_prompt, engine_timeout), concurrency=concurrency)
    validate(EvalRequest(benchmark, Path(), **options))  # bad options fail before a model is looked for
    request = EvalRequest(benchmark, resolve_model(model), **options)
    try:
        with RichEvalEvents(stderr, benchmark) as events:
            summary = run_eval(request, events)
    except EvalInterrupted as exc:
        raise fail(str(exc), 130) from None
    if as_json:
        print_json("eval", summary)
    else:
        render_eval(stdout, summary)
