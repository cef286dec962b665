"""Run a generated Python program inside the operating system's sandbox, for `/run` and for evaluation.

The boundary is the OS's, never the interpreter's: on Linux bubblewrap (linux.py: namespaces, a read-only view
of only what Python needs, no network, a seccomp filter against new processes), on macOS sandbox-exec
(macos.py). Both add the rlimits and the process-group kill of process.py.

Where there is no OS sandbox (bwrap missing or refused by the kernel, or another system), run_program refuses
with SandboxUnavailable. With unsafe_no_sandbox=True (the user's `--unsafe-no-sandbox`) the program runs
without the OS sandbox, whether there is one or not: as the user, with only the limits and a guard against
accidents (unsafe.py).
Whether the sandbox works is found out by running a real program in it (this interpreter, printing a token made
at run time), remembered once it worked and asked again while it does not: a passing failure (a process limit
reached for a moment) must not leave a long eval believing there is no sandbox. A run the sandbox could not start
raises SandboxFailed, with the cause and its fix: it is no result of the program, so eval stops rather than score
it, and /run says what to do.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass

from localcoder.errors import LocalcoderError
from localcoder.sandbox.process import Channel, Conversation, Limits, RunResult

__all__ = ["Channel", "Conversation", "Limits", "RunResult",
           "SandboxFailed", "SandboxStatus", "SandboxUnavailable", "require", "run_program",
           "status"]  # fmt: skip


@dataclass(frozen=True)
class SandboxStatus:
    kind: str | None  # "bwrap", "sandbox-exec", or None when there is no OS sandbox
    detail: str  # "bubblewrap 0.8.0 (/usr/bin/bwrap)", or why there is none
    hint: str = ""  # what to install when there is none

    @property
    def available(self) -> bool:
        return self.kind is not None


class SandboxUnavailable(LocalcoderError):
    """No OS sandbox to run generated code in, and the user did not pass --unsafe-no-sandbox."""


class SandboxFailed(LocalcoderError):
    """The sandbox could not start the program: no result of the program, and never to be scored as one."""

    def __init__(self, cause: str, hint: str) -> None:
        super().__init__(f"the sandbox could not start the program: {cause}; {hint}")
        self.cause = cause
        self.hint = hint


_working: tuple[SandboxStatus, object] | None = None  # the sandbox found working; a failure is never kept
_lock = threading.Lock()


def _detect() -> tuple[SandboxStatus, object]:
    """The status and what runs programs (a linux.Bwrap, or None): probed until it works, then remembered."""
    global _working
    with _lock:
        if _working is None:
            found = _probe()
            if found[0].available:
                _working = found
            return found
        return _working


def _forget() -> None:
    """Probe again on the next call (tests; a user who just installed bwrap in a long-lived process)."""
    global _working
    with _lock:
        _working = None


def _probe() -> tuple[SandboxStatus, object]:
    if sys.platform.startswith("linux"):
        from localcoder.sandbox import linux

        found = linux.find_bwrap()
        if isinstance(found, str):
            return SandboxStatus(None, found, linux.INSTALL_HINT), None
        problem = linux.python_problem()
        if problem:
            return SandboxStatus(None, problem, "use a Python (or virtual environment) outside it"), None
        failed = linux.probe(found)
        if failed:
            return SandboxStatus(None, f"{found.version} ({found.path}): {failed.cause}", failed.hint), None
        return SandboxStatus("bwrap", f"{found.version} ({found.path})"), found
    if sys.platform == "darwin":
        from localcoder.sandbox import macos

        problem = macos.available()
        if problem:
            return SandboxStatus(None, problem, "sandbox-exec ships with macOS; is /usr/bin/sandbox-exec there?"), None
        return SandboxStatus("sandbox-exec", f"{macos.SANDBOX_EXEC} (profile not tested by localcoder's CI)"), None
    return SandboxStatus(None, f"no OS sandbox for {sys.platform}", "use Linux (or WSL) with bubblewrap"), None


def status() -> SandboxStatus:
    """Which OS sandbox this machine has (kept once it works: `status.cache_clear()` probes again)."""
    return _detect()[0]


status.cache_clear = _forget  # type: ignore[attr-defined]


def require(unsafe_no_sandbox: bool = False) -> None:
    """Raise SandboxUnavailable, a one-line error naming what to install, unless there is a sandbox or the user
    chose to go without."""
    found = status()
    if not found.available and not unsafe_no_sandbox:
        raise SandboxUnavailable(
            f"no OS sandbox to run generated code in ({found.detail}); {found.hint},"
            " or pass --unsafe-no-sandbox to run it unconfined as yourself"
        )


def run_program(
    source: str,
    limits: Limits = Limits(),
    stdin: str = "",
    unsafe_no_sandbox: bool = False,
    converse: Conversation | None = None,
) -> RunResult:
    """Run `source` as a Python program in the OS sandbox under `limits`.

    unsafe_no_sandbox: run it without the OS sandbox, unconfined as the user (see unsafe.py).
    converse: talk with the program while it runs, over its stdin and stdout, instead of writing `stdin`.
    Raises SandboxUnavailable where there is no sandbox, SandboxFailed where it could not start this program.
    """
    if unsafe_no_sandbox:
        from localcoder.sandbox.unsafe import run_unconfined

        return run_unconfined(source, limits, stdin, converse)
    require()
    found, runner = _detect()
    if found.kind == "bwrap":
        from localcoder.sandbox.linux import run_in_bwrap

        return run_in_bwrap(runner, source, limits, stdin, converse)  # type: ignore[arg-type]
    if found.kind == "sandbox-exec":
        from localcoder.sandbox.macos import run_in_sandbox_exec

        return run_in_sandbox_exec(source, limits, stdin, converse)
    raise AssertionError(f"unknown sandbox {found.kind!r}")
