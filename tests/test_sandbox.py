"""The sandbox runs real Python subprocesses in real bwrap; each test checks one behaviour from the outside.

The escape suite (tests/test_sandbox_escape.py) attacks the boundary; these are what honest programs rely on,
the unconfined `--unsafe-no-sandbox` path and its guard, and the refusal where there is no OS sandbox.
"""

import os
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from localcoder import sandbox
from localcoder.sandbox import Limits, SandboxUnavailable, run_program
from localcoder.sandbox.macos import profile
from localcoder.sandbox.process import minimal_env, run_process
from tests.helpers import assert_no_connection

posix_only = pytest.mark.skipif(os.name != "posix", reason="process groups and /proc are POSIX")
in_os_sandbox = pytest.mark.usefixtures("os_sandbox")


def live_processes_in_group(pgid: int) -> list[int]:
    """Pids in process group `pgid` that are not zombies (zombies are dead; only their parent can reap them)."""
    if not Path("/proc/self/stat").exists():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            found.append(int(stat.parent.name))
    return found


def assert_group_gone(pgid: int) -> None:
    deadline = time.monotonic() + 2
    while live_processes_in_group(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_processes_in_group(pgid) == []


# In the OS sandbox -------------------------------------------------------------------------------


@in_os_sandbox
def test_normal_program_prints_and_exits_zero():
    result = run_program("print('hello', 6 * 7)")
    assert (result.stdout, result.stderr, result.exit_code) == ("hello 42\n", "", 0)
    assert not result.timed_out and result.killed_reason is None
    assert sandbox.status().kind in result.sandbox and "guard" not in result.sandbox


@in_os_sandbox
def test_exit_code_and_stdin_are_passed_through():
    result = run_program("import sys\nline = input()\nprint(line.upper())\nsys.exit(7)", stdin="abc\n")
    assert result.stdout == "ABC\n"
    assert result.exit_code == 7


@in_os_sandbox
def test_exception_gives_traceback_on_stderr():
    result = run_program("def f():\n    return 1 / 0\nf()")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "ZeroDivisionError" in result.stderr
    assert "main.py" in result.stderr


@in_os_sandbox
def test_environment_is_minimal(monkeypatch):
    monkeypatch.setenv("LOCALCODER_SECRET", "leak")
    result = run_program(
        "import os, json\nprint(json.dumps(dict(os.environ)))\nprint(os.getcwd() == os.environ['HOME'])"
    )
    assert "leak" not in result.stdout
    assert result.stdout.splitlines()[-1] == "True"


@in_os_sandbox
def test_infinite_loop_is_killed_at_the_time_limit():
    result = run_program("while True:\n    pass", Limits(seconds=1.0))
    assert result.timed_out
    assert result.exit_code is None
    assert result.killed_reason == "time limit"


@in_os_sandbox
def test_memory_hog_fails_and_runner_survives():
    result = run_program("data = bytearray(4 << 30)\nprint('allocated', len(data))", Limits(seconds=5.0))
    assert "allocated" not in result.stdout
    assert result.killed_reason == "memory limit"
    assert run_program("print('still here')").stdout == "still here\n"


@in_os_sandbox
def test_cpu_time_limit_names_the_signal():
    # Killed by SIGXCPU: bwrap reports it as exit status 128 + 24, read back as the signal.
    result = run_program("import os, signal\nos.kill(os.getpid(), signal.SIGXCPU)")
    assert result.killed_reason == "cpu time limit" and result.exit_code is None


@in_os_sandbox
def test_writing_in_the_working_directory_and_tmp_works():
    source = "import os, tempfile\nopen('note.txt', 'w').write('kept')\nos.mkdir('sub')\n"
    source += "with tempfile.NamedTemporaryFile('w') as f:\n    f.write('x')\nprint(open('note.txt').read())"
    result = run_program(source)
    assert (result.stderr, result.stdout) == ("", "kept\n")


@in_os_sandbox
def test_threads_run_but_new_processes_are_refused():
    source = textwrap.dedent("""
        import os, subprocess, threading
        done = []
        thread = threading.Thread(target=done.append, args=(1,))
        thread.start()
        thread.join()
        print("threads", done)
        try:
            subprocess.run(["true"])
        except PermissionError as exc:
            print("refused", exc.errno)
    """)
    result = run_program(source)
    assert result.stdout == "threads [1]\nrefused 1\n", result.stderr


@in_os_sandbox
def test_output_beyond_the_cap_is_cut():
    source = "import sys\nprint('a' * 100_000)\nprint('b' * 100_000, file=sys.stderr)"
    result = run_program(source, Limits(output_bytes=1000))
    assert result.stdout == "a" * 1000
    assert result.stderr == "b" * 1000
    assert result.exit_code == 0


@in_os_sandbox
def test_numpy_runs():
    # MTPB programs start with `import numpy`: the virtual environment is visible, read-only.
    result = run_program("import numpy as np\nprint(np.arange(4).sum())", Limits(seconds=20.0))
    assert (result.stdout, result.exit_code) == ("6\n", 0), result.stderr


# Without an OS sandbox ---------------------------------------------------------------------------


@pytest.fixture
def probe_again():
    sandbox.status.cache_clear()
    yield
    sandbox.status.cache_clear()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bwrap is the Linux sandbox")
def test_without_bwrap_programs_are_refused_unless_unsafe(tmp_path, monkeypatch, probe_again):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    assert not sandbox.status().available and "not installed" in sandbox.status().detail
    with pytest.raises(SandboxUnavailable, match="install bubblewrap.*--unsafe-no-sandbox"):
        run_program("print(1)")
    result = run_program("print(1)", unsafe_no_sandbox=True)
    assert result.stdout == "1\n" and "NO OS SANDBOX" in result.sandbox


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bwrap is the Linux sandbox")
def test_a_bwrap_the_kernel_refuses_is_no_sandbox(monkeypatch, probe_again):
    # What bwrap prints where user namespaces are not allowed (Ubuntu's AppArmor rule, a locked container).
    # Run by root, bwrap starts as nobody, so the fake lives where nobody can reach it (pytest's tmp_path is 0700).
    directory = Path(tempfile.mkdtemp(dir="/tmp"))
    directory.chmod(0o755)
    fake = directory / "bwrap"
    fake.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "bubblewrap 0.0.0" && exit 0\n'
                    'echo "bwrap: setting up uid map: Permission denied" >&2\nexit 1\n')  # fmt: skip
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.defpath}")
    try:
        found = sandbox.status()
        assert not found.available and "setting up uid map" in found.detail and "user namespaces" in found.hint
        with pytest.raises(SandboxUnavailable):
            run_program("print(1)")
    finally:
        shutil.rmtree(directory)


