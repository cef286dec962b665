"""The sandbox starts the real interpreter wherever it lives, holds its limits, and never scores a broken start.

Every test here proves that the program ran: it prints a token made at run time, and the test looks for it.
A sandbox that starts nothing would pass a test that only looks for escapes.

Placement: a virtual environment under /tmp (where a fresh clone in /tmp keeps its .venv), under /var/tmp and in
a home directory, run as root and as an ordinary user. Each venv is made here and holds a copy of the sandbox's
code, so that an ordinary user can run it however the checkout's own directories are protected.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcoder import sandbox
from localcoder.evaluate.datasets import BENCHMARKS, load_tasks
from localcoder.evaluate.results import ResultsFile
from localcoder.evaluate.runner import score
from localcoder.sandbox import Limits, SandboxFailed, run_program
from tests.helpers import make_venv

pytestmark = [
    pytest.mark.usefixtures("os_sandbox"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bwrap is the Linux sandbox"),
]
ORDINARY_UID = 47113  # a uid no process on a test machine has: its process count starts at zero
REPO = Path(__file__).resolve().parent.parent

# Run by a venv's interpreter: run one program in the sandbox and report as JSON (never a traceback).
REPORT = """
import json, sys
from localcoder import sandbox
found = sandbox.status()
out = {"available": found.available, "detail": found.detail, "hint": found.hint}
if found.available:
    try:
        result = sandbox.run_program(sys.argv[1])
        out.update(stdout=result.stdout, stderr=result.stderr, exit_code=result.exit_code, held=result.sandbox)
    except sandbox.SandboxFailed as exc:
        out["failed"] = str(exc)
print(json.dumps(out))
"""


def token_program() -> tuple[str, str]:
    token = secrets.token_hex(12)
    return token, f"import os, sys\nprint({token!r}, os.getuid(), sys.prefix)"


def _reachable_by_others(path: str) -> bool:
    """Whether a user other than root can run `path`: every directory on the way is o+x, the file o+x."""
    real = Path(os.path.realpath(path))
    if not real.exists() or not real.stat().st_mode & stat.S_IXOTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in real.parents)


def python_for(user: int | None) -> str:
    """A base interpreter that `user` (None: this one) can run; the system's Python for an ordinary user when
    this one lives in root's home (pyenv)."""
    base = getattr(sys, "_base_executable", sys.executable)
    if user is None or _reachable_by_others(base):
        return base
    if _reachable_by_others("/usr/bin/python3"):
        return "/usr/bin/python3"
    pytest.skip("no Python interpreter that an ordinary user may run (this one is in a private directory)")


