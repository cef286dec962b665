"""`localcoder rm NAME`: remove a model from the model directory."""

from __future__ import annotations

import sys

import typer

from localcoder.cli._common import fail, note, stdout, user_errors
from localcoder.models import locate, remove_model
from localcoder.terminal import plain

EPILOG = """\
[bold]Examples[/]

  localcoder rm codegen25-7b-mono_P.Q4_K_M
  localcoder rm old.gguf --yes          [dim]# no question, even if it is the default[/]

Only files in the model directory are removed, by the name `localcoder models` shows; a symlink there loses
the link, never its target. The configured default (LOCALCODER_MODEL, config.toml) is kept unless --yes.
"""


def register(app: typer.Typer) -> None:
    app.command("rm", epilog=EPILOG)(rm_command)


@user_errors
def rm_command(
    name: str = typer.Argument(..., help="The model's name (with or without .gguf), as `localcoder models` shows."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask; remove the configured default too."),
) -> None:
    """Remove a model from the model directory (LOCALCODER_HOME/models)."""
    path = locate(name)
    if not yes and sys.stdin.isatty() and not typer.confirm(f"remove {path}?", default=False, err=True):
        raise fail("not removed")
    removed = remove_model(name, allow_default=yes)
    what = "symlink " if removed.was_symlink else ""
    stdout.print(plain(f"removed {what}{removed.path}"))
    if removed.was_default is not None:
        note(f"that was the default model ({removed.was_default.source}); `localcoder models` lists the rest")
