"""`localcoder eval BENCHMARK`: pass@k of a model on HumanEval, HumanEval-Infilling or MTPB."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from localcoder.cli._common import (
    ENGINE_MODEL,
    ENGINE_PROMPT,
    ENGINE_TIMEOUT,
    ENGINE_URL,
    fail,
    stderr,
    stdout,
    user_errors,
)
from localcoder.cli.progress import RichEvalEvents
from localcoder.completion.engine import make_engine
from localcoder.completion.generate import MAX_TEMPERATURE, SEED_MAX, SEED_MIN
from localcoder.evaluate.datasets import BENCHMARKS
from localcoder.evaluate.runner import EvalInterrupted, EvalRequest, EvalSummary, run_eval, validate
from localcoder.render import plain, print_json
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
    model: Optional[str] = typer.Option(None, "--model", "-m", help="GGUF path or name in the model directory."),
    samples: int = typer.Option(1, "-n", "--samples", help="Samples per task (n)."),
    ks: str = typer.Option("1", "-k", help="pass@k to report: a comma list, each at most n (e.g. 1,10,100)."),
    temperature: float = typer.Option(
        0.2, "--temperature", "-t", min=0.0, max=MAX_TEMPERATURE, help="Sampling temperature, 0 to 2; 0 = greedy."
    ),
    top_p: float = typer.Option(0.95, "--top-p", min=0.0, max=1.0, help="Nucleus sampling threshold."),
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
    ctx: Optional[int] = typer.Option(None, "--ctx", min=64, help="Context window (default: the model's)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads (default: llama.cpp's)."),
    gpu_layers: Optional[int] = typer.Option(None, "--gpu-layers", help="Layers to offload (-1 all)."),
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
        render_summary(summary)


def render_summary(summary: EvalSummary) -> None:
    """A row per model, a column per pass@k, as the papers' tables are laid out."""
    table = Table(
        title=f"{summary.benchmark}: {summary.tasks} tasks, n = {summary.samples_per_task},"
        f" T = {summary.temperature:g}, top-p = {summary.top_p:g}",
        title_justify="left",
    )
    table.add_column("model")
    for name in summary.pass_at_k:
        table.add_column(name, justify="right")
    for column in ("tasks", "samples", "new", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(
        plain(summary.model),
        *(f"{100 * value:.2f}" for value in summary.pass_at_k.values()),
        str(summary.tasks),
        str(summary.samples),
        str(summary.new_samples),
        f"{summary.seconds:,.1f}",
    )
    stdout.print(table)
    if summary.failures:
        reasons = ", ".join(f"{reason} ({count})" for reason, count in summary.failures.items())
        stdout.print(plain(f"pass@k in percent. Most common failures: {reasons}", "dim"))
    if summary.out:
        stdout.print(plain(f"per-sample results: {summary.out}", "dim"))