@pytest.fixture
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A fresh directory, readable by every user, in the place the parameter names; removed afterwards."""
    where = {"tmp": "/tmp", "var-tmp": "/var/tmp", "home": None}[request.param]
    if where is None:  # a home directory: the venv inside it, HOME pointing at it
        directory = Path(tempfile.mkdtemp(prefix="localcoder-home-", dir="/tmp")) / "home" / "me"
        directory.mkdir(parents=True)
        top = directory.parent.parent
    else:
        if not os.access(where, os.W_OK):
            pytest.skip(f"{where} is not writable here")
        directory = top = Path(tempfile.mkdtemp(prefix="localcoder-venv-", dir=where))
    for path in [directory, *directory.relative_to(top).parents]:
        (top / path).chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(top, ignore_errors=True)


def run_as(interpreter: Path, program: str, home: Path, user: int | None) -> dict:
    if user is not None:
        os.chown(home, user, user)
    identity = {} if user is None else {"user": user, "group": user, "extra_groups": []}
    done = subprocess.run(
        [str(interpreter), "-c", REPORT, program], capture_output=True, text=True, timeout=120,
        env={"HOME": str(home), "PATH": os.environ.get("PATH", os.defpath)}, cwd="/", **identity,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def assert_ran(report: dict, token: str, prefix: Path) -> None:
    if not report["available"] and user_namespaces_refused(report) and not os.environ.get("CI"):
        pytest.skip(f"this kernel refuses an ordinary user's namespaces: {report['detail']}")
    assert report["available"], report
    assert "failed" not in report, report["failed"]
    printed, uid, seen_prefix = report["stdout"].split()
    assert (printed, uid, seen_prefix) == (token, "65534", str(prefix)), report
    if "tmp without inode cap" in report["held"] and not os.environ.get("CI"):
        pytest.skip("this kernel gives user namespaces to bwrap alone: /tmp has no inode cap here")
    assert any(held.endswith(" inodes") for held in report["held"]), report["held"]  # as root and as a user


def user_namespaces_refused(report: dict) -> bool:
    """The kernel's own refusal (Ubuntu's AppArmor rule, a locked container), not a limit reached."""
    return any(words in report["detail"] for words in ("uid map", "ermission denied", "not permitted"))


@pytest.mark.parametrize("place", ["tmp", "var-tmp", "home"], indirect=True)
@pytest.mark.parametrize("user", [None, ORDINARY_UID], ids=["root-or-self", "ordinary-user"])
def test_a_program_runs_with_the_interpreter_in_a_venv_anywhere(place: Path, user: int | None) -> None:
    if user is not None and os.geteuid() != 0:
        pytest.skip("only root can run a test as another user")
    interpreter = make_venv(place, python_for(user))
    token, program = token_program()
    assert_ran(run_as(interpreter, program, place, user), token, place / "venv")


HOLDER = """
import threading, time
threading.stack_size(65536)
for _ in range(300):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print('300', flush=True)
time.sleep(60)
"""


def test_an_ordinary_user_with_hundreds_of_threads_still_runs_programs(tmp_path: Path) -> None:
    """RLIMIT_NPROC counts every process of a user: set before bwrap, it made /run fail for a user who already
    had a few hundred threads. Inside the run's own user namespace it counts only the run's."""
    if os.geteuid() != 0:
        pytest.skip("only root can run a test as another user")
    directory = Path(tempfile.mkdtemp(prefix="localcoder-busy-", dir="/tmp"))
    directory.chmod(0o755)
    busy = None
    try:
        interpreter = make_venv(directory, python_for(ORDINARY_UID))
        busy = subprocess.Popen([str(interpreter), "-c", HOLDER], stdout=subprocess.PIPE, text=True,
                                user=ORDINARY_UID, group=ORDINARY_UID, extra_groups=[])  # fmt: skip
        assert busy.stdout is not None and busy.stdout.readline() == "300\n"
        token, program = token_program()
        assert_ran(run_as(interpreter, program, directory, ORDINARY_UID), token, directory / "venv")
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
        shutil.rmtree(directory, ignore_errors=True)


THREAD_BOMB = """
import threading, time
print({token!r}, flush=True)
threading.stack_size(64 * 1024)  # small stacks: the address-space limit does not stop it first
started = 0
try:
    while True:
        threading.Thread(target=time.sleep, args=(8,), daemon=True).start()
        started += 1
except RuntimeError:
    print("threads", started, flush=True)
time.sleep(6)
"""


def test_one_runs_thread_bomb_does_not_reach_another_run() -> None:
    bomb_token, (token, program) = secrets.token_hex(8), token_program()
    bombed: list = []
    bomb = threading.Thread(target=lambda: bombed.append(run_program(THREAD_BOMB.format(token=bomb_token),
                                                                     Limits(seconds=10.0))))  # fmt: skip
    bomb.start()
    try:
        time.sleep(3)  # the bomb holds every thread it could make by now
        other = run_program(program)
    finally:
        bomb.join()
    assert other.stdout.split()[0] == token, other.stderr
    lines = bombed[0].stdout.split("\n")
    assert lines[0] == bomb_token, bombed[0].stderr
    assert 100 < int(lines[1].split()[1]) <= 256  # bounded by its own budget, not by the memory limit


def test_memory_outside_the_address_space_limit_is_refused() -> None:
    token, _ = token_program()
    program = f"""
import ctypes, mmap, os
print({token!r}, flush=True)
try:
    fd = os.memfd_create("hoard")
    os.ftruncate(fd, 1280 << 20)
    view = mmap.mmap(fd, 1280 << 20)
    view[::4096] = b"x" * (1280 << 8)
    print("memfd held", len(view))
