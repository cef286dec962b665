"""Windows of other files that resemble the code before the cursor: identifier sets compared by Jaccard similarity.

GitHub Copilot's neighbouring-tabs method (60-line windows, best first), used here for every language as the
fallback, and for Python after the import-resolved definitions when budget is left. Also the benchmark's baseline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WINDOW_LINES = 60
STRIDE = 30
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Window:
    score: float
    start_line: int  # 1-based
    end_line: int  # inclusive


def identifiers(text: str) -> set[str]:
    return set(_IDENTIFIER.findall(text))


def query_of(text: str, offset: int, lines: int = WINDOW_LINES) -> set[str]:
    """The identifiers of the `lines` lines before the cursor (its own line up to the cursor included)."""
    start = offset
    for _ in range(lines):
        start = text.rfind("\n", 0, start)
        if start < 0:
            break
    return identifiers(text[max(start, 0) : offset])


def line_sets(text: str) -> list[set[str]]:
    return [set(_IDENTIFIER.findall(line)) for line in text.split("\n")]


Prepared = list[tuple[int, int, frozenset[str]]]  # each window's first and last line (1-based) and identifiers


def prepare(sets: list[set[str]], size: int = WINDOW_LINES, stride: int = STRIDE) -> Prepared:
    """A file's windows (from its line identifier sets), ready to be compared with any query."""
    prepared = []
    for start in range(0, max(len(sets) - size, 0) + 1, stride):
        chunk: frozenset[str] = frozenset().union(*sets[start : start + size])
        prepared.append((start + 1, min(start + size, len(sets)), chunk))
    return prepared


def ranked(prepared: Prepared, query: set[str]) -> list[Window]:
    """The prepared windows with their Jaccard similarity to `query` (those sharing nothing left out)."""
    found = []
    for start, end, chunk in prepared:
        shared = len(query & chunk) if len(query) < len(chunk) else len(chunk & query)
        if shared:
            found.append(Window(shared / (len(chunk) + len(query) - shared), start, end))
    return found


def windows(sets: list[set[str]], query: set[str], size: int = WINDOW_LINES, stride: int = STRIDE) -> list[Window]:
    """Every window of a file (its line identifier sets) that shares an identifier with `query`, best first."""
    if not query or not sets:
        return []
    found = ranked(prepare(sets, size, stride), query)
    found.sort(key=lambda w: (-w.score, w.start_line))
    return found
