"""Linux: the program runs inside bubblewrap (bwrap), which builds it a world of its own from namespaces.

What the program sees and may do, and why each argument is there (see `bwrap_argv`):

- its own user, PID, network, IPC, UTS, mount (and cgroup where possible) namespaces (`--unshare-all`, and
  `--unshare-user` explicitly so that bwrap fails rather than carries on without one); inside it is uid 65534,
  with every capability dropped (`--cap-drop ALL`) and, with bwrap 0.8+, no further user namespaces;
- no network at all: a network namespace with only its own loopback, so neither the host's TCP listeners nor
  its abstract Unix sockets exist; Unix sockets bound to paths are not reachable because their paths are not;
- a file system of only what Python needs, read-only: /usr (with the /bin, /lib... links or directories as
  the host has them), /etc/ld.so.cache and /etc/localtime, and the directories of this Python installation and
  its virtual environment, wherever they live (/opt, a home directory as with pyenv or uv, even /tmp: they are
  bound after the fresh /tmp below is mounted, so it does not hide them, and only those directories show).
  Nothing else of the home directory, the project, the host's /tmp or the rest of the host; the root and /dev
  are remounted read-only;
- no /proc at all: in its PID namespace pid 1 is bwrap's own reaper, which the seccomp filter does not cover,
  and with a /proc the program could write that process's memory (/proc/1/mem) and start processes through it;
  without one there is also no /proc/sys to write and nothing of the host's /proc to read. Python and numpy
  do not need it;
- a minimal /dev, and one fresh tmpfs bounded in bytes and in inodes, mounted by the child before bwrap runs
  (scratch.py says why bwrap's own --tmpfs is not enough) and bound in as /tmp (the working directory /tmp/run
  is in it, so is the program, copied in from a memfd) and /dev/shm. Nothing it writes reaches the host's disk;
  all of it is gone when the run ends;
- a clean environment (`--clearenv`): nothing of the user's variables;
- its own session (`--new-session`), so it has no controlling terminal to push keystrokes into (TIOCSTI);
- `--die-with-parent` and the PID namespace: when the run ends, bwrap goes and every process inside with it;
- a seccomp filter refusing new processes, namespaces, keyrings, the kernel's riskiest interfaces (io_uring,
  userfaultfd, perf_event_open, bpf, aio), memory that escapes RLIMIT_AS (memfd, SysV IPC), sockets other than
  Unix ones, and every way to act on pid 1 (ptrace, pidfd, process_vm, and the pid-taking calls for any pid but
  the program's own): seccomp.py;
- from process.py, the rlimits (memory, CPU time, file size, 64 open files; hard limits fixed, so the program
  cannot raise them) and the process-group kill at the end;
- a process budget of its own: RLIMIT_NPROC is set by the bootstrap (below) inside the run's user namespace,
  where Linux 5.14 and later count the run's processes and threads apart from every other process of the
  same user. Set outside, before bwrap, it would count all of them: one run's thread bomb would starve the
  others (every run started by root is uid 65534), and a desktop user who already has a few hundred threads
  could start none. The user's own limit still bounds the total.

The command bwrap runs is a bootstrap, `python -I -B -c BOOTSTRAP`, which sets that limit, writes a word
to a pipe and then runs /tmp/run/main.py as `__main__` in the same interpreter (runpy; sys.argv and
tracebacks are the program's own, the bootstrap's frames left out). Running it in place rather than
exec'ing a second `python -I -B main.py` saves one interpreter start (about 30 ms here, a third of a short
eval check). The word proves the sandbox was built and the interpreter started in it: without it, what
bwrap printed is the sandbox's failure (SandboxFailed), never a result of the program, and never a run that
"passed" or "failed".

Started by root, the child becomes uid 65534 before bwrap runs (as_root.py says why and how), after mounting the
run's tmpfs (scratch.py).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass

from localcoder.sandbox import SandboxFailed, seccomp
from localcoder.sandbox.as_root import leave_root, stage_dirs
from localcoder.sandbox.process import (
    NPROC_LIMIT,
    ChildSetup,
    Conversation,
    Limits,
    RunResult,
    python_roots,
    run_process,
)
from localcoder.sandbox.scratch import SCRATCH_BYTES, mount_scratch, scratch_point, scratch_works

INSTALL_HINT = "install bubblewrap (Debian, Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)"
REFUSED_HINT = (
    "let bwrap create user namespaces (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 24.04 and later"
    " kernel.apparmor_restrict_unprivileged_userns=0 or an AppArmor profile for bwrap; in a container, one"
    " that allows them)"
)
LIMIT_HINT = (
    "a process or memory limit refused it: raise `ulimit -u` (or a container's pids limit) or free memory,"
    " or run fewer at once (eval --workers)"
)
WORKDIR = "/tmp/run"  # inside the sandbox
PROGRAM = f"{WORKDIR}/main.py"
_SANDBOX_ID = "65534"  # uid and gid inside: "nobody"
_TMP_BYTES = 128 << 20  # where there is no bounded scratch (scratch.py): bwrap's own tmpfs for /tmp, and /dev/shm
_SHM_BYTES = SCRATCH_BYTES - _TMP_BYTES
_TOP_LEVEL = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")  # links into /usr on merged-/usr systems
_ETC = ("/etc/ld.so.cache", "/etc/localtime")  # what the dynamic loader and time zones read; nothing about users
_PROBE_SECONDS = 10.0
_STARTED = b"started"
# Runs as `python -I -B -c _BOOTSTRAP FD NPROC COMMAND...` inside the sandbox (the module docstring says why).
_BOOTSTRAP = """\
import os, resource, runpy, sys
fd, nproc, path = sys.argv[1:]
resource.setrlimit(resource.RLIMIT_NPROC, (int(nproc), int(nproc)))
os.write(int(fd), b"started")
os.close(int(fd))
def _from_program(kind, value, tb):
    while tb is not None and tb.tb_frame.f_code.co_filename != path:
        tb = tb.tb_next
    sys.__excepthook__(kind, value.with_traceback(tb), tb)
