"""`localcoder context FILE:LINE[:COL]`: what repository context `complete` would show the model there."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from localcoder.cli._common import stderr, stdout, user_errors
from localcoder.cli.progress import IndexProgress
from localcoder.completion.request import ONE_SHOT_CONTEXT_SECONDS
from localcoder.context import gather
from localcoder.context.resolver import Deadline
from localcoder.context.stage import default_budget
from localcoder.render import print_json, render_context
from localcoder.runtime import load_tokenizer, resolve_model
from localcoder.source import MAX_READ_MB, locate, read_source, resolve_target

EPILOG = """\
The snippets come from the file's repository (the git work tree, else the nearest folder with a
pyproject.toml or setup.py, else the file's folder): definitions of the names near the cursor that the
file imports from other files (Python, TypeScript, JavaScript, Go, Rust, Java, C and C++), then windows of
other files that resemble the code before the cursor. Git-ignored, vendored, generated, binary and huge
files are skipped; nothing outside the root is read. Tokens are counted with the CodeGen tokenizer shipped
with localcoder (no model is needed), or with --model's.

[bold]Examples[/]

  localcoder context app.py:42
  localcoder context app.py:42:17 --budget 512
  localcoder context app.py:42 --model codegen25-7b-mono_P.Q4_K_M.gguf
  localcoder context app.py:42 --json | jq '.snippets[].path'
"""


def register(app: typer.Typer) -> None:
    app.command("context", epilog=EPILOG)(context_command)


@user_errors
def context_command(
    target: str = typer.Argument(..., help="FILE:LINE[:COL] (1-based), as for `complete`."),
    budget: Optional[int] = typer.Option(
        None, "--budget", min=0, help="Tokens of context (default: complete's default with a 2,048-token window)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: root, budget and the snippets."),
    encoding: Optional[str] = typer.Option(None, "--encoding", help="Text encoding of the file (default UTF-8)."),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="Count tokens with this GGUF's tokenizer (its weights are not loaded)."
    ),
) -> None:
    """Show the snippets of other files that `complete` would put before the code at a cursor."""
    path_text, line, col = resolve_target(target, None, None, False)
    buffer = read_source(Path(path_text), encoding, MAX_READ_MB << 20)
    cursor = locate(buffer, line, col)
    size = default_budget() if budget is None else budget
    counter = None
    if model is not None:
        tokenize = load_tokenizer(resolve_model(model))
        counter = lambda text: len(tokenize(text))  # noqa: E731
    with IndexProgress(stderr) as progress:
        deadline = Deadline.after(ONE_SHOT_CONTEXT_SECONDS)
        context = gather(
            path_text, buffer.text, cursor.offset, budget=size, counter=counter, progress=progress, deadline=deadline
        )
    if as_json:
        print_json("context", {**context.to_dict(), "notes": list(context.notes)})
    else:
        render_context(stdout, context)
