"""One interface for what varies by language: a buffer and its cursor -> ranked definitions from other files.

Each language that can resolve its imports implements `Resolver` in one module and registers it by file suffix;
`gather()` asks `resolver_for(path)` and knows no language itself. A language without a resolver gets identifier
windows only. Every resolver works under a `Deadline`: a hostile or huge repository decides what there is to read,
never how long a keystroke waits, so a resolver checks `deadline.expired()` in each loop over files or names and
returns what it found so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from localcoder.context.repository import Repository


ASK_SECONDS = 0.01  # `cancelled` is asked at most this often: it may be a system call (is the client still there?)


@dataclass(frozen=True)
class Deadline:
    """When the context stage must have answered, and whether the request behind it is still wanted."""

    at: float  # time.monotonic() seconds
    cancelled: Callable[[], bool] | None = None
    _asked: list[Any] = field(default_factory=lambda: [float("-inf"), False], compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, cancelled: Callable[[], bool] | None = None) -> Deadline:
        return cls(time.monotonic() + seconds, cancelled)

    @classmethod
    def never(cls) -> Deadline:
        return cls(float("inf"))

    def left(self) -> float:
        return self.at - time.monotonic()

    def expired(self) -> bool:
        """Past its time, or cancelled (which stays so once said)."""
        now = time.monotonic()
        if now >= self.at:
            return True
        if self.cancelled is None:
            return False
        asked_at, answer = self._asked
        if not answer and now - asked_at >= ASK_SECONDS:
            self._asked[:] = [now, bool(self.cancelled())]
        return bool(self._asked[1])


@dataclass(frozen=True)
class Found:
    """A definition a resolver offers: where it is, how its head ends, how strongly the cursor needs it."""

    score: float  # higher is better; only the order among one resolver's answers matters
    path: Path  # resolved file inside the repository
    text: str  # that file's whole text as read (an open document's text wins over the disk)
    start_line: int  # 1-based, inclusive; doc comments and decorators included
    head_end: int  # last line of the signature and its doc
    end_line: int  # last line of the whole definition
    why: str  # shown in `context --json`: "definition of X: <import as written>"
    kind: str = "definition"  # or "outline": a module's names and signatures, the lines in `shown` only
    shown: tuple[tuple[int, int], ...] = ()  # an outline's line ranges (1-based, inclusive), the first kept first


class Resolver(Protocol):
    """A language's import resolution: what the names near the cursor refer to in the repository."""

    suffixes: tuple[str, ...]  # the file suffixes it serves, with the dot

    def candidates(
        self,
        repository: Repository,
        edited: Path,
        text: str,
        offset: int,
        overlay: dict[Path, str],
        deadline: Deadline,
    ) -> list[Found]:
        """Definitions from other files that the code at `offset` uses or is about to, best first."""
        ...


_REGISTRY: dict[str, Resolver] = {}


def register(resolver: Resolver) -> Resolver:
    for suffix in resolver.suffixes:
        _REGISTRY[suffix] = resolver
    return resolver


def resolver_for(path: Path) -> Resolver | None:
    _load_languages()
    return _REGISTRY.get(path.suffix.lower())


_LOADED: list[bool] = []  # once per process; Python's module may have registered itself before


def _load_languages() -> None:
    if not _LOADED:
        _LOADED.append(True)
        import localcoder.context.python  # noqa: F401  (registers itself)
        from localcoder.context.languages import load

        load()


__all__ = ["Deadline", "Found", "Resolver", "register", "resolver_for"]
