"""The `localcoder` command: a thin Typer layer over convert/ and localcoder/.

Each command lives in its own module, parses options, calls one core
function and renders its result; see docs/code-style.md.
"""

from __future__ import annotations

import signal

import typer

from localcoder import __version__
from localcoder.cli import (
    bench_cmd,
    chat_cmd,
    complete_cmd,
    convert_cmd,
    demo_cmd,
    doctor_cmd,
    eval_cmd,
    inspect_cmd,
    models_cmd,
    serve_cmd,
    verify_cmd,
)

app = typer.Typer(
    name="localcoder",
    help="Offline code assistant for the CodeGen model family, on llama.cpp.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
COMMANDS = (complete_cmd, chat_cmd, serve_cmd, convert_cmd, models_cmd, inspect_cmd, verify_cmd, bench_cmd, doctor_cmd)
for module in (*COMMANDS, eval_cmd, demo_cmd):
    module.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"localcoder {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Offline code assistant for the CodeGen model family, on llama.cpp."""


def main() -> None:
    try:
        app()
    finally:
        # The command has finished and said so: a Ctrl-C now could only break the interpreter's exit into a
        # traceback from threading._shutdown, so it is ignored.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
