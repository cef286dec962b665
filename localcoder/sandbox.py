"""Run a generated Python program with limits, for `/run` and for benchmark evaluation.

Layers, from strongest to weakest, and where each holds:

- A fresh temporary working directory (removed afterwards), a minimal environment and `python -I -B`: everywhere.
- A new session / process group, killed as a whole at the time limit and after the program exits: POSIX. A process
  that calls setsid() itself leaves the group; the guard below keeps the program from starting one at all.
- rlimits (address space, CPU seconds, file size, no core files, process count): POSIX; macOS ignores RLIMIT_AS.
  RLIMIT_NPROC counts all processes of the user and does not bind root, so as root a fork bomb is held only by the
  guard, the group kill and the time limit.
- No network: on Linux a new network namespace (CLONE_NEWNET as root, CLONE_NEWUSER|CLONE_NEWNET otherwise) where
  the kernel allows it, so not even loopback is reachable.
- A guard: an audit hook, installed before the program runs, that refuses writes and deletions outside the working
  directory, sockets when the network is off, child processes and ctypes (loading a library or looking up a symbol;
  `import ctypes` itself is allowed, numpy needs it). Audit hooks cannot be removed, but the guard
  is NOT a security boundary against a determined attacker (e.g. `os.open(..., dir_fd=...)` with a relative path, or
  C extensions, get past it); it stops accidents in honest generated code. The OS layers are the boundary where
  available, and `RunResult.sandbox` says which were in force.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

_FILE_SIZE_LIMIT = 64 << 20
_NPROC_LIMIT = 256  # per user, not per run: leaves room for the user's own processes while stopping a fork bomb
_GRACE_SECONDS = 5.0
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class Limits:
    seconds: float = 10.0  # wall-clock limit
    memory_mb: int = 1024  # address-space limit (RLIMIT_AS) where the OS allows
    output_bytes: int = 1 << 20  # stdout/stderr are cut beyond this
    network: bool = False


@dataclass(frozen=True)
class RunResult:
    stdout: str
    stderr: str
    exit_code: int | None  # None when killed by a signal
    timed_out: bool
    killed_reason: str | None  # "time limit", "memory limit", "cpu time limit", "file size limit", ...
    seconds: float
    sandbox: list[str]  # protections in force, e.g. ["tempdir", "rlimits", "no-network(netns)", "guard"]


# Runs in the child as `python -I -B -c _BOOTSTRAP <workdir> <program> <network 0|1>`; imports all it needs up front
# so that the hook never triggers an import of its own.
_BOOTSTRAP = r"""
import builtins, os, sys
import _posixsubprocess
workdir, program, network = os.path.realpath(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
# event -> (indices of path arguments, index of their dir_fd or None)
PATH_EVENTS = {
    "os.remove": ((0,), 1), "os.rmdir": ((0,), 1), "os.mkdir": ((0,), 2), "os.chmod": ((0,), 2),
    "os.chown": ((0,), 3), "os.utime": ((0,), 3), "os.truncate": ((0,), None), "os.chflags": ((0,), None),
    "os.lchflags": ((0,), None), "os.setxattr": ((0,), None), "os.removexattr": ((0,), None),
    "os.symlink": ((1,), 2), "os.rename": ((0, 1), 2), "os.link": ((0, 1), 2),
    "shutil.rmtree": ((0,), 1), "shutil.move": ((0, 1), None),
}
PROCESS_EVENTS = {"os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "os.startfile",
                  "subprocess.Popen", "_winapi.CreateProcess", "pty.spawn", "ctypes.dlopen", "ctypes.dlsym"}
NET_EVENTS = {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
              "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo"}

def inside(path, dir_fd):
    if isinstance(path, int):
        return True  # an already open descriptor
    path = os.fsdecode(path)
    if not os.path.isabs(path) and isinstance(dir_fd, int) and dir_fd >= 0:
        try:
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        except OSError:
            return False
    real = os.path.realpath(path)
    return real == workdir or real.startswith(workdir + os.sep)

def guard(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (flags or 0) & WRITE_FLAGS
        if writing and not inside(path, None):
            raise PermissionError(f"sandbox: writing {path!r} outside the working directory")
    elif event in PATH_EVENTS:
        indices, fd_index = PATH_EVENTS[event]
        dir_fd = args[fd_index] if fd_index is not None and fd_index < len(args) else None
        for i in indices:
            if not inside(args[i], dir_fd):
                raise PermissionError(f"sandbox: {event} on {args[i]!r} outside the working directory")
    elif event == "ctypes.dlopen" and args[0] is None:
        pass  # `import ctypes` opens the interpreter itself (numpy imports ctypes); symbol lookups stay refused
    elif event in PROCESS_EVENTS:
        raise PermissionError(f"sandbox: {event} is not allowed")
    elif event in ("os.kill", "os.killpg") and args[0] not in (0, os.getpid()):
        raise PermissionError(f"sandbox: {event} of another process is not allowed")
    elif event in NET_EVENTS and not network:
        raise PermissionError(f"sandbox: {event} is not allowed without network")

def no_fork_exec(*args, **kwargs):
    raise PermissionError("sandbox: starting a process is not allowed")

_posixsubprocess.fork_exec = no_fork_exec  # multiprocessing calls it directly, without an audit event
sys.addaudithook(guard)
sys.argv = [program]
sys.path.insert(0, workdir)
with open(program, encoding="utf-8") as f:
    code = compile(f.read(), program, "exec")
exec(code, {"__name__": "__main__", "__file__": program, "__builtins__": builtins})
"""


def run_program(source: str, limits: Limits = Limits(), stdin: str = "", python: str = sys.executable) -> RunResult:
    """Run `source` as a Python program in a fresh working directory under `limits`."""
    workdir = tempfile.mkdtemp(prefix="localcoder-run-")
    try:
        program = os.path.join(workdir, "main.py")
        with open(program, "w", encoding="utf-8") as f:
            f.write(source)
        argv = [python, "-I", "-B", "-c", _BOOTSTRAP, workdir, program, "1" if limits.network else "0"]
        result = _run_process(argv, workdir, _minimal_env(workdir), limits, stdin)
        return RunResult(**{**result.__dict__, "sandbox": ["tempdir", *result.sandbox, "guard"]})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _minimal_env(workdir: str) -> dict[str, str]:
    env = {"PATH": os.defpath, "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"}
    if os.name == "nt":
        # Windows needs SYSTEMROOT for sockets and random numbers; TEMP is what tempfile reads there.
        env.update({k: v for k, v in os.environ.items() if k.upper() in ("SYSTEMROOT", "WINDIR")})
        env.update({"TEMP": workdir, "TMP": workdir, "USERPROFILE": workdir})
    return env


def _run_process(argv: list[str], cwd: str, env: dict[str, str], limits: Limits, stdin: str) -> RunResult:
    """Start argv in its own process group under the OS limits, collect capped output, kill the group at the end."""
    posix = os.name == "posix"
    status_read, status_write = os.pipe() if posix else (None, None)
    popen_options = (
        {"start_new_session": True, "preexec_fn": _child_setup(limits, status_write)}
        if posix
        else {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
    )
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            **popen_options,
        )  # fmt: skip
    finally:
        if posix:
            os.close(status_write)
    sandbox = []
    if posix:
        # The child wrote its status before exec; exec closed its end, so this read ends at once.
        with os.fdopen(status_read, "rb") as status:
            sandbox = [s for s in status.read().decode().split(",") if s]
        sandbox.insert(0, "process-group")

    stdout, stderr = bytearray(), bytearray()
    threads = [
        threading.Thread(target=_drain, args=(proc.stdout, stdout, limits.output_bytes), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, stderr, limits.output_bytes), daemon=True),
        threading.Thread(target=_feed, args=(proc.stdin, stdin.encode()), daemon=True),
    ]
    for thread in threads:
        thread.start()
    timed_out = False
    try:
        proc.wait(timeout=limits.seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
    _kill_group(proc)  # also after a normal exit: forks left behind must not outlive the run
    elapsed = time.monotonic() - start
    try:
        proc.wait(timeout=_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    for thread in threads:
        thread.join(timeout=_GRACE_SECONDS)  # a process that escaped the group may hold the pipes open

    code = proc.returncode
    err_text = stderr.decode("utf-8", errors="replace")
    return RunResult(
        stdout=stdout.decode("utf-8", errors="replace"),
        stderr=err_text,
        exit_code=None if timed_out or code is None or code < 0 else code,
        timed_out=timed_out,
        killed_reason=_killed_reason(timed_out, code, err_text),
        seconds=elapsed,
        sandbox=sandbox,
    )


def _child_setup(limits: Limits, status_fd: int):
    """The preexec_fn: runs in the forked child before exec, so it must not raise; it reports what held."""
    import ctypes  # loaded in the parent: a forked child should not have to look up libraries
    import resource

    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    cpu = math.ceil(limits.seconds) + 1
    wanted = [
        (resource.RLIMIT_AS, limits.memory_mb << 20),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_FSIZE, _FILE_SIZE_LIMIT),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, _NPROC_LIMIT),
    ]
    unshare_attempts = (
        [_CLONE_NEWNET, _CLONE_NEWUSER | _CLONE_NEWNET] if os.geteuid() == 0 else [_CLONE_NEWUSER | _CLONE_NEWNET]
    )

    def setup() -> None:
        held = []
        failed = 0
        for which, value in wanted:
            try:
                _, hard = resource.getrlimit(which)
                soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
                resource.setrlimit(which, (soft, soft if which != resource.RLIMIT_CPU else min(hard, soft + 1)))
            except (OSError, ValueError):
                failed += 1
        held.append("rlimits" if not failed else "rlimits(partial)")
        if os.geteuid() != 0 and not failed:
            held.append("nproc")  # binds only for non-root users
        if libc is not None and not limits.network:
            if any(libc.unshare(flags) == 0 for flags in unshare_attempts):
                held.append("no-network(netns)")
        os.write(status_fd, ",".join(held).encode())

    return setup


def _drain(stream, buffer: bytearray, cap: int) -> None:
    # Keep reading past the cap so that the program never blocks on a full pipe; just stop keeping it.
    while chunk := stream.read1(65536):
        if len(buffer) < cap:
            buffer.extend(chunk[: cap - len(buffer)])
    stream.close()


def _feed(stream, data: bytes) -> None:
    try:
        stream.write(data)
        stream.close()
    except OSError:  # the program exited or closed stdin without reading it all
        pass


def _kill_group(proc: subprocess.Popen) -> None:
    if os.name == "posix":
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    elif proc.poll() is None:
        proc.kill()


def _killed_reason(timed_out: bool, code: int | None, stderr: str) -> str | None:
    if timed_out:
        return "time limit"
    if code is not None and code < 0:
        names = {"SIGXCPU": "cpu time limit", "SIGXFSZ": "file size limit"}
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return names.get(name, f"killed by {name}")
    if code and "MemoryError" in stderr[-2000:]:
        return "memory limit"
    if code and "File too large" in stderr[-2000:]:  # Python ignores SIGXFSZ, so the write fails with EFBIG instead
        return "file size limit"
    return None
