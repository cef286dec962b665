"""`localcoder demo`: the whole pipeline on a built-in tiny checkpoint (random weights)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from localcoder import paths
from localcoder.cli._common import stderr, stdout, user_errors
from localcoder.cli.progress import RichConvertEvents
from localcoder.demo import CHAT_SCRIPT, SAMPLE_LINE, run_demo
from localcoder.gguf_info import read_gguf
from localcoder.render import render_convert, render_summary
from localcoder.terminal import plain

EPILOG = """\
[bold]Examples[/]

  localcoder demo
  localcoder demo --dir /tmp/localcoder-demo
"""


def register(app: typer.Typer) -> None:
    app.command("demo", epilog=EPILOG)(demo_command)


@user_errors
def demo_command(
    directory: Optional[Path] = typer.Option(
        None, "--dir", help="Where to put the demo files. Default: LOCALCODER_HOME/demo."
    ),
) -> None:
    """Build a tiny RANDOM-weight CodeGen2.5 checkpoint; convert, inspect, complete a file and chat with it."""
    target = directory or paths.demo_dir()
    stderr.print(
        "[yellow]demo:[/] building a tiny CodeGen2.5-layout checkpoint with [bold]random weights[/] "
        f"in {target}; it shows the pipeline, not a useful model."
    )
    with RichConvertEvents(stderr) as events:
        result = run_demo(target, events)
    stdout.print(plain(f"checkpoint (random weights): {result.checkpoint}"))
    for conversion in result.conversions:
        render_convert(stdout, conversion)
    for conversion in result.conversions:
        stdout.rule(f"localcoder inspect {conversion.output.name}")
        render_summary(stdout, read_gguf(conversion.output))
    quant = result.conversions[-1].output
    stdout.rule(f"localcoder complete {result.sample.name}:{SAMPLE_LINE} --model {quant.name} -t 0 --max-tokens 16")
    stdout.print(result.sample.read_text(), markup=False, highlight=False)
    completion = result.completion
    stdout.print(
        f"completion at line {SAMPLE_LINE} ({completion.stop_reason}, {completion.alternatives[0].tokens} tokens,"
        f" {completion.timings_ms['total']:.0f} ms): {completion.completion!r}",
        markup=False,
        highlight=False,
    )
    script = " / ".join(CHAT_SCRIPT)
    stdout.rule(f'localcoder chat --script ("{script}") --model {quant.name} -t 0 --max-tokens 12')
    stdout.print(result.chat_program, markup=False, highlight=False)
    stdout.print(
        "[yellow]Note:[/] these GGUF files hold random weights, so the completion and the chat are noise."
        " See README.md to convert real CodeGen2.5 weights."
    )
