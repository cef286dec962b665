"""`--unsafe-no-sandbox`: the program runs as you, unconfined by the OS, with limits and a guard against accidents.

This is what localcoder did before it used the OS sandbox, kept for machines that have none, and only when the
user asks for it by name. What holds:

- a fresh temporary working directory (removed afterwards), a minimal environment and `python -I -B`;
- a new session / process group, killed as a whole at the time limit and after the program exits;
- the rlimits (address space, CPU seconds, file size, no core files, process count; RLIMIT_NPROC does not bind
  root, and macOS ignores RLIMIT_AS);
- on Linux a new network namespace where the kernel allows it, so not even loopback is reachable;
- a guard: an audit hook that refuses writes and deletions outside the working directory, sockets, child
  processes and ctypes. It stops accidents in honest generated code. It is NOT a boundary: a program can walk
  around a guard in its own interpreter (re-import `_posixsubprocess`, ctypes into libc, `dir_fd`, mknod...),
  and then read and write whatever you can and reach the network.

Inside bwrap or sandbox-exec the guard is not used: the OS boundary refuses the same things for every way of
asking, and a guard there would only hide from the tests whether the boundary holds.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from localcoder.sandbox.process import Conversation, Limits, RunResult, minimal_env, run_process

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000

# Runs in the child as `python -I -B -c _BOOTSTRAP <workdir> <program>`; imports all it needs up front
# so that the hook never triggers an import of its own.
_BOOTSTRAP = r"""
import builtins, os, sys
import _posixsubprocess
workdir, program = os.path.realpath(sys.argv[1]), sys.argv[2]
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
    elif event in NET_EVENTS:
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


def run_unconfined(source: str, limits: Limits, stdin: str = "", converse: Conversation | None = None) -> RunResult:
    """Run `source` in a fresh working directory under `limits` and the guard, without an OS sandbox."""
    workdir = tempfile.mkdtemp(prefix="localcoder-run-")
    try:
        program = os.path.join(workdir, "main.py")
        with open(program, "w", encoding="utf-8") as f:
            f.write(source)
        argv = [sys.executable, "-I", "-B", "-c", _BOOTSTRAP, workdir, program]
        result = run_process(argv, workdir, minimal_env(workdir), limits, stdin, child_setup=_network_namespace(),
                             converse=converse)  # fmt: skip
        return RunResult(**{**result.__dict__, "sandbox": ["NO OS SANDBOX", "tempdir", *result.sandbox, "guard"]})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _network_namespace():
    """In the child before exec: a new network namespace where the kernel allows one (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # loaded in the parent: a forked child should not have to look up libraries

    libc = ctypes.CDLL(None, use_errno=True)
    attempts = [_CLONE_NEWUSER | _CLONE_NEWNET]
    if os.geteuid() == 0:
        attempts.insert(0, _CLONE_NEWNET)

    def unshare() -> list[str]:
        return ["no-network(netns)"] if any(libc.unshare(flags) == 0 for flags in attempts) else []

    return unshare
