"""`localcoder chat`: scripted sessions on a deterministic model, slash commands, KV reuse, the REPL in a terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convert.pipeline import ConvertOptions, convert
from ggufkit.vocab.codegen25 import ENDOFTEXT_ID, codegen25_tokenizer
from localcoder.chat.repl import ChatRepl
from localcoder.chat.session import ChatSession
from localcoder.completion.generate import Sampling
from localcoder.runtime import load_model
from tests.bigram import CHAT_CODE, NEWLINE, chain_for, write_bigram_checkpoint
from tests.helpers import run_chat

pytest.importorskip("llama_cpp")

CODE = CHAT_CODE  # every turn's prompt ends in "\n", so the bigram model answers each turn with this


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("chat")
    checkpoint = write_bigram_checkpoint(directory / "checkpoint", chain_for(CODE, start=NEWLINE, end=ENDOFTEXT_ID))
    return convert(ConvertOptions(source=str(checkpoint), output=directory / "chat.gguf", outtype="f32")).output


def test_a_scripted_session_builds_the_program_in_mtpb_format(chat_model: Path) -> None:
    result = run_chat(chat_model, "print the answer\nprint it again\n", "--preamble", "mtpb")
    assert result.returncode == 0, result.stderr
    expected = (
        "# Import libraries.\n\nimport numpy as np\n\n# print the answer\nprint(42)\n\n# print it again\nprint(42)\n\n"
    )
    assert result.stdout == expected


def test_the_second_turn_evaluates_only_the_new_tokens(chat_model: Path) -> None:
    result = run_chat(chat_model, "print the answer\nprint it again\n", "--json")
    assert result.returncode == 0, result.stderr
    first, second = json.loads(result.stdout)["turns"]
    tokenize = codegen25_tokenizer().encode
    assert (
        first["stats"]["evaluated_tokens"] == first["stats"]["prompt_tokens"] == len(tokenize("# print the answer\n"))
    )
    new_text = "\n\n# print it again\n"  # what turn 2 adds after the tokens turn 1 read and generated
    assert second["stats"]["evaluated_tokens"] == len(tokenize(new_text))
    assert second["stats"]["prompt_tokens"] == len(tokenize("# print the answer\nprint(42)" + new_text))


def test_slash_commands_in_a_script(chat_model: Path, tmp_path: Path, os_sandbox) -> None:
    saved = tmp_path / "program.py"
    loaded = tmp_path / "start.py"
    loaded.write_text("value = 7\n")
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01binary")
    script = "\n".join(
        [
            "first",
            "second",
            "/undo",
            "/retry",
            f"/save {saved}",
            "/run",
            f"/load {loaded}",
            "third",
            "/bogus",
            "/lod nowhere",
            f"/load {tmp_path / 'missing.py'}",
            f"/save {tmp_path / 'no' / 'such' / 'dir' / 'x.py'}",
            f"/load {binary}",
            f"/model {tmp_path / 'absent.gguf'}",
            "/stats",
        ]
    )
    result = run_chat(chat_model, script)
    assert result.returncode == 0, result.stderr
    assert saved.read_text() == "# first\nprint(42)\n\n"
    assert "42" in result.stderr  # /run's output
    assert "exit status 0" in result.stderr
    assert result.stdout == "value = 7\n# third\nprint(42)\n\n"
    assert "unknown command /bogus" in result.stderr
    assert "did you mean /load?" in result.stderr
    assert "missing.py" in result.stderr and "cannot save" in result.stderr
    assert "looks binary" in result.stderr and "absent.gguf" in result.stderr


def test_oldest_turns_leave_the_context_not_the_program(chat_model: Path) -> None:
    turns = "".join(f"instruction number {n} with some words\n" for n in range(12))
    result = run_chat(chat_model, turns, "--ctx", "96", "--max-tokens", "8", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["turns"]) == 12 and data["program"].count("print(42)") == 12
    assert data["turns"][-1]["stats"]["left_out_turns"] > 0
    assert all(turn["stats"]["prompt_tokens"] <= 96 - 8 for turn in data["turns"])


def test_ctrl_c_cancels_a_turn_and_keeps_the_session(chat_model: Path) -> None:
    from rich.console import Console

    session = ChatSession(load_model(chat_model), sampling=Sampling(temperature=0, max_tokens=16))
    console = Console(record=True, width=120)
    repl = ChatRepl(session, console, ask_yes_no=lambda question: False)
    repl.handle("first")

    def interrupt(text: str) -> None:
        raise KeyboardInterrupt

    original = repl._generate
    repl._generate = lambda call: original(lambda stream: call(interrupt))
    repl.handle("second")
    assert "cancelled" in console.export_text()
    assert [t.instruction for t in session.state.turns] == ["first"]
    repl._generate = original
    repl.handle("third")
    assert [t.instruction for t in session.state.turns] == ["first", "third"]


def test_chat_template_models_get_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gguf import GGUFWriter

    add_eom = GGUFWriter.add_eom_token_id

    def with_template(self, token: int) -> None:
        add_eom(self, token)
        self.add_chat_template("{% for m in messages %}{{ m['content'] }}\n{% endfor %}")

    monkeypatch.setattr(GGUFWriter, "add_eom_token_id", with_template)
    checkpoint = write_bigram_checkpoint(tmp_path / "checkpoint", chain_for(CODE, start=NEWLINE, end=ENDOFTEXT_ID))
    model = load_model(
        convert(ConvertOptions(source=str(checkpoint), output=tmp_path / "t.gguf", outtype="f32")).output
    )
    assert model.chat_template
    session = ChatSession(model, sampling=Sampling(temperature=0, max_tokens=16))
    result = session.ask("print the answer")
    assert result.turn.code == CODE
    assert session.text() == "# print the answer\nprint(42)\n\n"


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[=>]|\r")


class Terminal:
    """The REPL on a real pseudo-terminal: type a line, wait for what it should print and the next prompt."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execvpe(argv[0], argv, env)
        self.raw = ""

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw)

    def wait_for(self, condition, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self.text):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{what} never appeared; screen:\n{self.text[-2000:]}"
            if select.select([self.fd], [], [], min(remaining, 0.5))[0]:
                self.raw += os.read(self.fd, 65536).decode("utf-8", "replace")

    def command(self, line: str, expect: str) -> None:
        start = len(self.text)
        os.write(self.fd, line.encode() + b"\r")
        self.wait_for(lambda text: expect in text[start:], repr(expect))  # only what this line printed
        after = self.text.index(expect, start) + len(expect)
        self.wait_for(lambda text: ">>>" in text[after:], "the next prompt")

    def quit(self, timeout: float = 30) -> int:
        os.write(self.fd, b"\x04")  # Ctrl-D
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"the REPL did not exit; screen:\n{self.text[-2000:]}")