except OSError as exc:
    print("memfd", exc.errno)
libc = ctypes.CDLL(None, use_errno=True)
segment = libc.shmget(0, 1280 << 20, 0o1000 | 0o600)  # IPC_PRIVATE, IPC_CREAT
print("shmget", segment, ctypes.get_errno())
"""
    result = run_program(program, Limits(seconds=20.0))
    assert result.stdout.split("\n")[:3] == [token, "memfd 1", "shmget -1 1"], result.stdout + result.stderr


def test_the_cpu_limit_cannot_be_raised() -> None:
    token, _ = token_program()
    program = f"""
import resource
print({token!r})
soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
print(soft, hard)
try:
    resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    print("raised")
except ValueError:
    print("refused")
"""
    result = run_program(program, Limits(seconds=3.0))
    printed, limits, answer = result.stdout.split("\n")[:3]
    soft, hard = map(int, limits.split())
    assert (printed, answer) == (token, "refused"), result.stderr
    assert 0 < soft <= hard <= soft + 1 <= 6


def test_pid_1_cannot_be_reached_through_a_pidfd() -> None:
    token, _ = token_program()
    program = f"""
import ctypes, os
print({token!r})
try:
    os.pidfd_open(1)
    print("attached to pid 1")
except OSError as exc:
    print("pidfd_open", exc.errno)
libc = ctypes.CDLL(None, use_errno=True)
print("pidfd_getfd", libc.syscall(438, 0, 3, 0), ctypes.get_errno())
"""
    result = run_program(program)
    assert result.stdout.split("\n")[:3] == [token, "pidfd_open 1", "pidfd_getfd -1 1"], result.stderr


def test_a_failed_detection_is_not_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox.status.cache_clear()
    with monkeypatch.context() as patched:
        patched.setenv("PATH", str(tmp_path))  # no bwrap on it: the probe fails
        assert not sandbox.status().available
    assert sandbox.status().available  # found once bwrap is back, with nothing cleared by hand
    token, program = token_program()
    assert run_program(program).stdout.split()[0] == token


@pytest.fixture
def hidden_interpreter(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The sandbox shows none of this interpreter's directories: starting it fails inside bwrap."""
    from localcoder.sandbox import linux

    if all(root == "/usr" or root.startswith("/usr/") for root in map(os.path.realpath, (sys.prefix,))):
        pytest.skip("this interpreter lives in /usr, which the sandbox always shows")
    sandbox.status.cache_clear()
    assert sandbox.status().available  # found working first, as in a long eval whose sandbox breaks midway
    monkeypatch.setattr(linux, "python_roots", lambda: [])
    yield
    sandbox.status.cache_clear()


@pytest.mark.usefixtures("hidden_interpreter")
def test_a_program_the_sandbox_cannot_start_is_an_error_with_its_fix() -> None:
    with pytest.raises(SandboxFailed, match="execvp.*not visible inside it.*use a Python"):
        run_program("print('never')")
    sandbox.status.cache_clear()
    found = sandbox.status()  # doctor's check starts the real interpreter too: it sees the same fault
    assert not found.available and "not visible" in found.detail and "use a Python" in found.hint


def test_eval_stops_at_a_sandbox_failure_and_resumes(tmp_path: Path, hidden_interpreter: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from localcoder.errors import LocalcoderError

    task = load_tasks("humaneval", 1)[0]
    out = tmp_path / "samples.jsonl"
    with ResultsFile(out, {"benchmark": "humaneval"}) as results, pytest.raises(
        LocalcoderError, match=r"could not start the program.*0 samples are in .*rerun to resume"
    ):
        score(BENCHMARKS["humaneval"], [task], 3, lambda task, n: task.canonical_solution, results, workers=2)
    assert results.records == {}  # nothing scored: no failed sample, no "pass@1 0.00"
    monkeypatch.undo()  # the interpreter is visible again: the same run resumes
    with ResultsFile(out, {"benchmark": "humaneval"}) as resumed:
        assert score(BENCHMARKS["humaneval"], [task], 3, lambda task, n: task.canonical_solution, resumed) == 3
        assert [resumed.records[(task.task_id, n)].passed for n in range(3)] == [True] * 3
