"""The `localcoder` command: a thin Typer layer over convert/ and localcoder/.

Each command lives in its own module, parses options, calls one core
function and renders its result; see docs/code-style.md.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from typing import Any

import typer

from localcoder import __version__
from localcoder.cli import (
    bench_cmd,
    chat_cmd,
    complete_cmd,
    context_cmd,
    convert_cmd,
    demo_cmd,
    doctor_cmd,
    eval_cmd,
    inspect_cmd,
    kld_cmd,
    lsp_cmd,
    models_cmd,
    pull_cmd,
    rm_cmd,
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
COMMANDS = (complete_cmd, chat_cmd, serve_cmd, eval_cmd, pull_cmd, convert_cmd, models_cmd, rm_cmd, inspect_cmd)
for module in (*COMMANDS, context_cmd, lsp_cmd, verify_cmd, bench_cmd, doctor_cmd, demo_cmd):
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


def reflow(epilog: str) -> str:
    """An epilog with each prose paragraph on one line, so the terminal wraps it at its own width; indented
    lines (examples) stay as written."""
    paragraphs = []
    for paragraph in epilog.split("\n\n"):
        lines = paragraph.split("\n")
        prose = not any(line.startswith("  ") for line in lines)
        paragraphs.append(" ".join(line.strip() for line in lines) if prose else "\n".join(map(_fit, lines)))
    flowed = "\n\n".join(paragraphs)
    # Typer dedents the epilog (inspect.cleandoc) by what all lines after the first share: when that is every
    # example's two spaces, a last line with no indent and no text keeps them.
    later = [line for line in flowed.split("\n")[1:] if line.strip()]
    return flowed + "\n[dim][/dim]" if later and all(line.startswith(" ") for line in later) else flowed


_COMMENT = re.compile(r"^(?P<indent> +)(?P<code>.*?)\s{2,}(?P<comment>\[dim\]#.*\[/\])$")
HELP_WIDTH = 78  # an 80-column terminal, less Rich's padding


def _fit(line: str) -> str:
    """An example line too wide for 80 columns gets its trailing comment on the line above."""
    match = _COMMENT.match(line)
    if match is None or len(re.sub(r"\[/?[a-z ]*\]", "", line)) <= HELP_WIDTH:
        return line
    return f"{match['indent']}{match['comment']}\n{match['indent']}{match['code']}"


def command() -> Any:
    """The click command Typer builds, with help that reads as prose: no <bool>/<str> type labels (a flag takes
    no value; a value is named after its option), epilogs reflowed to the terminal's width."""
    root = typer.main.get_command(app)
    for param in root.params:
        _name_value(param)
    root.get_help_option = _named_help(root.get_help_option)
    subs = list(getattr(root, "commands", {}).values())
    subs.append(kld_cmd.attach(root.commands["eval"]))  # `eval kld`, beside `eval BENCHMARK`
    for sub in subs:
        if sub.epilog:
            sub.epilog = reflow(sub.epilog)
        for param in sub.params:
            _name_value(param)
        sub.get_help_option = _named_help(sub.get_help_option)
    return root


def _name_value(param: Any) -> Any:
    if param.param_type_name == "argument":
        param.display_type_rich = lambda ctx: None  # type: ignore[attr-defined]  # its name says it
    elif param.metavar is None:
        param.metavar = "" if getattr(param, "is_flag", False) else (param.name or "value").upper().replace("_", "-")
    return param


def _named_help(get_help_option: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def wrapped(ctx: Any) -> Any:
        option = get_help_option(ctx)
        return _name_value(option) if option is not None else None

    return wrapped


def main() -> None:
    try:
        command()()
    finally:
        # The command has finished and said so: a Ctrl-C now could only break the interpreter's exit into a
        # traceback from threading._shutdown, so it is ignored.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