def test_the_repl_in_a_terminal(chat_model: Path, tmp_path: Path, os_sandbox) -> None:
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100", "LINES": "40", "PROMPT_TOOLKIT_NO_CPR": "1"}
    env["LOCALCODER_HOME"] = str(tmp_path / "home")
    env["EDITOR"] = "sed -i s/42/43/"
    terminal = Terminal([sys.executable, "-m", "localcoder", "chat", "--model", str(chat_model), "-t", "0"], env)
    terminal.wait_for(lambda text: ">>>" in text, "the first prompt")
    terminal.command("print the answer", "tokens")
    terminal.command("/show", "# print the answer")
    terminal.command("/run", "exit status 0")
    terminal.command("/edit", "program replaced by your edit")  # $EDITOR is a sed that turns 42 into 43
    terminal.command("/show", "print(43)")
    terminal.command("/udno", "did you mean /undo?")
    terminal.command("/undo", "restored the program")  # the edit goes first
    assert terminal.quit() == 0
    assert "print the answer" in (tmp_path / "home" / "chat_history").read_text()


def test_run_survives_what_the_program_does(chat_model: Path, tmp_path: Path, os_sandbox) -> None:
    from rich.console import Console

    from localcoder.sandbox import Limits

    session = ChatSession(load_model(chat_model), sampling=Sampling(temperature=0, max_tokens=16))
    session.run_limits = Limits(seconds=1.0, memory_mb=512)
    console = Console(record=True, width=200)
    repl = ChatRepl(session, console, ask_yes_no=lambda question: False)
    canary = tmp_path / "outside.txt"
    for program, expected in (
        ("while True:\n    pass\n", "time limit"),
        (f"open({str(canary)!r}, 'w').write('x')\n", "FileNotFoundError"),  # the host's tmp is not in the sandbox
        ("import socket\nsocket.create_connection(('127.0.0.1', 9))\n", "Error"),
    ):
        source = tmp_path / "program.py"
        source.write_text(program)
        repl.handle(f"/load {source}")
        repl.handle("/run")
        assert expected in console.export_text(clear=True)
    assert not canary.exists()
    repl.handle("print the answer")  # the session goes on
    assert session.state.turns[-1].code == CODE


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bwrap is the Linux sandbox")
def test_run_refuses_without_an_os_sandbox_unless_told(chat_model: Path, tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text("print('ran', 6 * 7)\n")
    script = f"/load {program}\n/run\nprint the answer\n"
    env = {**os.environ, "PATH": str(tmp_path)}  # no bwrap on it
    refused = subprocess.run(
        [sys.executable, "-m", "localcoder", "chat", "--model", str(chat_model), "--script", "-", "-t", "0"],
        input=script, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert refused.returncode == 0, refused.stderr  # the session goes on after the refusal
    assert "error: no OS sandbox" in refused.stderr and "install bubblewrap" in refused.stderr
    assert "ran 42" not in refused.stderr and refused.stdout.endswith("print(42)\n\n")
    unsafe = subprocess.run(
        [sys.executable, "-m", "localcoder", "chat", "--model", str(chat_model), "--script", "-", "-t", "0",
         "--unsafe-no-sandbox"],
        input=script, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert "ran 42" in unsafe.stderr and "NO OS SANDBOX" in unsafe.stderr
