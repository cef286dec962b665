"""Run a generated Python program inside the operating system's sandbox, for `/run` and for evaluation.

The boundary is the OS's, never the interpreter's: on Linux bubblewrap (linux.py: namespaces, a read-only view
of only what Python needs, no network, a seccomp filter against new processes), on macOS sandbox-exec
(macos.py). Both add the rlimits and the process-group kill of process.py.

Where there is no OS sandbox (bwrap missing or refused by the kernel, or another system), run_program refuses
with SandboxUnavailable. With unsafe_no_sandbox=True (the user's `--unsafe-no-sandbox`) the program runs
without the OS sandbox, whether there is one or not: as the user, with only the limits and a guard against
accidents (unsafe.py).
Whether the sandbox works is found out once per process, by running a trivial program in it.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass

from localcoder.errors import LocalcoderError
from localcoder.sandbox.process import Limits, RunResult

__all__ = ["Limits", "RunResult", "SandboxStatus", "SandboxUnavailable", "require", "run_program", "status"]


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


@functools.cache
def _detect() -> tuple[SandboxStatus, object]:
    """The status and what runs programs (a linux.Bwrap, or None); probed once per process."""
    if sys.platform.startswith("linux"):
        from localcoder.sandbox import linux

        found = linux.find_bwrap()
        if isinstance(found, str):
            return SandboxStatus(None, found, linux.INSTALL_HINT), None
        problem = linux.python_problem()
        if problem:
            return SandboxStatus(None, problem, "use a Python (or virtual environment) outside it"), None
        problem = linux.probe(found)
        if problem:
            return SandboxStatus(None, f"{found.version} ({found.path}): {problem}", linux.REFUSED_HINT), None
        return SandboxStatus("bwrap", f"{found.version} ({found.path})"), found
    if sys.platform == "darwin":
        from localcoder.sandbox import macos

        problem = macos.available()
        if problem:
            return SandboxStatus(None, problem, "sandbox-exec ships with macOS; is /usr/bin/sandbox-exec there?"), None
        return SandboxStatus("sandbox-exec", f"{macos.SANDBOX_EXEC} (profile not tested by localcoder's CI)"), None
    return SandboxStatus(None, f"no OS sandbox for {sys.platform}", "use Linux (or WSL) with bubblewrap"), None


def status() -> SandboxStatus:
    """Which OS sandbox this machine has (cached for the process: `status.cache_clear()` probes again)."""
    return _detect()[0]


status.cache_clear = _detect.cache_clear  # type: ignore[attr-defined]


def require(unsafe_no_sandbox: bool = False) -> None:
    """Raise SandboxUnavailable, a one-line error naming what to install, unless there is a sandbox or the user
    chose to go without."""
    found = status()
    if not found.available and not unsafe_no_sandbox:
        raise SandboxUnavailable(
            f"no OS sandbox to run generated code in ({found.detail}); {found.hint},"
            " or pass --unsafe-no-sandbox to run it unconfined as yourself"
        )


def run_program(source: str, limits: Limits = Limits(), stdin: str = "", unsafe_no_sandbox: bool = False) -> RunResult:
    """Run `source` as a Python program in the OS sandbox under `limits`.

    unsafe_no_sandbox: run it without the OS sandbox, unconfined as the user (see unsafe.py).
    """
    if unsafe_no_sandbox:
        from localcoder.sandbox.unsafe import run_unconfined

        return run_unconfined(source, limits, stdin)
    require()
    found, runner = _detect()
    if found.kind == "bwrap":
        from localcoder.sandbox.linux import run_in_bwrap

        return run_in_bwrap(runner, source, limits, stdin)  # type: ignore[arg-type]
    if found.kind == "sandbox-exec":
        from localcoder.sandbox.macos import run_in_sandbox_exec

        return run_in_sandbox_exec(source, limits, stdin)
    raise AssertionError(f"unknown sandbox {found.kind!r}")