def test_macos_profile_denies_network_processes_writes_and_the_home_directory():
    text = profile('/private/var/folders/x/T/run "1"', "/Users/me", ["/Users/me/.pyenv/versions/3.12.1"])
    assert text.count("(") == text.count(")")
    denials = ("(deny network*)", "(deny process-fork)", "(deny file-write*)",
               '(deny file-read* (subpath "/Users/me"))')
    for rule in denials:
        assert rule in text
    assert r'(subpath "/private/var/folders/x/T/run \"1\"")' in text  # quoted as a Scheme string
    assert text.index('(deny file-read* (subpath "/Users/me"))') < text.index("/Users/me/.pyenv")  # last rule wins


# --unsafe-no-sandbox: the guard against accidents ------------------------------------------------


def test_unsafe_writing_outside_the_working_directory_fails(tmp_path):
    target = tmp_path / "escaped.txt"
    result = run_program(f"open({str(target)!r}, 'w').write('x')", unsafe_no_sandbox=True)
    assert "PermissionError" in result.stderr
    assert not target.exists()


def test_unsafe_deleting_outside_fails_and_the_working_directory_is_removed(tmp_path, monkeypatch):
    # The working directory is made under a parent this test owns, so a failing guard cannot harm the real /tmp.
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "canary.txt").write_text("alive")
    monkeypatch.setattr(tempfile, "tempdir", str(parent))
    result = run_program("import os, shutil\nshutil.rmtree(os.path.dirname(os.getcwd()))", unsafe_no_sandbox=True)
    assert "PermissionError" in result.stderr
    assert list(parent.iterdir()) == [parent / "canary.txt"]


def test_unsafe_network_is_refused(listener):
    port = listener.getsockname()[1]
    code = f"import socket\nsocket.socket().connect(('127.0.0.1', {port}))\nprint('connected')"
    result = run_program(code, unsafe_no_sandbox=True)
    assert "connected" not in result.stdout and result.exit_code != 0
    assert_no_connection(listener)


@posix_only
def test_unsafe_fork_bomb_is_contained():
    result = run_program("import os\nprint(os.getpgrp(), flush=True)\nwhile True:\n    os.fork()",
                         Limits(seconds=3.0), unsafe_no_sandbox=True)  # fmt: skip
    assert "PermissionError" in result.stderr
    assert_group_gone(int(result.stdout.split()[0]))


@posix_only
def test_process_group_is_killed_after_the_program_exits(tmp_path):
    # Below every sandbox: a plain interpreter leaves sleeping children behind; the runner reaps the whole group.
    code = textwrap.dedent("""
        import os, time
        print(os.getpgrp(), flush=True)
        for _ in range(3):
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
    """)
    result = run_process([sys.executable, "-c", code], str(tmp_path), minimal_env(str(tmp_path)), Limits(), "")
    assert result.exit_code == 0
    assert_group_gone(int(result.stdout.split()[0]))
