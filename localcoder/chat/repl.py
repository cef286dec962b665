"""The interactive `localcoder chat` loop: prompt-toolkit for input, Rich for output, slash commands as data.

Enter sends a line; Esc then Enter (or Alt+Enter) starts a new line. Ctrl-C
cancels the generation in progress (the session goes on), Ctrl-D leaves.
"""

from __future__ import annotations

import difflib
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from localcoder import paths
from localcoder.chat.session import ChatSession
from localcoder.errors import LocalcoderError
from localcoder.runtime import load_model, resolve_model
from localcoder.terminal import plain, print_untrusted

_LEXERS = {"cpp": "cpp", "c": "c", "shell": "bash", "javascript": "javascript", "typescript": "typescript"}


@dataclass(frozen=True)
class Command:
    usage: str
    help: str
    run: Callable[[ChatRepl, str], None]


class CodePrinter:
    """Prints streamed code line by line, each line highlighted as soon as it is complete."""

    def __init__(self, console: Console, lang: str) -> None:
        self.console = console
        self.lexer = _LEXERS.get(lang, lang)
        self.pending = ""

    def feed(self, text: str) -> None:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self._print(line)

    def finish(self) -> None:
        if self.pending:
            self._print(self.pending)
        self.pending = ""

    def _print(self, line: str) -> None:
        highlighted = Syntax(line, self.lexer, theme="ansi_dark").highlight(line)
        highlighted.rstrip()
        self.console.print(highlighted, soft_wrap=True)


class ChatRepl:
    def __init__(self, session: ChatSession, console: Console, ask_yes_no: Callable[[str], bool]) -> None:
        self.session = session
        self.console = console
        self.ask_yes_no = ask_yes_no

    # Turns -------------------------------------------------------------------------------

    def handle(self, line: str) -> bool:
        """One line of input: a slash command or an instruction. Errors are shown, the session goes on; False
        when the line failed."""
        line = line.strip()
        if not line:
            return True
        try:
            if line.startswith("/"):
                self._command(line)
            else:
                self._generate(lambda stream: self.session.ask(line, stream))
        except LocalcoderError as exc:
            self.console.print(Text.assemble(("error:", "red"), " ", plain(exc)))
            return False
        except KeyboardInterrupt:
            self.console.print("[yellow]cancelled[/]: the program is as it was")
            return False
        return True

    def _generate(self, call: Callable) -> None:
        printer = CodePrinter(self.console, self.session.lang)
        result = call(printer.feed)
        printer.finish()
        stats = result.stats
        note = f"  {stats.left_out_turns} oldest turn(s) left the model's context" if stats.left_out_turns else ""
        self.console.print(
            f"[dim]{stats.generated_tokens} tokens, {stats.evaluated_tokens} of {stats.prompt_tokens} prompt tokens"
            f" evaluated, {result.stop_reason}[/]{note}"
        )

    def _command(self, line: str) -> None:
        name, _, args = line[1:].partition(" ")
        command = COMMANDS.get(name)
        if command is None:
            close = difflib.get_close_matches(name, COMMANDS, n=1)
            hint = f"; did you mean /{close[0]}?" if close else "; /help lists them"
            raise LocalcoderError(f"unknown command /{name}{hint}")
        command.run(self, args.strip())

    # Commands ----------------------------------------------------------------------------

    def help(self, _: str) -> None:
        table = Table(show_header=False, box=None)
        for name, command in COMMANDS.items():
            table.add_row(f"/{name} {command.usage}".rstrip(), command.help)
        self.console.print(table)
        self.console.print("Anything else is an instruction. Esc then Enter: new line. Ctrl-C: cancel. Ctrl-D: quit.")

    def undo(self, _: str) -> None:
        self.console.print(self.session.undo())

    def retry(self, _: str) -> None:
        self._generate(self.session.retry)

    def show(self, _: str) -> None:
        lexer = _LEXERS.get(self.session.lang, self.session.lang)
        self.console.print(Syntax(self.session.text() or "\n", lexer, theme="ansi_dark", line_numbers=True))

    def edit(self, _: str) -> None:
        if not sys.stdin.isatty():
            raise LocalcoderError("/edit needs a terminal")
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / f"program.{'py' if self.session.lang == 'python' else 'txt'}"
            path.write_text(self.session.text(), encoding="utf-8")
            try:
                subprocess.run([*shlex.split(editor), str(path)], check=True)
            except (OSError, subprocess.CalledProcessError) as exc:
                raise LocalcoderError(f"editor {editor!r} failed: {exc}") from None
            edited = path.read_text(encoding="utf-8")
        if edited != self.session.text():
            self.session.replace_text(edited)
            self.console.print("program replaced by your edit; /undo brings the previous one back")

    def run(self, _: str) -> None:
        result = self.session.run()
        cut_at = self.session.run_limits.output_bytes
        if result.stdout:
            print_untrusted(self.console, result.stdout.rstrip("\n"), cut_at=cut_at)
        if result.stderr:
            print_untrusted(self.console, result.stderr.rstrip("\n"), "red", cut_at=cut_at)
        status = result.killed_reason or f"exit status {result.exit_code}"
        self.console.print(f"[dim]{status}, {result.seconds:.2f} s; sandbox: {', '.join(result.sandbox)}[/]")

    def save(self, args: str) -> None:
        if not args:
            raise LocalcoderError("usage: /save FILE")
        path = Path(args).expanduser()
        overwrite = path.exists() and self.ask_yes_no(f"{path} exists; overwrite?")
        if path.exists() and not overwrite:
            self.console.print("not saved")
            return
        self.session.save(path, overwrite=overwrite)
        self.console.print(plain(f"saved {path}"))

    def load(self, args: str) -> None:
        if not args:
            raise LocalcoderError("usage: /load FILE")
        self.session.load(Path(args).expanduser())
        self.console.print(plain(f"loaded {args}; new turns build on it"))

    def reset(self, _: str) -> None:
        self.session.reset()
        self.console.print("empty program; /undo brings the previous one back")

    def model(self, args: str) -> None:
        if not args:
            raise LocalcoderError("usage: /model PATH")
        loaded = load_model(resolve_model(args), backend=self.session.model.backend)  # the same kind of backend
        self.session.model = loaded
        self.console.print(plain(f"model: {loaded.path.name} ({loaded.format.name})"))

    def set(self, args: str) -> None:
        key, _, value = args.partition(" ")
        try:
            self.session.set_option(key, value.strip())
        except ValueError:
            raise LocalcoderError(f"/set {key}: {value!r} is not a valid value") from None
        self.console.print(plain(f"{key} = {value.strip()}"))

    def stats(self, _: str) -> None:
        table = Table("turn", "prompt", "evaluated", "generated", "prompt tok/s", "gen tok/s", title="per turn")
        for number, s in enumerate(self.session.stats, start=1):
            table.add_row(
                str(number),
                str(s.prompt_tokens),
                str(s.evaluated_tokens),
                str(s.generated_tokens),
                f"{s.evaluated_tokens / max(s.prompt_ms, 1e-3) * 1000:.0f}",
                f"{s.generated_tokens / max(s.generate_ms, 1e-3) * 1000:.1f}",
            )
        self.console.print(table)


