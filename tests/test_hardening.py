"""Hostile and odd inputs, as a user or an attacker would try them, through the real CLI, converter, server and
llama.cpp: each gets a one-line error or works, nothing outside what the user named is touched."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localcoder.cli import reflow
from localcoder.cli.complete_cmd import EPILOG as COMPLETE_EPILOG
from tests.bigram import bigram_model
from tests.helpers import assert_one_line_error, localcoder, run_cli
from tests.server_run import running_server

llama_cpp = pytest.importorskip("llama_cpp")

ANSWER = "return x * 2"
FILE = "def f(x):\n    \n\nprint(f(2))\n"
EXACT = ("-t", "0", "--prompt-layout", "cursor")  # the bigram model answers ANSWER right after <mask_1>


@pytest.fixture(scope="module")
def answer_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bigram_model(tmp_path_factory.mktemp("answer"), ANSWER)


def cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 120):
    return localcoder(*args, stdin=stdin, env=env, timeout=timeout, columns=80)


# -- convert's output --------------------------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="only root could replace a device node")
def test_convert_never_replaces_a_device_node(tiny_checkpoint: Path) -> None:
    for device in ("/dev/null", "/dev/full"):
        before = os.stat(device)
        assert_one_line_error(run_cli("convert", str(tiny_checkpoint), "-o", device, "--force"), "not a regular file")
        after = os.stat(device)
        assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_convert_never_replaces_a_fifo(tiny_checkpoint: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "out.gguf"
    os.mkfifo(fifo)
    assert_one_line_error(run_cli("convert", str(tiny_checkpoint), "-o", str(fifo), "--force"), "not a regular file")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.gguf"]  # no temporary left beside it


def test_ctrl_c_as_convert_finishes_says_what_is_true(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """SIGINT the moment the output appears: the file is there, so "nothing was written" would be a lie."""
    out = tmp_path / "model.gguf"
    child = subprocess.Popen(
        [sys.executable, "-m", "localcoder", "convert", str(tiny_checkpoint), "-o", str(out), "--outtype", "f32"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not out.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=120)
    assert out.exists(), stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert "nothing was written" not in stderr, stderr
    assert child.returncode == 0 and "converted" in stdout or "was written and is complete" in stderr, stderr


def test_convert_threads_must_not_be_negative(tiny_checkpoint: Path, tmp_path: Path) -> None:
    done = cli("convert", str(tiny_checkpoint), "-o", str(tmp_path / "x.gguf"), "--threads", "-3")
    assert done.returncode == 2 and "--threads" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.gguf").exists()


# -- reading the buffer ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_endless_devices_are_refused(device: str) -> None:
    assert_one_line_error(cli("complete", f"{device}:1", "--no-server"), "not a regular file")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.py"
    os.mkfifo(fifo)
    assert_one_line_error(cli("complete", f"{fifo}:1", "--no-server", timeout=60), "not a regular file")
    real = tmp_path / "x.py"
    real.write_text(FILE)
    done = cli("complete", f"{real}:1", "--no-server", "--context", str(fifo), timeout=60)
    assert_one_line_error(done, "pipe.py is not a regular file")


def test_endless_stdin_stops_at_the_read_limit() -> None:
    yes = subprocess.Popen(["yes", "x = 1"], stdout=subprocess.PIPE)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "localcoder", "complete", "-", "--line", "1", "--no-server", "--max-read-mb", "2"],
            stdin=yes.stdout,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        yes.kill()
        yes.wait()
    assert_one_line_error(done, "larger than the 2 MiB read limit", "--max-read-mb")


def test_a_file_over_the_read_limit_names_the_flag(tmp_path: Path, answer_model: Path) -> None:
    big = tmp_path / "big.py"
    big.write_text("x = 1\n" * 400_000)  # 2.4 MB
    assert_one_line_error(cli("complete", f"{big}:1", "--max-read-mb", "1", "--no-server"), "1 MiB", "--max-read-mb")
    done = cli("complete", f"{big}:200000", "--max-read-mb", "3", "--no-server", "--model", str(answer_model))
    assert done.returncode == 0, done.stderr


# -- user text is printed as text ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a[/x].py", "pages/[id].py", "[bold]b[/bold]:x:.py"])
def test_paths_with_markup_are_printed_as_they_are(tmp_path: Path, answer_model: Path, name: str) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FILE)
    missing = assert_one_line_error(cli("complete", f"{path}:99", "--no-server", "--model", str(answer_model)))
    assert str(path) in missing
    linked = tmp_path / "hard-link.py"
    os.link(path, linked)
    done = cli("complete", f"{path}:2", "--write", "--no-server", "--model", str(answer_model), *EXACT)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert f"at {path}:2:5" in done.stderr
    assert ANSWER in path.read_text()
    assert linked.read_text() == FILE  # --write replaces the file: a hard link keeps the old text (README)


def test_run_output_escapes_reach_no_terminal_and_a_cut_is_said(answer_model: Path, tmp_path: Path) -> None:
    from rich.console import Console

    from localcoder.chat.repl import ChatRepl
    from localcoder.chat.session import ChatSession
    from localcoder.runtime import load_model
    from localcoder.sandbox import Limits

    session = ChatSession(load_model(answer_model))
    session.run_limits = Limits(seconds=10.0, memory_mb=512, output_bytes=4000)
    console = Console(record=True, width=200, force_terminal=True, emoji=False)
    repl = ChatRepl(session, console, ask_yes_no=lambda question: False)
    program = tmp_path / "program.py"
    program.write_text("print('\\x1b]0;pwned\\x07 :x: [bold]b[/] \\x1b[2J')\nprint('y' * 10000)\n")
    assert repl.handle(f"/load {program}") and repl.handle("/run")
    shown = console.export_text()
    assert "\\x1b]0;pwned\\x07 :x: [bold]b[/] \\x1b[2J" in shown
    assert "output cut at 4,000 bytes" in shown


# -- the server URL -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["not a url", "http://[::1", "http://localhost:99999", "ftp://host"])
def test_bad_server_urls_are_one_line_errors(tmp_path: Path, url: str) -> None:
    path = tmp_path / "f.py"
    path.write_text(FILE)
    assert_one_line_error(cli("complete", f"{path}:2", "--server", url), "expected a URL")
    assert_one_line_error(cli("complete", f"{path}:2", env={"LOCALCODER_SERVER": url}), "LOCALCODER_SERVER")
    assert_one_line_error(cli("doctor", "--server", url), "expected a URL")


# -- prompts ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def counting_vocab(tiny_f32_gguf: Path):
    """The real CodeGen2.5 tokenizer through llama.cpp, counting the characters it is given."""
    from ggufkit.llamacpp import tokenize
    from localcoder.completion.prompts import Vocabulary

    llm = llama_cpp.Llama(model_path=str(tiny_f32_gguf), vocab_only=True, verbose=False)
    seen = [0]

    def counted(text: str) -> list[int]:
        seen[0] += len(text)
        return tokenize(llm, text)

    return Vocabulary(counted, dict(llm.metadata), lambda: frozenset()), seen


@pytest.mark.parametrize("stable_lines", [0, 8])
def test_prompt_building_tokenizes_near_the_cursor_only(counting_vocab, stable_lines: int) -> None:
    from localcoder.completion.prompts import FORMATS, build_prompt

    vocab, seen = counting_vocab
    line = "    total = total + compute(value, index)  # a line of code\n"
    prefix, suffix = line * 40_000 + "    ret", "urn total\n" + line * 40_000  # 2.4 MB on each side
    budget = 512
    seen[0] = 0
    prompt = build_prompt(FORMATS["codegen-infill"], vocab, prefix, suffix, budget, stable_lines)
    assert len(prompt.ids) <= budget
    assert seen[0] < 40 * budget * 16  # what the window needs, not the file's 4.8 million characters
    kept_above = prompt.prefix.count("\n") + prompt.written.count("\n")
    assert kept_above + prompt.trimmed_prefix_lines == 40_000
    assert prompt.suffix.count("\n") - 1 + prompt.trimmed_suffix_lines == 40_000


def test_a_huge_line_in_the_stable_block_falls_back_to_the_cursor_split(counting_vocab) -> None:
    from localcoder.completion.prompts import FORMATS, build_prompt

    vocab, _ = counting_vocab
    prefix = "a = 1\nb = '" + "x" * 1_000_000 + "'\nc = 3\nd = "  # the 1 MB line is line 2, the cursor on line 4
    prompt = build_prompt(FORMATS["codegen-infill"], vocab, prefix, "\nprint(d)\n", 512, stable_lines=8)
    assert len(prompt.ids) <= 512 and prompt.written == ""
    assert prompt.prefix.endswith("c = 3\nd = ") and "split at the cursor instead" in prompt.notes[0]
    with pytest.raises(Exception, match="the cursor's line alone is longer"):
        build_prompt(FORMATS["codegen-infill"], vocab, "d = '" + "x" * 1_000_000, "'\n", 512, stable_lines=8)


# -- localcoder models ---------------------------------------------------------------------------------------------


def test_models_lists_the_good_and_marks_the_broken(tiny_f32_gguf: Path) -> None:
    directory = Path(os.environ["LOCALCODER_HOME"]) / "models"
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_f32_gguf, directory / "good.gguf")
    (directory / "bad.gguf").write_text("not a model")
    (directory / "gone.gguf").symlink_to(directory / "nowhere.gguf")
    listed = cli("models", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)["models"]}
    assert rows["good"]["error"] is None and rows["good"]["family"] == "codegen2.5"
    assert "not a valid GGUF" in rows["bad"]["error"] and rows["gone"]["error"] == "a symlink to nothing"
    table = cli("models", env={"COLUMNS": "200"})
    assert table.returncode == 0 and "good" in table.stdout and "broken: a symlink to nothing" in table.stdout


# -- the CLI's details ---------------------------------------------------------------------------------------------


def test_stdin_with_line_works_as_the_readme_says(answer_model: Path, tmp_path: Path) -> None:
    done = cli("complete", "--stdin", "--line", "2", "--no-server", "--model", str(answer_model), *EXACT, stdin=FILE)
    assert done.returncode == 0 and ANSWER in done.stdout, done.stderr
    path = tmp_path / "f.py"
    path.write_text(FILE)
    assert_one_line_error(cli("complete", str(path), "--stdin", "--line", "2"), "--stdin", "f.py")
    assert_one_line_error(cli("complete", f"{path}:2", "--line", "3"), "given twice")
    messages = [assert_one_line_error(cli("complete", f"{path}:{tail}")) for tail in ("0", "-1", "abc")]
    assert all("LINE must be a positive integer" in message for message in messages), messages


@pytest.mark.parametrize(
    "options", [("-t", "inf"), ("-t", "5"), ("--seed", str(2**64)), ("--seed", str(-(2**40)))], ids=str
)
def test_out_of_range_sampling_options_are_refused(tmp_path: Path, options: tuple[str, str]) -> None:
    path = tmp_path / "f.py"
    path.write_text(FILE)
    done = cli("complete", f"{path}:2", "--no-server", *options)
    assert done.returncode == 2 and "Invalid value" in done.stderr and "Traceback" not in done.stderr


def test_chat_script_fails_when_every_line_failed(answer_model: Path) -> None:
    every = cli("chat", "--model", str(answer_model), "--script", "-", stdin="/bogus\n/set temperature 5\n")
    assert every.returncode == 1 and "not a valid value" in every.stderr, every.stderr
    assert "every line of the script failed (2)" in every.stderr
    some = cli("chat", "--model", str(answer_model), "--script", "-", stdin="/bogus\n/set temperature 1.5\n")
    assert some.returncode == 0, some.stderr


COMMANDS = ["complete", "chat", "serve", "eval", "pull", "convert", "models", "rm", "inspect", "verify", "bench"]
COMMANDS += ["doctor", "demo", "context", "lsp"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_reads_as_prose_at_80_columns(command: str | None) -> None:
    shown = cli(*([command] if command else []), "--help")
    assert shown.returncode == 0, shown.stderr
    assert not re.search(r"<(bool|str|int|float|path|list\[Path\])>", shown.stdout), shown.stdout
    epilog = shown.stdout.rsplit("╯", 1)[-1]
    for paragraph in re.split(r"\n\s*\n", epilog):
        lines = [line.rstrip() for line in paragraph.splitlines() if line.strip()]
        if not lines or any(line.startswith("   ") for line in lines):
            continue  # examples keep their lines
        assert all(len(line) > 50 for line in lines[:-1]), paragraph  # wrapped at the width, not mid-sentence


def test_reflow_keeps_examples_and_joins_prose() -> None:
    flowed = reflow(COMPLETE_EPILOG)
    assert "whitespace-only line is filled from its indentation" in flowed
    assert "  localcoder complete app.py:42                  [dim]# end of line 42[/]\n" in flowed


def test_keep_alive_help_is_unambiguous() -> None:
    shown = " ".join(cli("serve", "--help", env={"COLUMNS": "300"}).stdout.split())
    assert "0 unloads at once, -1 keeps it forever" in shown


# -- the server -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(answer_model: Path, tiny_f32_gguf: Path, tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("serve-home")
    (home / "models").mkdir()
    shutil.copy(tiny_f32_gguf, home / "models" / "other.gguf")
    env = {"LOCALCODER_HOME": str(home)}
    with running_server("--model", str(answer_model), "--max-models", "2", "--keep-alive", "-1", env=env) as running:
        running.home = home  # type: ignore[attr-defined]
        yield running


def test_model_names_are_no_oracle_for_the_disk(server, tmp_path: Path, answer_model: Path) -> None:
    (tmp_path / "notes.txt").write_text("secret")
    (tmp_path / "copy.gguf").write_bytes(answer_model.read_bytes())
    probes = [str(tmp_path / "notes.txt"), str(tmp_path), str(tmp_path / "missing.gguf"), "/etc/passwd"]
    probes += [str(tmp_path / "copy.gguf"), "../../etc/passwd", str(server.home / "models" / ".." / "models")]
    answers = {json.dumps(server.post("/infill", {"text": FILE, "line": 2, "model": probe})) for probe in probes}
    assert len(answers) == 1, answers
    status, body = json.loads(answers.pop())
    assert status == 400 and "unknown model" in body["error"]["message"]
    for probe in probes:  # the editor endpoints fall back to the default model, whatever the name
        assert server.post("/api/generate", {"model": probe, "prompt": "x", "stream": False})[0] == 200
        assert server.post("/v1/completions", {"model": probe, "prompt": "x", "max_tokens": 2})[0] == 200
    assert server.post("/infill", {"text": FILE, "line": 2, "model": "other"})[0] == 200  # its model directory
    health = server.request("GET", "/health")[1]
    listed = {Path(entry["path"]).name for entry in server.request("GET", "/v1/models")[1]["data"]}
    assert {Path(m["model"]).name for m in health["models"]} == {answer_model.name, "other.gguf"}
    assert listed == {answer_model.name, "other.gguf"}


def raw_exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(request)
        chunks = []
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def status_and_json(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"application/json" in head, answer[:300]
    return int(head.split()[1]), json.loads(body)


def test_bad_bodies_and_methods_get_json_errors(server) -> None:
    surrogate = b'{"text": "x = \\ud800", "line": 1}'
    status, body = server.request("POST", "/infill", raw=surrogate)
    assert status == 400 and "lone surrogate" in body["error"]["message"]
    deep = b"[" * 100_000 + b"]" * 100_000
    status, body = server.request("POST", "/v1/completions", raw=deep)
    assert status == 400 and "nested too deeply" in body["error"]["message"]
    for method in ("PUT", "DELETE", "OPTIONS", "PATCH"):
        status, body = server.request(method, "/infill", raw=b"{}")
        assert status == 405 and "takes POST" in body["error"]["message"]
        assert server.request(method, "/nowhere")[0] == 404
    status, body = status_and_json(
        raw_exchange(server.port, b"POST /infill HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n")
    )
    assert status == 400 and "Content-Length" in body["error"]["message"]
    status, body = status_and_json(raw_exchange(server.port, b"BREW /infill HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert status == 501 and "BREW" in body["error"]["message"]
    assert server.request("GET", "/health")[0] == 200
