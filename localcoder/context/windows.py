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


def windows(sets: list[set[str]], query: set[str], size: int = WINDOW_LINES, stride: int = STRIDE) -> list[Window]:
    """Every window of a file (its line identifier sets) with its Jaccard similarity to `query`, best first."""
    if not query or not sets:
        return []
    found = []
    for start in range(0, max(len(sets) - size, 0) + 1, stride):
        chunk: set[str] = set().union(*sets[start : start + size])
        union = len(chunk | query)
        if union:
            found.append(Window(len(chunk & query) / union, start + 1, min(start + size, len(sets))))
    found.sort(key=lambda w: (-w.score, w.start_line))
    return found
