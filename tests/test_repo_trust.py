"""A repository is untrusted input: what it holds decides what there is to read, never what runs, how long a
keystroke waits, who can read the copies, or how its names are shown. Each attack comes with its positive control
in the same test: the trap fires under plain git, the same repository without the hazard gives context."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from localcoder.completion.generate import GenerationCancelled, Sampling
from localcoder.completion.request import CompletionRequest
from localcoder.completion.snippets import Snippet, render
from localcoder.context import bundled_counter, gather
from localcoder.context.resolver import Deadline
from localcoder.pipeline import complete
from localcoder.runtime import LoadOptions, load_model
from localcoder.source import read_source_bytes
from tests.helpers import checked_document, localcoder

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
UTIL = "def helper(a, b):\n    '''Add them.'''\n    return a + b\n"
APP = "from util import helper\n\nvalue = helper(1, 2)\n"
HEADERS = "function parseHeader(line) {\n  const [key, value] = line.split(':');\n  return { key, value };\n}\n" * 4
QUERY = "const { key, value } = parseHeader(line.split(':'))"
RESIDENT = 0.3  # the deadline serve and the language server give a request (completion.request)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def git(root: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.run(["git", "-C", str(root), *arguments], capture_output=True, text=True, env=env, check=False)


def trapped_repository(tmp_path: Path, gitdir_elsewhere: bool) -> tuple[Path, Path]:
    """A project whose git config names a program (core.fsmonitor, and hooks) that leaves a marker when run; its
    gitdir in `.git`, or elsewhere with a `.git` file pointing there."""
    root, marker = write(tmp_path / "repo", {"setup.py": "", "util.py": UTIL, "app.py": APP}), tmp_path / "ran"
    trap = tmp_path / "trap.sh"
    trap.write_text(f"#!/bin/sh\necho \"$0 $*\" >> '{marker}'\n")
    trap.chmod(0o755)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for hook in ("post-index-change", "post-checkout", "pre-commit"):
        shutil.copy(trap, hooks / hook)
    if gitdir_elsewhere:
        elsewhere = tmp_path / "elsewhere.git"
        subprocess.run(["git", "init", "-q", "--separate-git-dir", str(elsewhere), str(root)], check=True)
        assert (root / ".git").is_file()
    else:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    git(root, "add", "-A")
    for key, value in (("core.fsmonitor", str(trap)), ("core.hooksPath", str(hooks)), ("core.pager", str(trap))):
        git(root, "config", key, value)
    return root, marker


@needs_git
@pytest.mark.parametrize("gitdir_elsewhere", [False, True], ids=["dot-git folder", "dot-git file"])
def test_a_repositorys_own_programs_never_run(tmp_path: Path, tiny_f32_gguf: Path, gitdir_elsewhere: bool) -> None:
    root, marker = trapped_repository(tmp_path, gitdir_elsewhere)
    git(root, "status")
    assert marker.exists(), "control: plain git runs the repository's fsmonitor"
    marker.unlink()

    shown = localcoder("context", f"{root / 'app.py'}:3", "--json")
    assert shown.returncode == 0, shown.stderr
    assert [s["path"] for s in checked_document("context", shown.stdout)["snippets"]] == ["util.py"]
    options = ("--model", str(tiny_f32_gguf), "--no-server", "--json", "--max-tokens", "1")
    completed = localcoder("complete", f"{root / 'app.py'}:3", *options)
    assert completed.returncode == 0, completed.stderr
    assert [s["path"] for s in json.loads(completed.stdout)["context"]] == ["util.py"]
    answer, stderr = lsp_session(tiny_f32_gguf, root, "app.py", APP, 2)
    assert "result" in answer, (answer, stderr)
    assert not marker.exists(), marker.read_text()
    assert "warning" not in shown.stderr + completed.stderr  # git's own chatter about the hook stays out too


def frame(message: dict) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def lsp_session(model: Path, root: Path, name: str, text: str, line: int) -> tuple[dict, str]:
    """A language server session that opens `name` in workspace `root` and asks for a completion on `line`."""
    uri = (root / name).as_uri()
    stream = frame({"id": 1, "method": "initialize", "params": {"capabilities": {}, "workspaceFolders": [
        {"uri": root.as_uri(), "name": "repo"}]}}) + frame({"method": "initialized", "params": {}})  # fmt: skip
    document = {"uri": uri, "languageId": "python", "version": 1, "text": text}
    stream += frame({"method": "textDocument/didOpen", "params": {"textDocument": document}})
    position = {"line": line, "character": len(text.split("\n")[line])}
    stream += frame({"id": 2, "method": "textDocument/completion", "params": {
        "textDocument": {"uri": uri}, "position": position, "context": {"triggerKind": 1}}})  # fmt: skip
    command = [sys.executable, "-m", "localcoder", "lsp", "--model", str(model), "--no-server"]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(stream)
    server.stdin.flush()
    answer = read_answer(server.stdout, 2)  # then shutdown, which would cancel the request still running
    _, stderr = server.communicate(frame({"id": 3, "method": "shutdown"}) + frame({"method": "exit"}), timeout=120)
    return answer, stderr.decode()


def read_answer(stdout, msg_id: int) -> dict:
    while True:
        length = 0
        while (header := stdout.readline()) not in (b"\r\n", b""):
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
        assert length, "the server ended without answering"
        message = json.loads(stdout.read(length))
        if message.get("id") == msg_id:
            return message


def timed(root: Path, name: str, text: str, seconds: float, **options) -> tuple[float, object]:
    started = time.monotonic()
    context = gather(root / name, text, len(text), budget=512, deadline=Deadline.after(seconds), **options)
    return time.monotonic() - started, context


def test_a_gitdir_whose_head_is_a_fifo_costs_no_more_than_the_deadline(tmp_path: Path) -> None:
    bundled_counter()("warm")  # the tokenizer loads once per process; not the repository's doing
    clean = write(tmp_path / "clean", {"setup.py": "", "util.py": UTIL})
    subprocess.run(["git", "init", "-q", str(clean)], check=True) if shutil.which("git") else None
    took, context = timed(clean, "app.py", APP, RESIDENT)
    assert [s.path for s in context.snippets] == ["util.py"], "control: the repository without the hazard"
    hostile = write(tmp_path / "fifo", {"setup.py": "", "util.py": UTIL, ".git/config": "[core]\n"})
    os.mkfifo(hostile / ".git" / "HEAD")
    for _ in range(3):  # at every keystroke, not only the first
        took, context = timed(hostile, "app.py", APP, RESIDENT)
        assert took < 10 * RESIDENT, took
    assert [s.path for s in context.snippets] == ["util.py"]  # read as a repository without git meanwhile


def test_a_huge_tree_is_read_a_deadline_at_a_time(tmp_path: Path) -> None:
    """20,000 files the first call must list, check and index: it returns by its deadline, and later calls go on
    where it stopped until the similar code is found (the control: the same tree, given time, gives context)."""
    bundled_counter()("warm")
    root = write(tmp_path, {"setup.py": "", "lib/a_headers.lua": HEADERS})
    for folder in range(20):
        (root / "lib" / f"z{folder:02}").mkdir()
        for index in range(1000):
            (root / "lib" / f"z{folder:02}" / f"f{index}.lua").write_text(f"let v{index} = {index};\n")
    took, first = timed(root, "lib/app.lua", QUERY, RESIDENT)
    assert took < 10 * RESIDENT, (took, first.notes)
    calls = [first]
    while not calls[-1].snippets and len(calls) < 40:
        calls.append(timed(root, "lib/app.lua", QUERY, RESIDENT)[1])
    assert [s.path for s in calls[-1].snippets] == ["lib/a_headers.lua"], [c.notes for c in calls]
    assert len(calls) > 1 and any("more next time" in note for note in first.notes), first.notes


def test_a_client_that_hung_up_stops_the_context_stage_and_frees_the_model(tmp_path: Path, tiny_f32_gguf: Path) -> None:
    root = write(tmp_path, {"setup.py": "", "lib/a_headers.lua": HEADERS})
    for index in range(20_000):
        (root / "lib" / f"f{index:05}.lua").write_text(f"let v{index} = {index};\n")
    model = load_model(tiny_f32_gguf, LoadOptions(ctx=1024))
    buffer = read_source_bytes(QUERY.encode(), name=str(root / "lib" / "app.lua"))
    request = CompletionRequest.build(
        buffer, 1, None, sampling=Sampling(temperature=0, max_tokens=1), context_seconds=60
    )  # a deadline far away: only the hang-up can end the stage early
    started = time.monotonic()
    with pytest.raises(GenerationCancelled):
        complete(model, request, cancelled=lambda: time.monotonic() - started > 0.1)  # hangs up after 0.1 s
    assert time.monotonic() - started < 3.0  # before: the whole stage first (6 s here), then the cancel
    answered = complete(model, replace(request, context_seconds=RESIDENT))  # control: the next one is answered
    assert answered.stop_reason


def test_the_context_index_is_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    root = write(tmp_path / "repo", {"setup.py": "", "lib/headers.lua": HEADERS})
    (root / "lib" / "headers.lua").chmod(0o600)
    (root / "lib" / "app.lua").write_text(QUERY + "\n")
    loose = home / "cache" / "context"  # what an older version left: 0755 folders
    loose.mkdir(parents=True)
    for folder in (home / "cache", loose):
        folder.chmod(0o755)
    shown = localcoder(
        "context", f"{root / 'lib' / 'app.lua'}:1", "--json", env={"LOCALCODER_HOME": str(home)},
        preexec=lambda: os.umask(0o022),  # the usual umask, under which the index was created 0644 in 0755 folders
    )  # fmt: skip
    assert [s["path"] for s in checked_document("context", shown.stdout)["snippets"]] == ["lib/headers.lua"]
    [index] = loose.glob("*.json")
    assert "parseHeader" in index.read_text(), "control: the index holds what the 0600 file says"
    assert stat.S_IMODE(index.stat().st_mode) == 0o600
    assert [stat.S_IMODE(p.stat().st_mode) for p in (home / "cache", loose)] == [0o700, 0o700]
    assert all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0 for p in loose.iterdir())  # the lock file too


FORGED = "lib/evil\nFORGED:1-99  0 tokens\u202e.lua"
PLAIN = "lib/plain name \u00e9t\u00e9.lua"


def test_names_with_newlines_and_bidi_overrides_are_escaped_where_shown(tmp_path: Path) -> None:
    root = write(tmp_path, {"setup.py": "", FORGED: HEADERS, PLAIN: HEADERS.replace("key", "name")})
    app = root / "lib" / "app.lua"
    app.write_text(QUERY + "\n")
    shown = localcoder("context", f"{app}:1", "--budget", "600")
    assert shown.returncode == 0, shown.stderr
    escaped = "lib/evil\\x0aFORGED:1-99  0 tokens\\u202e.lua"
    assert any(line.startswith(f"{escaped}:") for line in shown.stdout.splitlines()), shown.stdout
    assert not any(line.startswith("FORGED") for line in shown.stdout.splitlines())
    assert "\u202e" not in shown.stdout
    assert any(line.startswith(f"{PLAIN}:") for line in shown.stdout.splitlines()), "control: a plain name as is"

    as_json = localcoder("context", f"{app}:1", "--json", "--budget", "600")
    assert "\u202e" not in as_json.stdout
    assert {s["path"] for s in checked_document("context", as_json.stdout)["snippets"]} == {FORGED, PLAIN}

    prompt = render(Snippet("let x = 1;", FORGED))
    assert prompt == f"-- {escaped}\nlet x = 1;\n\n"  # the name stays inside its comment line
    assert render(Snippet("let x = 1;", PLAIN)) == f"-- {PLAIN}\nlet x = 1;\n\n"
