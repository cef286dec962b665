"""`localcoder bench`: the latency table (2,000 tokens of context; 16/32/64 new tokens) on this machine."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from localcoder.bench import NEW_TOKENS, SCENARIOS, run_bench
from localcoder.cli._common import fail, stderr, stdout, user_errors
from localcoder.render import plain, print_json

EPILOG = """\
cold: a new process loads the model and reads all 2,000 tokens; warm: a resident server with an empty
cache; hot-type / hot-enter: the resident server after a request on the same file, then three characters
typed, or Enter pressed. "read" is how many prompt tokens the model had to evaluate.

[bold]Examples[/]

  localcoder bench
  localcoder bench --model codegen25-7b-mono_P.Q4_K_M --new-tokens 16 --json
  localcoder bench --lookup 10 --no-cold
"""


def register(app: typer.Typer) -> None:
    app.command("bench", epilog=EPILOG)(bench_command)


@user_errors
def bench_command(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="GGUF path or name (else the default model)."),
    new_tokens: str = typer.Option(",".join(map(str, NEW_TOKENS)), "--new-tokens", help="Comma list of lengths."),
    cold: bool = typer.Option(True, "--cold/--no-cold", help="Also time a new process per length (slow)."),
    lookup: int = typer.Option(0, "--lookup", min=0, max=64, help="Prompt-lookup decoding: draft tokens per step."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads (default: llama.cpp's)."),
    gpu_layers: Optional[int] = typer.Option(None, "--gpu-layers", help="Layers to offload (-1 all)."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Time infill at 2,000 tokens of context: cold, warm and hot (after typing), on this machine."""
    try:
        lengths = tuple(int(part) for part in new_tokens.split(","))
    except ValueError:
        raise fail(f"--new-tokens {new_tokens!r}: expected numbers like 16,32,64") from None
    if not lengths or any(not 1 <= length <= 512 for length in lengths):
        raise fail("--new-tokens: each length must be between 1 and 512")
    with stderr.status("benchmarking") as status:
        report = run_bench(model, lengths, lookup, threads, gpu_layers, cold, lambda text: status.update(text))
    if as_json:
        print_json("bench", report)
        return
    table = Table(title=plain(f"{report.model}\n{report.machine}, {report.date}"), title_justify="left")
    table.add_column("new tokens", justify="right")
    for scenario in SCENARIOS:
        if cold or scenario != "cold":
            table.add_column(f"{scenario} ms (read)", justify="right")
    if cold:
        table.add_column("cold / hot-type", justify="right")
    for length in lengths:
        rows = {r.scenario: r for r in report.rows if r.new_tokens == length}
        cells = [f"{rows[s].latency_ms:,.0f} ({rows[s].evaluated_tokens})" for s in SCENARIOS if s in rows]
        if cold:
            cells.append(f"{rows['cold'].latency_ms / rows['hot-type'].latency_ms:.1f}x")
        table.add_row(str(length), *cells)
    stdout.print(table)
    footer = "; the cold figures include it and the process start-up" if cold else ""
    stdout.print(f"model load {report.load_ms:,.0f} ms{footer}")
