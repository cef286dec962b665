"""macOS: the program runs under `sandbox-exec` with the profile below (Apple's Seatbelt).

It is written to the same rules as the Linux sandbox, but it has NOT been run by this project's tests, which run
on Linux; treat it as a best effort until it has been tried on a Mac. Seatbelt lets the last matching rule win:

- everything not named below stays as the system allows (`allow default`): Python needs more than a short
  list, and the rules that follow take away what matters;
- no network of any kind (`deny network*`: TCP, UDP and Unix sockets, in and out);
- no new processes (`deny process-fork`), as on Linux; signals and process information only for itself;
- no writes anywhere but the working directory (a fresh temporary directory, removed afterwards) and /dev/null;
- nothing of the home directory can be read except this Python's own directories (a pyenv or a virtual
  environment may live there) and the working directory; file metadata stays readable, since Python resolves
  its own path component by component at start-up;
- no Mach services but the few the C library asks for (user names, notifications, logging): those are how
  a process asks other processes, which are not sandboxed, to act for it (opening an application, say).

macOS ignores RLIMIT_AS, so the memory limit does not hold there; the time limit and the process-group kill do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

from localcoder.sandbox.process import Conversation, Limits, RunResult, minimal_env, python_roots, run_process

SANDBOX_EXEC = "/usr/bin/sandbox-exec"
_PROBE_SECONDS = 10.0
_MACH_SERVICES = (
    "com.apple.system.opendirectoryd.libinfo",
    "com.apple.system.notification_center",
    "com.apple.system.logger",
)


def profile(workdir: str, home: str, python_dirs: list[str]) -> str:
    """The Seatbelt profile for one run, with every path quoted as a Scheme string."""
    reads = " ".join(f"(subpath {_quoted(path)})" for path in [workdir, *python_dirs])
    services = " ".join(f"(global-name {_quoted(name)})" for name in _MACH_SERVICES)
    return "\n".join(
        [
            "(version 1)",
            "(allow default)",
            "(deny network*)",
            "(deny process-fork)",
            "(deny signal)",
            "(allow signal (target self))",
            "(deny process-info*)",
            "(allow process-info* (target self))",
            "(deny file-write*)",
            f'(allow file-write* (subpath {_quoted(workdir)}) (literal "/dev/null"))',
            f"(deny file-read* (subpath {_quoted(home)}))",
            "(allow file-read-metadata)",
            f"(allow file-read* {reads})",
            "(deny mach-lookup)",
            f"(allow mach-lookup {services})",
            "",
        ]
    )


def available() -> str | None:
    """None when sandbox-exec runs a trivial program under this profile, else why not."""
    if not os.path.exists(SANDBOX_EXEC):
        return f"{SANDBOX_EXEC} is missing"
    workdir = tempfile.mkdtemp(prefix="localcoder-probe-")
    try:
        done = subprocess.run(
            [SANDBOX_EXEC, "-p", _profile_for(workdir), "/usr/bin/true"],
            capture_output=True, text=True, timeout=_PROBE_SECONDS,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        return f"sandbox-exec failed: {exc}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        return f"sandbox-exec refused: {said[-1] if said else f'exit status {done.returncode}'}"
    return None


def run_in_sandbox_exec(
    source: str, limits: Limits, stdin: str = "", converse: Conversation | None = None
) -> RunResult:
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="localcoder-run-"))  # /var is a link to /private/var
    try:
        program = os.path.join(workdir, "main.py")
        with open(program, "w", encoding="utf-8") as f:
            f.write(source)
        argv = [SANDBOX_EXEC, "-p", _profile_for(workdir), sys.executable, "-I", "-B", program]
        result = run_process(argv, workdir, minimal_env(workdir), limits, stdin, converse=converse)
        return RunResult(**{**result.__dict__, "sandbox": ["sandbox-exec", "tempdir", *result.sandbox]})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _profile_for(workdir: str) -> str:
    return profile(workdir, os.path.realpath(os.path.expanduser("~")), python_roots())


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
