"""Start one program under the rlimits, collect its capped output, kill its process group at the end.

This is the part every way of running a program shares: bwrap, sandbox-exec and the unconfined fallback
each build an argv and hand it here.
"""

from __future__ import annotations

import math
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

FILE_SIZE_LIMIT = 64 << 20
# Processes and threads a program may have. Where it is set before the program starts (the unconfined path) it
# counts every process of the user; bwrap's runs set it inside their own user namespace instead, where the kernel
# (5.14 and later) counts each run's processes apart from the user's others (linux.py says how).
NPROC_LIMIT = 256
# Open files, sockets and pipes at once. Each descriptor can pin kernel memory that RLIMIT_AS does not see: an
# AF_UNIX socket pair holds about 230 KiB of queued data, so with the host's 20,000 descriptors a program held
# 1.5 GB past a 256 MiB limit. With 64, 30 pairs held 7 MB (descriptors in flight in Unix sockets count against
# the same limit); CPython and numpy need fewer than ten.
OPEN_FILES_LIMIT = 64
_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Limits:
    seconds: float = 10.0  # wall-clock limit
    memory_mb: int = 1024  # address-space limit (RLIMIT_AS) where the OS allows
    output_bytes: int = 1 << 20  # stdout/stderr are cut beyond this


@dataclass(frozen=True)
class RunResult:
    stdout: str
    stderr: str
    exit_code: int | None  # None when killed by a signal
    timed_out: bool
    killed_reason: str | None  # "time limit", "memory limit", "cpu time limit", "file size limit", ...
    seconds: float
    sandbox: list[str]  # protections in force, e.g. ["bwrap", "no-new-processes(seccomp)", "rlimits", ...]


# In the child, after the rlimits and before exec: returns the names of what else it put in force.
ChildSetup = Callable[[], list[str]]


class Channel:
    """A conversation with the running program over its stdin and stdout, a line at a time, within the run's time
    limit (eval asks the program for its function's answers this way: execution.py)."""

    def __init__(self, stdin, lines: queue.Queue, deadline: float) -> None:
        self._stdin = stdin
        self._lines = lines
        self.deadline = deadline  # time.monotonic() at which the run's time is up
        if os.name == "posix":  # a program that stops reading must not hold the writer past the deadline
            os.set_blocking(stdin.fileno(), False)

    def send(self, line: bytes) -> bool:
        """Write one line to the program; False when it no longer reads (exited, closed its stdin, or did not
        take the line before the time was up)."""
        data = line + b"\n"
        try:
            if os.name != "posix":
                self._stdin.write(data)
                self._stdin.flush()
                return True
            while data:
                remaining = self.deadline - time.monotonic()
                if remaining <= 0 or not select.select([], [self._stdin], [], remaining)[1]:
                    return False
                try:
                    data = data[os.write(self._stdin.fileno(), data) :]
                except BlockingIOError:
                    continue
            return True
        except (OSError, ValueError):
            return False

    def receive(self) -> bytes | None:
        """The program's next line of output, without its newline; None at its end or when the time is up."""
        try:
            return self._lines.get(timeout=max(0.0, self.deadline - time.monotonic()))
        except queue.Empty:
            return None


Conversation = Callable[[Channel], None]


