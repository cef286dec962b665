"""`localcoder inspect`: metadata and tensor summary of a GGUF file."""

from __future__ import annotations

from pathlib import Path

import typer

from localcoder.cli._common import stdout, user_errors
from localcoder.gguf_info import read_gguf
from localcoder.render import print_json, render_summary

EPILOG = """\
[bold]Examples[/]

  localcoder inspect codegen25-7b-mono_P.Q4_K_M.gguf
  localcoder inspect model.gguf --all          [dim]# every tensor, not just the first block[/]
  localcoder inspect model.gguf --json | jq .metadata
"""


def register(app: typer.Typer) -> None:
    app.command("inspect", epilog=EPILOG)(inspect_command)


@user_errors
def inspect_command(
    path: Path = typer.Argument(..., help="A .gguf file."),
    all_tensors: bool = typer.Option(False, "--all", help="List every tensor."),
    as_json: bool = typer.Option(False, "--json", help="Print everything as JSON on stdout."),
) -> None:
    """Show a GGUF file's metadata (family, prompt format, tokenizer) and tensors."""
    summary = read_gguf(path)
    if as_json:
        print_json("inspect", summary)
    else:
        render_summary(stdout, summary, all_tensors)
