"""One interface for what varies by language: a buffer and its cursor -> ranked definitions from other files.

Each language that can resolve its imports implements `Resolver` in one module and registers it by file suffix;
`gather()` asks `resolver_for(path)` and knows no language itself. A language without a resolver gets identifier
windows only. Every resolver works under a `Deadline`: a hostile or huge repository decides what there is to read,
never how long a keystroke waits, so a resolver checks `deadline.expired()` in each loop over files or names and
returns what it found so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from localcoder.context.deadline import Deadline

if TYPE_CHECKING:
    from localcoder.context.repository import Repository


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


MAX_BUFFER_CHARS = 1 << 20  # a larger buffer is read in its first lines and around the cursor only
HEAD_LINES = 2000  # its first lines (the imports), and as many above the cursor


def around_cursor(text: str, offset: int, lines_below: int) -> tuple[str, int]:
    """The buffer a resolver reads, and the cursor in it: the whole when it is small; else its first HEAD_LINES
    lines and the lines around the cursor (HEAD_LINES above, `lines_below` below), so a 50 MB file costs no more
    than a large one."""
    if len(text) <= MAX_BUFFER_CHARS:
        return text, offset
    head_end = _line_boundary(text, 0, HEAD_LINES, forward=True)
    start = max(_line_boundary(text, offset, HEAD_LINES, forward=False), head_end)
    end = _line_boundary(text, offset, lines_below, forward=True)
    if start <= head_end:
        return text[:end], offset
    return text[:head_end] + "\n" + text[start:end], head_end + 1 + offset - start


def _line_boundary(text: str, offset: int, lines: int, forward: bool) -> int:
    position = offset
    for _ in range(lines):
        found = text.find("\n", position + 1) if forward else text.rfind("\n", 0, position)
        if found < 0:
            return len(text) if forward else 0
        position = found
    return position if forward else position + 1


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
