"""Which files git tracks or would track in a repository, asked of git so that no repository-controlled program runs.

A repository is untrusted input: it may arrive with its `.git` in an archive or a shared folder, or as a `.git`
file naming a gitdir elsewhere, and its config can name programs git runs (core.fsmonitor runs one as soon as
git reads the index, which `git ls-files` does; hooks, pagers, transports and credential helpers are others).
git's own notes (gitsecurityboundary(7)) say as much: its guarantees cover a repository's content, not its config
or hooks, and git's ownership check does not help within one user.

The choice: keep asking git (only git knows .gitignore exactly: nested files, negations, info/exclude, the
user's core.excludesFile, tracked files that match an ignore rule), but never let the repository pick a program:

- every program-naming key git might consult for this listing is set on the command line, which outranks every
  config file (core.fsmonitor, core.hooksPath, core.pager, core.editor, core.sshCommand, core.askPass,
  credential.helper, diff.external, protocol.allow), and core.untrackedCache and index writes are off;
- the environment is rebuilt: no GIT_* variable of the caller (GIT_DIR, GIT_CONFIG_PARAMETERS, ...), no system
  config, no optional locks, no terminal prompt, no lazy fetch, no discovery above the root; stdin is /dev/null;
- one listing runs at most GIT_SECONDS, in its own process group (killed whole when late), and in the
  background: a request waits for it only until its own deadline, and a later request takes the answer. A failed
  or late listing is remembered for RETRY_SECONDS, so a gitdir whose HEAD is a FIFO costs one bounded try a
  minute, not a try per keystroke. Until git answers, the repository is read as one without git (walked, with the
  walk bounded by the deadline too).

Without git on the PATH the same fallback applies. git lists a tree of 200,000 untracked files in 0.7-0.9 s here
(2 shared cores): longer than a resident request's 0.3 s, hence the background run and the answer kept for the
next request, sorted by suffix on git's thread (a request never sorts 200,000 names).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

from localcoder.context.deadline import Deadline

GIT_SECONDS = 10.0  # one listing at most; then its process group is killed and the failure remembered
RETRY_SECONDS = 60.0  # a failed or late listing is not tried again for this long
CHUNK = 10_000  # names handled per step while an answer is built (see GitAnswer.of)
POLL_SECONDS = 0.02  # how often a waiting request asks whether its client is still there

# Set on git's command line, which outranks the repository's config: no key the repository sets can name a
# program that this listing runs, and nothing is written into the repository.
HARDENING = (
    "-c", "core.fsmonitor=false",
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.untrackedCache=false",
    "-c", "core.pager=cat",
    "-c", "core.editor=false",
    "-c", "core.sshCommand=false",
    "-c", "core.askPass=",
    "-c", "credential.helper=",
    "-c", "diff.external=",
    "-c", "protocol.allow=never",
)  # fmt: skip
LISTING = ("ls-files", "-z", "--cached", "--others", "--exclude-standard")


def git_environment(root: Path) -> dict[str, str]:
    """The caller's environment less anything that steers git, plus what keeps git quiet and inside `root`."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {
        **kept,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_NO_LAZY_FETCH": "1",
        "GIT_PAGER": "cat",
        "GIT_CEILING_DIRECTORIES": str(root.parent),
        "LC_ALL": "C",
    }


def git_command(root: Path, *arguments: str) -> list[str]:
    return ["git", "--no-pager", *HARDENING, "-C", str(root), *arguments]


_RUNNING: set[subprocess.Popen[bytes]] = set()
_RUNNING_LOCK = threading.Lock()


def run_git(root: Path, arguments: tuple[str, ...], seconds: float = GIT_SECONDS) -> bytes | None:
    """git's stdout, or None when it failed, is missing, or ran past `seconds` (its whole process group killed)."""
    try:
        process = subprocess.Popen(
            git_command(root, *arguments),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=git_environment(root),
            start_new_session=True,  # its own process group: a late git and anything it started are killed together
        )
    except OSError:
        return None
    with _RUNNING_LOCK:
        _RUNNING.add(process)
    try:
        out, _ = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        _kill(process)
        process.communicate()
        return None
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(process)
    return out if process.returncode == 0 else None


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:  # Windows: no process groups here; git itself
            process.kill()


@atexit.register
def _kill_running() -> None:
    """A listing still running when the process ends (a one-shot CLI past its deadline) dies with it."""
    with _RUNNING_LOCK:
        for process in list(_RUNNING):
            _kill(process)


@dataclass(eq=False)
class GitAnswer:
    """What one listing said: the names, and the same names by suffix in name order (made on git's thread, so
    that a request never sorts 200,000 names)."""

    files: AbstractSet[str]  # never changed once built
    by_suffix: dict[str, list[str]]

    @classmethod
    def of(cls, out: bytes) -> GitAnswer:
        """Built in steps of CHUNK names: this runs beside requests, and one long C call (sorting 200,000 names
        in set order: 0.45 s) would hold the GIL from them; git's order (tracked, then untracked, each sorted)
        sorts in 15 ms."""
        names = sorted(name for name in out.decode("utf-8", "surrogateescape").split("\0") if name)
        files: set[str] = set()
        by_suffix: dict[str, list[str]] = {}
        for start in range(0, len(names), CHUNK):
            files.update(names[start : start + CHUNK])
            for name in names[start : start + CHUNK]:
                by_suffix.setdefault(os.path.splitext(name)[1], []).append(name)
        return cls(files, by_suffix)

    def __contains__(self, name: object) -> bool:
        return name in self.files

    def with_suffix(self, suffixes: tuple[str, ...]) -> list[str]:
        """The names ending with one of `suffixes` (each a final extension such as ".js"), in name order."""
        found = [name for suffix in suffixes for name in self.by_suffix.get(suffix, ())]
        return sorted(found) if len(suffixes) > 1 else found


@dataclass
class GitFiles:
    """One repository's listing: the last answer, the run under way, and when the last run failed."""

    root: Path
    _names: GitAnswer | None = None
    _key: object = None  # what the answer was listed for (git's index and .gitignore stamps)
    _running: threading.Event | None = None
    _failed_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def names(self, key: object, deadline: Deadline | None) -> GitAnswer | None:
        """The listing for `key`, waiting for it through half the time `deadline` leaves (None: not at all); else
        the last one (stale), else None (no answer yet, or git failed lately: read the repository without git)."""
        with self._lock:
            if self._names is not None and self._key == key:
                return self._names
            failed_lately = self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_SECONDS
            if self._running is None and not failed_lately:
                self._running = threading.Event()
                threading.Thread(target=self._list, args=(key, self._running), daemon=True).start()
            running = self._running
        if running is not None and deadline is not None:
            until = time.monotonic() + max(deadline.left(), 0.0) / 2  # the other half is for the context itself
            while not running.wait(min(POLL_SECONDS, max(until - time.monotonic(), 0.0))):
                if time.monotonic() >= until or deadline.expired():
                    break
        with self._lock:
            return self._names

    def _list(self, key: object, done: threading.Event) -> None:
        out = run_git(self.root, LISTING)
        answer = GitAnswer.of(out) if out is not None else None  # built outside the lock: requests read meanwhile
        with self._lock:
            if answer is None:
                self._failed_at = time.monotonic()
            else:
                self._names, self._key, self._failed_at = answer, key, None
            self._running = None
        done.set()


__all__ = [
    "GIT_SECONDS", "HARDENING", "RETRY_SECONDS", "GitAnswer", "GitFiles", "git_command", "git_environment", "run_git",
]  # fmt: skip
