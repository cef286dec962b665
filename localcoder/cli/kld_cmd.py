"""`localcoder eval kld`: how far quantized GGUFs' next-token distributions are from a base GGUF's."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from localcoder.cli._common import GPU_LAYERS, THREADS, stderr, stdout, user_errors
from localcoder.errors import LocalcoderError
from localcoder.evaluate.corpus import load_corpus
from localcoder.evaluate.kld import MODES, KldRequest, run_kld
from localcoder.render import print_json, render_kld
from localcoder.runtime import check_gguf, resolve_model

EPILOG = """\
Each model's next-token distributions are compared with the base's on the same tokens: left to right over
the corpus (chunks of --ctx tokens), and infill (the model's own infill prompt around a middle of two lines in
every twelve; only the middle's tokens are scored, not the <eom> after it). The base is read once and its
top-k log-probabilities kept (positions x k numbers); then one model at a time is loaded, so comparing 7B
files needs the memory of one of them.

[bold]Reading the numbers[/]

  [cyan]mean KLD[/]   KL(base || model), nats per token; 0 for the same file
  [cyan]p99 KLD[/]    its 99th percentile: where the model departs most
  [cyan]top-1[/]      how often the model's likeliest token is the base's
  [cyan]PPL ratio[/]  exp(mean NLL model - base): 1.05 = 5% worse

The KL is over the base's top-k tokens plus one bucket for the rest: a lower bound of the full KL.

[bold]Examples[/]

  localcoder eval kld --base 7b-F16.gguf 7b-Q8_0.gguf 7b-Q4_K_M.gguf
  localcoder eval kld --base F16 Q6_K Q5_K_M --mode infill  [dim]# model dir names[/]
  localcoder eval kld --base F16.gguf Q4_K_M.gguf --corpus ~/src/app --json
"""


class KldProgress:
    """One bar per model on stderr, over its sequences."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<28}", markup=False), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=stderr,
        )  # fmt: skip
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> KldProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, what: str, done: int, total: int) -> None:
        if what not in self.tasks:
            self.tasks[what] = self.progress.add_task(what, total=total)
        self.progress.update(self.tasks[what], completed=done)


def _gguf(value: str) -> Path:
    return check_gguf(resolve_model(value))


@user_errors
def kld_command(
    models: list[str] = typer.Argument(..., help="GGUF paths or names in the model directory, to compare."),
    base: str = typer.Option(..., "--base", "-b", help="The reference GGUF (e.g. the F16 file)."),
    corpus: Optional[Path] = typer.Option(
        None, "--corpus", help="A folder of your own source files (default: built-in)."
    ),
    mode: str = typer.Option("both", "--mode", help=" | ".join(MODES)),
    top_k: int = typer.Option(32, "--top-k", min=1, help="Base log-probs kept per position."),
    ctx: int = typer.Option(512, "--ctx", min=64, help="Tokens per left-to-right chunk and per infill prompt."),
    limit: int = typer.Option(4096, "--limit", min=1, help="Most tokens scored per mode."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON instead of a table."),
    threads: Optional[int] = THREADS,
    gpu_layers: Optional[int] = GPU_LAYERS,
) -> None:
    """How much a quantization costs: KL divergence, top-1 agreement and perplexity against a base GGUF."""
    if mode not in MODES:
        raise LocalcoderError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    files = load_corpus(corpus)
    request = KldRequest(
        _gguf(base), tuple(_gguf(m) for m in models), files, str(corpus) if corpus else "built-in",
        mode, top_k, ctx, limit, threads, gpu_layers,
    )  # fmt: skip
    with KldProgress() as progress:
        report = run_kld(request, progress)
    if as_json:
        print_json("kld", report)
    else:
        render_kld(stdout, report)


def attach(eval_command: Any) -> Any:
    """Make `eval kld ...` reach this command while `eval BENCHMARK ...` stays the benchmark command.

    The root group builds a subcommand's context with make_context and then invokes that context's command:
    when the first word after `eval` is `kld`, the context built is this command's.
    """
    kld = typer.main.get_command(_app)
    kld.name = "kld"
    original = eval_command.make_context

    def make_context(info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        if args and args[0] == "kld":
            return kld.make_context(f"{info_name} kld", args[1:], parent=parent, **extra)
        return original(info_name, args, parent=parent, **extra)

    eval_command.make_context = make_context
    return kld


_app = typer.Typer(rich_markup_mode="rich", context_settings={"help_option_names": ["-h", "--help"]})
_app.command("kld", epilog=EPILOG)(kld_command)