sys.excepthook = _from_program
sys.argv = [path]
del os, resource, fd, nproc
runpy.run_path(path, run_name="__main__")
"""


@dataclass(frozen=True)
class Bwrap:
    path: str
    version: str  # "bubblewrap 0.8.0"
    options: frozenset[str]  # the options its --help lists: --size and --disable-userns are newer than some

    def knows(self, option: str) -> bool:
        return option in self.options


def find_bwrap() -> Bwrap | str:
    """The bwrap on PATH, or why there is none."""
    path = shutil.which("bwrap")
    if path is None:
        return "bwrap is not installed"
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=_PROBE_SECONDS)
        usage = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=_PROBE_SECONDS)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{path} does not run: {exc}"
    options = frozenset(word for word in usage.stdout.split() if word.startswith("--"))
    return Bwrap(path, version.stdout.strip() or "bubblewrap (unknown version)", options)


def probe(bwrap: Bwrap) -> SandboxFailed | None:
    """Run a real program the way /run and eval do: this interpreter, in the sandbox, printing a token made
    now. None when the token came back; else what went wrong and how to fix it."""
    token = secrets.token_hex(16)
    try:
        done = run_in_bwrap(bwrap, f"print({token!r})", Limits(seconds=_PROBE_SECONDS))
    except SandboxFailed as failed:
        return failed
    if done.stdout.strip() != token:
        said = (done.stderr.strip().splitlines() or [done.killed_reason or f"exit status {done.exit_code}"])[-1]
        return SandboxFailed(f"a test program started but did not print its token ({said})", _REPORT_HINT)
    return None


def run_in_bwrap(
    bwrap: Bwrap, source: str, limits: Limits, stdin: str = "", converse: Conversation | None = None
) -> RunResult:
    """Run `source` in the sandbox; SandboxFailed where the sandbox could not start it."""
    as_root = os.geteuid() == 0
    roots = python_roots()
    sources = stage_dirs(len(roots)) if as_root else roots
    scratch = scratch_point() if scratch_works(as_root) else None
    started_read, started_write = os.pipe()
    os.set_blocking(started_read, False)
    command = [sys.executable, "-I", "-B", "-c", _BOOTSTRAP, str(started_write), str(NPROC_LIMIT), PROGRAM]
    try:
        with _Inputs(source) as inputs:
            argv = bwrap_argv(bwrap, inputs.program_fd, inputs.seccomp_fd, list(zip(sources, roots, strict=True)),
                              command, scratch)  # fmt: skip
            steps = [mount_scratch(as_root, scratch)] if scratch else []
            steps += [leave_root(roots, sources)] if as_root else []
            setup = _in_turn(steps) if steps else None
            fds = (*inputs.fds, started_write)
            try:
                result = run_process(argv, "/", {}, limits, stdin, fds, setup, signal_exit_codes=True, nproc=None,
                                     converse=converse)  # fmt: skip
            except (OSError, subprocess.SubprocessError) as exc:  # bwrap gone, or leaving root failed
                raise _start_failure(exc) from None
        os.close(started_write)
        started_write = -1
        if not _read_all(started_read).startswith(_STARTED):
            raise _bwrap_failure(result, limits)
    finally:
        os.close(started_read)
        if started_write >= 0:
            os.close(started_write)
    held = ["bwrap", *(["seccomp"] if seccomp.supported() else []), f"nproc {NPROC_LIMIT} per run"]
    held += [] if scratch else ["tmp without inode cap"]
    return RunResult(**{**result.__dict__, "sandbox": [*held, *result.sandbox]})


def _in_turn(steps: list[ChildSetup]) -> ChildSetup:
    return lambda: [held for step in steps for held in step()]


_REPORT_HINT = "run `localcoder doctor`, and report it with what it prints"


def _start_failure(exc: BaseException) -> SandboxFailed:
    if isinstance(exc, FileNotFoundError):
        return SandboxFailed(f"bwrap is gone ({exc})", INSTALL_HINT)
    if isinstance(exc, OSError) and exc.errno in (11, 12):  # EAGAIN, ENOMEM: no process could be made
        return SandboxFailed(f"no new process ({exc.strerror})", LIMIT_HINT)
    return SandboxFailed(f"starting bwrap failed ({exc})", _REPORT_HINT)


def _bwrap_failure(result: RunResult, limits: Limits) -> SandboxFailed:
    """Why a run whose bootstrap never spoke failed: from what bwrap printed (the program never ran, so all of
    stderr is bwrap's or the bootstrap's)."""
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    said = lines[-1] if lines else result.killed_reason or f"bwrap exited with status {result.exit_code}"
    if result.timed_out:
        return SandboxFailed(f"python did not start within {limits.seconds:g} s", "the machine is overloaded:"
                             " run fewer at once (eval --workers) or allow more time")  # fmt: skip
    if "execvp" in said or "No such file or directory" in said:
        roots = ", ".join(python_roots())
        return SandboxFailed(f"{said} (the interpreter {sys.executable} is not visible inside it)",
                             f"the sandbox shows {roots} and /usr; use a Python (or virtual environment) whose"
                             " files all lie there")  # fmt: skip
    if "Resource temporarily unavailable" in said or "Cannot allocate memory" in said:
        return SandboxFailed(said, LIMIT_HINT)
    if any(word in said for word in ("uid map", "ermission", "not permitted", "namespace")):
        return SandboxFailed(said, REFUSED_HINT)
    return SandboxFailed(said, _REPORT_HINT)


def _read_all(fd: int) -> bytes:
    try:
        return os.read(fd, 64)
    except BlockingIOError:
        return b""


def bwrap_argv(
    bwrap: Bwrap,
    program_fd: int,
    seccomp_fd: int | None,
    python_binds: list[tuple[str, str]],
    command: list[str],
    scratch: str | None = None,
) -> list[str]:
    """The whole bwrap command line; the module docstring says what each part is for.

    scratch: where the child mounted the run's bounded tmpfs (scratch.py), bound in as /tmp and /dev/shm; None:
    bwrap's own tmpfs mounts, bounded in bytes only.
    Order matters: bwrap mounts in argument order, so the fresh /tmp comes before the Python directories (one of
    them may live under /tmp) and the program's file after both.
    """
    argv = [bwrap.path, "--unshare-all", "--unshare-user"]
    if bwrap.knows("--disable-userns"):
        argv.append("--disable-userns")
    argv += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    argv += ["--uid", _SANDBOX_ID, "--gid", _SANDBOX_ID, "--hostname", "sandbox"]
    argv += ["--clearenv"]
    for name, value in _environment().items():
        argv += ["--setenv", name, value]
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in _TOP_LEVEL:
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    for path in _ETC:
        argv += ["--ro-bind-try", path, path]
    argv += ["--dev", "/dev"]
    if scratch:
        argv += ["--bind", f"{scratch}/shm", "/dev/shm", "--bind", f"{scratch}/tmp", "/tmp"]
    else:
        argv += [*_sized(bwrap, _SHM_BYTES), "--tmpfs", "/dev/shm"]
        argv += [*_sized(bwrap, _TMP_BYTES), "--tmpfs", "/tmp"]
    for source, root in python_binds:
        argv += ["--ro-bind", source, root]
    argv += ["--dir", WORKDIR, "--file", str(program_fd), PROGRAM]
    argv += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", WORKDIR]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return [*argv, "--", *command]


def python_problem() -> str | None:
    """A Python installation that would take the home directory, all of /, the host's /tmp or the program's
    working directory into the sandbox is refused."""
    home = os.path.realpath(os.path.expanduser("~"))
    for root in python_roots():
        if root == "/" or home == root or home.startswith(root.rstrip(os.sep) + os.sep):
            return f"this Python's directory {root} holds your home directory, which the sandbox must not show"
        if root == "/tmp" or root == WORKDIR or root == "/dev" or root.startswith("/dev/"):
            return f"this Python's directory {root} is where the sandbox makes its own files"
    return None


def _environment() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": WORKDIR, "TMPDIR": "/tmp", "LANG": "C.UTF-8", "USER": "sandbox"}


def _sized(bwrap: Bwrap, size: int) -> list[str]:
    return ["--size", str(size)] if bwrap.knows("--size") else []


class _Inputs:
    """The program and the seccomp filter as memfds for bwrap to read (it closes them before the program runs)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.program_fd = -1
        self.seccomp_fd: int | None = None

    @property
    def fds(self) -> tuple[int, ...]:
        return (self.program_fd,) if self.seccomp_fd is None else (self.program_fd, self.seccomp_fd)

    def __enter__(self) -> _Inputs:
        self.program_fd = _memfd("main.py", self.source.encode("utf-8"))
        if seccomp.supported():
            self.seccomp_fd = _memfd("seccomp", seccomp.sandbox_filter())
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self.fds:
            if fd >= 0:
                os.close(fd)


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
