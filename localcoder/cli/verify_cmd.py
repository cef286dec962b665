"""`localcoder verify`: parity of a GGUF against the tokenizer reference and its checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from convert.checkpoint.source import resolve_source
from convert.verify import verify
from localcoder.cli._common import fail, stdout, user_errors
from localcoder.render import print_json, render_verify

EPILOG = """\
[bold]Examples[/]

  localcoder verify codegen25-7b-mono_P.F32.gguf ./codegen25-7b-mono_P
  localcoder verify model.Q4_K_M.gguf          [dim]# tokenizer only[/]
"""


def register(app: typer.Typer) -> None:
    app.command("verify", epilog=EPILOG)(verify_command)


@user_errors
def verify_command(
    gguf: Path = typer.Argument(..., help="The converted .gguf file."),
    checkpoint: Optional[str] = typer.Argument(
        None, help="Its source checkpoint (directory or Hub repo id) for logit parity."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Check that a GGUF tokenizes like its CodeGen model and (f32, with torch installed) computes the same logits."""
    directory = resolve_source(checkpoint).directory if checkpoint else None
    report = verify(gguf, directory)
    if as_json:
        print_json("verify", report)
    else:
        render_verify(stdout, report)
    if not report.ok:
        raise fail("parity check failed")
