"""The sandbox runs real Python subprocesses; each test checks one protection from the outside."""

import os
import socket
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from localcoder.sandbox import Limits, _minimal_env, _run_process, run_program

posix_only = pytest.mark.skipif(os.name != "posix", reason="process groups and /proc are POSIX")


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


def test_normal_program_prints_and_exits_zero():
    result = run_program("print('hello', 6 * 7)")
    assert (result.stdout, result.stderr, result.exit_code) == ("hello 42\n", "", 0)
    assert not result.timed_out and result.killed_reason is None
    assert {"tempdir", "guard"} <= set(result.sandbox)


def test_exit_code_and_stdin_are_passed_through():
    result = run_program("import sys\nline = input()\nprint(line.upper())\nsys.exit(7)", stdin="abc\n")
    assert result.stdout == "ABC\n"
    assert result.exit_code == 7


def test_exception_gives_traceback_on_stderr():
    result = run_program("def f():\n    return 1 / 0\nf()")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "ZeroDivisionError" in result.stderr
    assert "main.py" in result.stderr


def test_environment_is_minimal(monkeypatch):
    monkeypatch.setenv("LOCALCODER_SECRET", "leak")
    result = run_program(
        "import os, json\nprint(json.dumps(dict(os.environ)))\nprint(os.getcwd() == os.environ['HOME'])"
    )
    assert "leak" not in result.stdout
    assert result.stdout.splitlines()[-1] == "True"


def test_infinite_loop_is_killed_at_the_time_limit():
    result = run_program("while True:\n    pass", Limits(seconds=1.0))
    assert result.timed_out
    assert result.exit_code is None
    assert result.killed_reason == "time limit"
    assert 0.9 <= result.seconds < 3.0


def test_memory_hog_fails_and_runner_survives():
    result = run_program("data = bytearray(4 << 30)\nprint('allocated', len(data))", Limits(seconds=5.0))
    assert "allocated" not in result.stdout
    assert result.exit_code != 0
    assert "MemoryError" in result.stderr or result.exit_code is None
    assert run_program("print('still here')").stdout == "still here\n"


@posix_only
@pytest.mark.parametrize(
    "bomb",
    [
        "while True:\n    os.fork()",
        "import subprocess\nwhile True:\n    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])",
        "import multiprocessing, time\nwhile True:\n"
        "    multiprocessing.get_context('spawn').Process(target=time.sleep, args=(60,)).start()",
    ],
    ids=["os.fork", "subprocess", "multiprocessing"],
)
def test_fork_bomb_is_contained(bomb):
    source = f"import os, sys\nprint(os.getpgrp(), flush=True)\n{bomb}"
    started = time.monotonic()
    result = run_program(source, Limits(seconds=3.0))
    assert time.monotonic() - started < 10
    pgid = int(result.stdout.split()[0])
    assert_group_gone(pgid)


@posix_only
def test_process_group_is_killed_after_the_program_exits(tmp_path):
    # Below the guard: a plain interpreter leaves sleeping children behind, and the runner must reap the whole group.
    code = textwrap.dedent("""
        import os, time
        print(os.getpgrp(), flush=True)
        for _ in range(3):
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
    """)
    result = _run_process([sys.executable, "-c", code], str(tmp_path), _minimal_env(str(tmp_path)), Limits(), "")
    assert result.exit_code == 0
    assert_group_gone(int(result.stdout.split()[0]))


def test_writing_outside_the_working_directory_fails(tmp_path):
    target = tmp_path / "escaped.txt"
    result = run_program(f"open({str(target)!r}, 'w').write('x')")
    assert "PermissionError" in result.stderr
    assert not target.exists()


def test_writing_inside_the_working_directory_works():
    source = "import os, tempfile\nopen('note.txt', 'w').write('kept')\nos.mkdir('sub')\n"
    source += "with tempfile.NamedTemporaryFile('w') as f:\n    f.write('x')\nprint(open('note.txt').read())"
    result = run_program(source)
    assert result.stderr == ""
    assert result.stdout == "kept\n"


def test_deleting_outside_the_working_directory_fails(tmp_path):
    canary = tmp_path / "canary.txt"
    canary.write_text("alive")
    result = run_program(f"import os\nos.remove({str(canary)!r})")
    assert "PermissionError" in result.stderr
    assert canary.read_text() == "alive"


def test_rmtree_of_the_working_directorys_parent_fails(tmp_path, monkeypatch):
    # The working directory is made under a parent this test owns, so a failing guard cannot harm the real /tmp.
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "canary.txt").write_text("alive")
    monkeypatch.setattr(tempfile, "tempdir", str(parent))
    result = run_program("import os, shutil\nshutil.rmtree(os.path.dirname(os.getcwd()))")
    assert "PermissionError" in result.stderr
    assert (parent / "canary.txt").read_text() == "alive"
    assert list(parent.iterdir()) == [parent / "canary.txt"]  # the working directory was removed afterwards


def assert_no_connection(server: socket.socket) -> None:
    with pytest.raises(TimeoutError):
        server.accept()[0].close()


def test_network_is_refused(listener):
    port = listener.getsockname()[1]
    result = run_program(f"import socket\nsocket.socket().connect(('127.0.0.1', {port}))\nprint('connected')")
    assert "connected" not in result.stdout
    assert result.exit_code != 0
    assert_no_connection(listener)


@posix_only
def test_network_namespace_holds_without_the_guard(listener, tmp_path):
    port = listener.getsockname()[1]
    code = f"import socket\nsocket.socket().connect(('127.0.0.1', {port}))\nprint('connected')"
    result = _run_process([sys.executable, "-c", code], str(tmp_path), _minimal_env(str(tmp_path)), Limits(), "")
    if "no-network(netns)" not in result.sandbox:
        pytest.skip("this kernel does not allow a new network namespace here")
    assert "connected" not in result.stdout
    assert_no_connection(listener)


def test_output_beyond_the_cap_is_cut():
    source = "import sys\nprint('a' * 100_000)\nprint('b' * 100_000, file=sys.stderr)"
    result = run_program(source, Limits(output_bytes=1000))
    assert result.stdout == "a" * 1000
    assert result.stderr == "b" * 1000
    assert result.exit_code == 0


def test_numpy_imports_but_ctypes_cannot_load_libraries():
    # `import ctypes` (numpy does it) opens the interpreter itself; MTPB programs start with `import numpy`.
    numpy_result = run_program("import numpy as np\nprint(np.arange(4).sum())", Limits(seconds=20.0))
    assert (numpy_result.stdout, numpy_result.exit_code) == ("6\n", 0), numpy_result.stderr
    for code in ("ctypes.CDLL('libc.so.6')", "ctypes.CDLL(None).getpid()", "ctypes.pythonapi.Py_GetVersion"):
        result = run_program(f"import ctypes\n{code}\nprint('loaded')")
        assert "loaded" not in result.stdout and "PermissionError" in result.stderr, code