COMMANDS: dict[str, Command] = {
    "help": Command("", "this list", ChatRepl.help),
    "undo": Command("", "remove the last turn (or the last edit, load or reset)", ChatRepl.undo),
    "retry": Command("", "resample the last turn", ChatRepl.retry),
    "edit": Command("", "open the program in $EDITOR and continue from the result", ChatRepl.edit),
    "show": Command("", "print the program", ChatRepl.show),
    "run": Command("", "run the program in the OS sandbox (none of your files, no network, 10 s, 1 GB)", ChatRepl.run),
    "save": Command("FILE", "write the program to FILE (asks before overwriting)", ChatRepl.save),
    "load": Command("FILE", "start from the program in FILE", ChatRepl.load),
    "reset": Command("", "start from an empty program", ChatRepl.reset),
    "model": Command("PATH", "switch to another GGUF", ChatRepl.model),
    "set": Command("temperature|top_p|max_tokens VALUE", "change sampling", ChatRepl.set),
    "stats": Command("", "tokens evaluated and speeds per turn", ChatRepl.stats),
}


def interactive(session: ChatSession, console: Console) -> None:
    """The prompt-toolkit loop; history lives in LOCALCODER_HOME/chat_history."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings

    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event) -> None:  # noqa: ANN001
        event.current_buffer.insert_text("\n")

    paths.home().mkdir(parents=True, exist_ok=True)
    prompt = PromptSession(history=FileHistory(str(paths.home() / "chat_history")), key_bindings=bindings)

    def ask_yes_no(question: str) -> bool:
        try:
            return prompt.prompt(f"{question} [y/N] ").strip().lower() in ("y", "yes")
        except (EOFError, KeyboardInterrupt):
            return False

    repl = ChatRepl(session, console, ask_yes_no)
    console.print(
        Text.assemble(("localcoder chat", "bold"), plain(f" with {session.model.path.name}: type an instruction,"
                      " /help for commands"))
    )
    while True:
        try:
            line = prompt.prompt(">>> ")
        except KeyboardInterrupt:
            continue
        except EOFError:
            return
        repl.handle(line)
