"""`localcoder chat`: multi-turn program synthesis, interactive or from a script."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from localcoder.chat.repl import ChatRepl, interactive
from localcoder.chat.session import ChatSession
from localcoder.chat.turns import MTPB_PREAMBLE, comment_prefix
from localcoder.cli._common import (
    CTX,
    ENGINE_MODEL,
    ENGINE_PROMPT,
    ENGINE_TIMEOUT,
    ENGINE_URL,
    GPU_LAYERS,
    MODEL,
    TEMPERATURE,
    THREADS,
    TOP_P,
    fail,
    stderr,
    stdout,
    user_errors,
)
from localcoder.completion.backends import backend_for
from localcoder.completion.engine import make_engine
from localcoder.completion.generate import SEED_MAX, SEED_MIN, Sampling
from localcoder.render import print_json
from localcoder.runtime import LoadOptions, load_model, resolve_model
from localcoder.source import read_bounded, read_source, read_source_bytes

EPILOG = """\
Each instruction becomes a comment in the program and the model writes the code for it, building on
every earlier turn (CodeGen's multi-turn program synthesis). Enter sends; Esc then Enter starts a new
line; Ctrl-C cancels a generation; Ctrl-D quits; /help lists the slash commands
(/undo /retry /edit /show /run /save /load /reset /model /set /stats).

/run runs the program in the OS sandbox (bubblewrap on Linux, sandbox-exec on macOS): it sees none of
your files, has no network and cannot start processes; 10 s and 1 GB. Without one, /run refuses and says
what to install; --unsafe-no-sandbox runs it anyway, as you, with your files and network within its reach.

[bold]Examples[/]

  localcoder chat
  localcoder chat --preamble mtpb --model codegen25-7b-mono_P.Q4_K_M
  localcoder chat --script turns.txt > program.py        [dim]# one instruction per line[/]
  printf 'read a csv file\\nprint its mean\\n' | localcoder chat --script - --json
  localcoder chat --unsafe-no-sandbox        [dim]# no bubblewrap here: /run unconfined, at your own risk[/]
"""


def register(app: typer.Typer) -> None:
    app.command("chat", epilog=EPILOG)(chat_command)


@user_errors
def chat_command(
    script: Optional[str] = typer.Option(
        None, "--script", help="Run the instructions in FILE (- for stdin), one per line."
    ),
    as_json: bool = typer.Option(False, "--json", help="With --script: per-turn code and timings as JSON."),
    lang: str = typer.Option("python", "--lang", help="Language of the program (sets the comment syntax)."),
    preamble: str = typer.Option(
        "none", "--preamble", help="none, mtpb (MTPB's numpy import), or a FILE to start from."
    ),
    model: Optional[str] = MODEL,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Most new tokens per turn."),
    seed: Optional[int] = typer.Option(
        None, "--seed", min=SEED_MIN, max=SEED_MAX, help="Sampling seed, a 32-bit integer."
    ),
    threads: Optional[int] = THREADS,
    gpu_layers: Optional[int] = GPU_LAYERS,
    ctx: Optional[int] = CTX,
    unsafe_no_sandbox: bool = typer.Option(
        False,
        "--unsafe-no-sandbox",
        help="/run programs WITHOUT the OS sandbox: as you, able to read and write your files and reach the"
        " network; only time and memory limits and a guard against accidents hold.",
    ),
    engine: Optional[str] = ENGINE_URL,
    engine_model: Optional[str] = ENGINE_MODEL,
    engine_prompt: str = ENGINE_PROMPT,
    engine_timeout: float = ENGINE_TIMEOUT,
) -> None:
    """Write a program turn by turn from natural-language instructions."""
    comment_prefix(lang)  # an unknown language fails before the model loads
    if script is None and not sys.stdin.isatty():
        raise fail("chat needs a terminal; use --script FILE (or --script -) for instructions from a file or pipe")
    start = {"none": "", "mtpb": MTPB_PREAMBLE}.get(preamble)
    if start is None:
        path = Path(preamble).expanduser()
        if not path.is_file():
            raise fail(f"--preamble must be none, mtpb or an existing file, not {preamble!r}")
        start = path.read_text(encoding="utf-8")
    remote = make_engine(engine, engine_model, engine_prompt, engine_timeout)
    backend = backend_for(remote)
    loaded = load_model(resolve_model(model), LoadOptions(ctx=ctx, threads=threads, gpu_layers=gpu_layers), backend)
    sampling = Sampling(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    session = ChatSession(loaded, lang=lang, preamble=start, sampling=sampling, unsafe_no_sandbox=unsafe_no_sandbox)
    if script is None:
        interactive(session, stdout)
        return
    source = read_source_bytes(read_bounded(sys.stdin.buffer)) if script == "-" else read_source(Path(script))
    lines = source.text.splitlines()
    repl = ChatRepl(session, stderr, ask_yes_no=lambda question: False)
    outcomes = [repl.handle(line) for line in lines if line.strip()]
    if as_json:
        turns = [
            {"instruction": answer.turn.instruction, "code": answer.turn.code, "stats": answer.stats}
            for answer in session.state.answered
        ]
        print_json("chat", {"program": session.text(), "turns": turns})
    else:
        sys.stdout.write(session.text())
    if outcomes and not any(outcomes):
        raise fail(f"every line of the script failed ({len(outcomes)}); see the errors above")
