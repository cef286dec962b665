"""`localcoder complete FILE:LINE[:COL]`: fill in code at a cursor, streamed to stdout."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from localcoder.cli._common import (
    CONTEXT_BUDGET,
    CTX,
    ENGINE_MODEL,
    ENGINE_PROMPT,
    ENGINE_TIMEOUT,
    ENGINE_URL,
    GPU_LAYERS,
    LOOKUP,
    MODEL,
    NO_REPO_CONTEXT,
    TEMPERATURE,
    THREADS,
    TOP_P,
    fail,
    note,
    stderr,
    user_errors,
)
from localcoder.completion.engine import make_engine
from localcoder.completion.generate import SEED_MAX, SEED_MIN, Sampling
from localcoder.completion.request import ONE_SHOT_CONTEXT_SECONDS, CompletionRequest
from localcoder.completion.snippets import Snippet
from localcoder.edit import insert_completion, unified_diff, write_completion
from localcoder.render import print_json
from localcoder.server.client import LoadOptions, open_completer, server_url
from localcoder.source import MAX_READ_MB, read_bounded, read_source, read_source_bytes, resolve_target
from localcoder.terminal import plain

EPILOG = """\
LINE and COL are 1-based. Without COL the cursor is at the end of the line's text; a blank or
whitespace-only line is filled from its indentation. The model sees the code before the cursor and
after it, writes the middle, and ends it at its end-of-middle sentinel. Only the new code is printed.

[bold]Scope[/] (where a completion stops, on top of the sentinel): [cyan]line[/] stops at the end of the
line, [cyan]block[/] when the code dedents below the cursor's block, [cyan]full[/] keeps everything.
Default: block on a blank line, line when the cursor is mid-line.

[bold]Repository context[/]: the model also sees the definitions that the code near the cursor imports
from the repository, and similar code, within --context-budget tokens (`localcoder context FILE:LINE`).