def run_process(
    argv: list[str],
    cwd: str,
    env: dict[str, str],
    limits: Limits,
    stdin: str,
    pass_fds: Sequence[int] = (),
    child_setup: ChildSetup | None = None,
    signal_exit_codes: bool = False,
    nproc: int | None = NPROC_LIMIT,
    converse: Conversation | None = None,
) -> RunResult:
    """Start argv in its own process group under the OS limits, collect capped output, kill the group at the end.

    signal_exit_codes: the program's exit status comes through a supervisor (bwrap) that reports a death by
    signal N as exit code 128 + N; read it back as that signal.
    nproc: RLIMIT_NPROC for the child, or None to leave it as it is (the caller bounds processes another way).
    converse: instead of writing `stdin`, talk with the program while it runs (its stdout still comes back whole);
    its stdin is closed when the conversation returns.
    """
    posix = os.name == "posix"
    status_read, status_write = os.pipe() if posix else (None, None)
    popen_options = (
        {"start_new_session": True, "preexec_fn": _child_setup(limits, status_write, child_setup, nproc)}
        if posix
        else {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
    )
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=tuple(pass_fds), **popen_options,
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
    lines: queue.Queue | None = queue.Queue() if converse else None
    threads = [
        threading.Thread(target=_drain, args=(proc.stdout, stdout, limits.output_bytes, lines), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, stderr, limits.output_bytes), daemon=True),
    ]
    if converse is None:
        threads.append(threading.Thread(target=_feed, args=(proc.stdin, stdin.encode()), daemon=True))
    for thread in threads:
        thread.start()
    if converse is not None and lines is not None:
        try:
            converse(Channel(proc.stdin, lines, start + limits.seconds))
        finally:
            _feed(proc.stdin, b"")
    timed_out = False
    try:
        proc.wait(timeout=max(0.0, start + limits.seconds - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
    kill_group(proc)  # also after a normal exit: forks left behind must not outlive the run
    elapsed = time.monotonic() - start
    try:
        proc.wait(timeout=_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    for thread in threads:
        thread.join(timeout=_GRACE_SECONDS)  # a process that escaped the group may hold the pipes open

    code = proc.returncode
    if signal_exit_codes and code is not None and code > 128 and code - 128 in signal.valid_signals():
        code = -(code - 128)
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


def _child_setup(limits: Limits, status_fd: int, then: ChildSetup | None, nproc: int | None):
    """The preexec_fn: runs in the forked child before exec, so it must not raise; it reports what held."""
    import resource

    wanted = [
        (resource.RLIMIT_AS, limits.memory_mb << 20),
        (resource.RLIMIT_CPU, math.ceil(limits.seconds) + 1),
        (resource.RLIMIT_FSIZE, FILE_SIZE_LIMIT),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, OPEN_FILES_LIMIT),
        *([(resource.RLIMIT_NPROC, nproc)] if nproc is not None else []),
    ]

    def setup() -> None:
        held = []
        failed = 0
        for which, value in wanted:
            try:
                resource.setrlimit(which, rlimit_pair(which, value, resource.getrlimit(which)[1]))
            except (OSError, ValueError):
                failed += 1
        held.append("rlimits" if not failed else "rlimits(partial)")
        if then is not None:
            held += then()
        os.write(status_fd, ",".join(held).encode())

    return setup


def rlimit_pair(which: int, value: int, hard: int) -> tuple[int, int]:
    """(soft, hard) for a limit of `value` under the present hard limit `hard`: the hard limit is never left
    unlimited, so the program cannot raise its soft limit past ours. CPU time keeps one second between the two,
    so that the kernel's SIGXCPU at the soft limit names the cause before its SIGKILL at the hard one."""
    import resource

    soft = value if hard == resource.RLIM_INFINITY else min(value, hard)
    if which != resource.RLIMIT_CPU:
        return soft, soft
    return soft, soft + 1 if hard == resource.RLIM_INFINITY else min(hard, soft + 1)


def _drain(stream, buffer: bytearray, cap: int, lines: queue.Queue | None = None) -> None:
    # Keep reading past the cap so that the program never blocks on a full pipe; just stop keeping it.
    pending = b""
    while chunk := stream.read1(65536):
        if len(buffer) < cap:
            buffer.extend(chunk[: cap - len(buffer)])
        if lines is not None:
            *complete, pending = (pending + chunk).split(b"\n")
            for line in complete:
                lines.put(line)
            pending = pending[:cap]
    if lines is not None:
        lines.put(None)
    stream.close()


def _feed(stream, data: bytes) -> None:
    try:
        stream.write(data)
        stream.close()
    except OSError:  # the program exited or closed stdin without reading it all
        pass


def kill_group(proc: subprocess.Popen) -> None:
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


def minimal_env(workdir: str) -> dict[str, str]:
    """What a program is given of the environment: nothing of the user's, so no secret in a variable leaks."""
    env = {"PATH": os.defpath, "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"}
    if sys.platform == "win32":
        # Windows needs SYSTEMROOT for sockets and random numbers; TEMP is what tempfile reads there.
        env.update({k: v for k, v in os.environ.items() if k.upper() in ("SYSTEMROOT", "WINDIR")})
        env.update({"TEMP": workdir, "TMP": workdir, "USERPROFILE": workdir})
    return env


def python_roots() -> list[str]:
    """The directories of this interpreter and its virtual environment outside /usr, outermost first."""
    found = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    found.add(str(Path(os.path.realpath(sys.executable)).parent.parent))
    roots: list[str] = []
    for path in sorted(os.path.realpath(p) for p in found):
        inside_usr = path == "/usr" or path.startswith("/usr/")
        if not inside_usr and not any(path == r or path.startswith(r + os.sep) for r in roots):
            roots.append(path)
    return roots