[bold]Server[/]: when `localcoder serve` answers (at --server, LOCALCODER_SERVER, or http://127.0.0.1:8788),
the completion comes from its resident model, the same output, without loading anything here.
--no-server, or any of --ctx/--threads/--gpu-layers/--lookup, loads the model in this process.

[bold]Examples[/]

  localcoder complete app.py:42                  [dim]# end of line 42[/]
  localcoder complete app.py:42:17 --scope full
  localcoder complete app.py:42 --write          [dim]# insert it into the file[/]
  localcoder complete app.py:42 --diff -n 3      [dim]# three alternatives as diffs[/]
  cat app.py | localcoder complete - --line 42 --json     [dim]# for editors[/]
  localcoder complete app.py:42 --server http://127.0.0.1:8788
  localcoder complete app.py:42 --context utils.py   [dim]# let the model see utils.py[/]
  localcoder complete app.py:42 --no-repo-context    [dim]# only this file (and --context files)[/]
  localcoder complete big.py:9 --max-read-mb 256     [dim]# files over 64 MiB[/]
"""


def register(app: typer.Typer) -> None:
    app.command("complete", epilog=EPILOG)(complete_command)


@user_errors
def complete_command(
    target: Optional[str] = typer.Argument(
        None, help="FILE:LINE[:COL], or - (with --line/--col) to read the buffer from stdin.", show_default=False
    ),
    line: Optional[str] = typer.Option(
        None, "--line", "-l", help="Cursor line (1-based), for - or a FILE without :LINE."
    ),
    col: Optional[str] = typer.Option(None, "--col", "-c", help="Cursor column (1-based, characters)."),
    stdin: bool = typer.Option(False, "--stdin", help="Read the buffer from stdin (same as FILE -)."),
    scope: Optional[str] = typer.Option(None, "--scope", "-s", help="line | block | full (default: by cursor)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of streaming text."),
    write: bool = typer.Option(
        False,
        "--write",
        "-w",
        help="Insert the completion into FILE (atomic: a new file replaces it, so hard links keep the old text).",
    ),
    diff: bool = typer.Option(False, "--diff", help="Print the change as a unified diff."),
    n: int = typer.Option(1, "-n", min=1, max=16, help="Number of alternatives."),
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    max_tokens: int = typer.Option(128, "--max-tokens", min=1, help="Most new tokens."),
    seed: Optional[int] = typer.Option(
        None, "--seed", min=SEED_MIN, max=SEED_MAX, help="Sampling seed, 32-bit (alternative i uses seed + i)."
    ),
    threads: Optional[int] = THREADS,
    gpu_layers: Optional[int] = GPU_LAYERS,
    ctx: Optional[int] = CTX,
    model: Optional[str] = MODEL,
    encoding: Optional[str] = typer.Option(None, "--encoding", help="Text encoding of the file (default UTF-8)."),
    layout: str = typer.Option(
        "stable",
        "--prompt-layout",
        help="stable: the middle starts at the last multiple-of-8 line, so typing only appends to a cached"
        " prompt; cursor: split exactly at the cursor, as the model card shows.",
    ),
    lookup: int = LOOKUP,
    server: Optional[str] = typer.Option(
        None, "--server", help="URL of a `localcoder serve` to use (default: LOCALCODER_SERVER, then :8788)."
    ),
    no_server: bool = typer.Option(False, "--no-server", help="Always load the model in this process."),
    engine: Optional[str] = ENGINE_URL,
    engine_model: Optional[str] = ENGINE_MODEL,
    engine_prompt: str = ENGINE_PROMPT,
    engine_timeout: float = ENGINE_TIMEOUT,
    max_read_mb: int = typer.Option(
        MAX_READ_MB, "--max-read-mb", min=1, help="Largest file (or stdin) read, in MiB; raise it for bigger files."
    ),
    context: Optional[list[Path]] = typer.Option(
        None, "--context", help="A file the model sees before this one (repeatable); newest last."
    ),
    context_budget: Optional[int] = CONTEXT_BUDGET,
    no_repo_context: bool = NO_REPO_CONTEXT,
) -> None:
    """Fill in code at a cursor from the code before and after it (CodeGen2.5 infill)."""
    path_text, cursor_line, cursor_col = resolve_target(target, line, col, stdin)
    from_stdin = path_text == "-"
    if from_stdin and write:
        raise fail("--write needs a file, not stdin")
    if write and n > 1:
        raise fail("--write inserts one completion; drop -n or use --diff to compare alternatives")

    limit = max_read_mb << 20
    buffer = (
        read_source_bytes(read_bounded(sys.stdin.buffer, limit=limit), encoding=encoding)
        if from_stdin
        else read_source(Path(path_text), encoding, limit)
    )
    snippets = tuple(Snippet(read_source(path, encoding, limit).text, str(path)) for path in context or [])
    sampling = Sampling(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    request = CompletionRequest.build(
        buffer,
        cursor_line,
        cursor_col,
        sampling=sampling,
        scope=scope,
        n=n,
        layout=layout,
        snippets=snippets,
        context_budget=0 if no_repo_context else context_budget,
        context_seconds=ONE_SHOT_CONTEXT_SECONDS,
    )
    cursor = request.cursor
    stream = not (as_json or diff or write)
    streamed_any = [False] * n

    def show(index: int, text: str) -> None:
        if n > 1 and not streamed_any[index]:
            sys.stdout.write(("\n" if index else "") + f"--- alternative {index + 1} of {n} ---\n")
        streamed_any[index] = True
        sys.stdout.write(text)
        sys.stdout.flush()

    remote = make_engine(engine, engine_model, engine_prompt, engine_timeout)
    load = LoadOptions(model, ctx, threads, gpu_layers, lookup, engine=remote)
    completer = open_completer(load, server_url(server, no_server), note)
    result = completer.complete(request, show if stream else None)
    for message in result["notes"]:
        note(message)

    if stream:
        sys.stdout.write("\n")
    elif as_json:
        print_json("complete", result)
    elif diff:
        for alternative in result.get("alternatives", [result]):
            sys.stdout.write(unified_diff(buffer, insert_completion(buffer, cursor, alternative["completion"])))
    if write:
        write_completion(Path(path_text), buffer, cursor, result["completion"])
        stderr.print(
            plain(f"inserted {len(result['completion'])} characters at {buffer.path}:{cursor.line}:{cursor.col}"),
            soft_wrap=True,
        )
