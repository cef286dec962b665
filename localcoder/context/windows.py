"""Windows of other files that resemble the code before the cursor: identifier sets compared by Jaccard similarity.

GitHub Copilot's neighbouring-tabs method (60-line windows, best first), used here for every language as the
fallback, and for Python after the import-resolved definitions when budget is left. Also the benchmark's baseline.
The language's keywords are left out of the comparison: `def`, `return`, `self` or `if` are in every window of a
Python file, so counting them ranks windows by how much code they hold, not by what they share with the cursor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WINDOW_LINES = 60
STRIDE = 30
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_PYTHON = (
    "False None True and as assert async await break class continue def del elif else except finally for from "
    "global if import in is lambda nonlocal not or pass raise return try while with yield self cls"
)
_C = (
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "NULL bool true false"
)
_CPP = (
    _C + " alignas alignof and asm catch class constexpr const_cast decltype delete dynamic_cast explicit export "
    "friend mutable namespace new noexcept not nullptr operator or override private protected public "
    "reinterpret_cast static_assert static_cast template this throw try typeid typename using virtual final std"
)
_JS = (
    "break case catch class const continue debugger default delete do else export extends false finally for "
    "function if import in instanceof let new null return super switch this throw true try typeof undefined var "
    "void while with yield async await of static get set"
)
_TS = (
    _JS + " abstract any as boolean declare enum implements interface keyof namespace never number private "
    "protected public readonly string type unknown"
)
_RUST = (
    "as async await break const continue crate dyn else enum extern false fn for if impl in let loop match mod "
    "move mut pub ref return self Self static struct super trait true type unsafe use where while Some None Ok "
    "Err Option Result"
)
_GO = (
    "break case chan const continue default defer else fallthrough for func go goto if import interface map "
    "package range return select struct switch type var nil true false err string int error bool"
)
_JAVA = (
    "abstract assert boolean break byte case catch char class const continue default do double else enum extends "
    "final finally float for goto if implements import instanceof int interface long native new package private "
    "protected public return short static strictfp super switch synchronized this throw throws transient try void "
    "volatile while true false null var String"
)
KEYWORDS: dict[str, frozenset[str]] = {}
for _suffixes, _words in (
    ((".py", ".pyi"), _PYTHON),
    ((".c", ".h"), _C),
    ((".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"), _CPP),
    ((".js", ".jsx", ".mjs", ".cjs"), _JS),
    ((".ts", ".tsx", ".mts", ".cts"), _TS),
    ((".rs",), _RUST),
    ((".go",), _GO),
    ((".java",), _JAVA),
):
    KEYWORDS.update(dict.fromkeys(_suffixes, frozenset(_words.split())))


def keywords_of(suffix: str) -> frozenset[str]:
    """The keywords (and the few names every file of the language repeats) of the language of `suffix`."""
    return KEYWORDS.get(suffix.lower(), frozenset())


@dataclass(frozen=True)
class Window:
    score: float
    start_line: int  # 1-based
    end_line: int  # inclusive, never past the file's last line


def identifiers(text: str, keywords: frozenset[str] = frozenset()) -> set[str]:
    return set(_IDENTIFIER.findall(text)) - keywords


def query_of(text: str, offset: int, lines: int = WINDOW_LINES, keywords: frozenset[str] = frozenset()) -> set[str]:
    """The identifiers of the `lines` lines before the cursor (its own line up to the cursor included)."""
    start = offset
    for _ in range(lines):
        start = text.rfind("\n", 0, start)
        if start < 0:
            break
    return identifiers(text[max(start, 0) : offset], keywords)


def file_lines(text: str) -> list[str]:
    """A file's lines as an editor numbers them: a final newline ends the last line, it does not start another."""
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return lines


def line_sets(text: str) -> list[set[str]]:
    return [set(_IDENTIFIER.findall(line)) for line in file_lines(text)]


Prepared = list[tuple[int, int, frozenset[str]]]  # each window's first and last line (1-based) and identifiers


def prepare(sets: list[set[str]], size: int = WINDOW_LINES, stride: int = STRIDE) -> Prepared:
    """A file's windows (from its line identifier sets), ready to be compared with any query."""
    prepared = []
    for start in range(0, max(len(sets) - size, 0) + 1, stride):
        chunk: frozenset[str] = frozenset().union(*sets[start : start + size])
        prepared.append((start + 1, min(start + size, len(sets)), chunk))
    return prepared


def ranked(prepared: Prepared, query: set[str], keywords: frozenset[str] = frozenset()) -> list[Window]:
    """The prepared windows with their Jaccard similarity to `query` (those sharing nothing left out). `query`
    holds no keyword (see `query_of`); the windows' keywords are left out of their size here."""
    sizes = _sizes(prepared, keywords)
    found = []
    for (start, end, chunk), size in zip(prepared, sizes, strict=True):
        shared = len(query & chunk) if len(query) < len(chunk) else len(chunk & query)
        if shared:
            found.append(Window(shared / (size + len(query) - shared), start, end))
    return found


_SIZES: dict[tuple[int, frozenset[str]], tuple[Prepared, list[int]]] = {}


def _sizes(prepared: Prepared, keywords: frozenset[str]) -> list[int]:
    """Each window's identifiers less the keywords, counted once per prepared file (not at every keystroke: 1,000
    header files' windows took 40 ms more a request)."""
    key = (id(prepared), keywords)
    kept = _SIZES.get(key)
    if kept is None or kept[0] is not prepared:
        kept = (prepared, [len(chunk) - len(keywords & chunk) for _, _, chunk in prepared])
        if len(_SIZES) > 50_000:
            _SIZES.clear()
        _SIZES[key] = kept
    return kept[1]


def windows(
    sets: list[set[str]],
    query: set[str],
    size: int = WINDOW_LINES,
    stride: int = STRIDE,
    keywords: frozenset[str] = frozenset(),
) -> list[Window]:
    """Every window of a file (its line identifier sets) that shares an identifier with `query`, best first."""
    if not query or not sets:
        return []
    found = ranked(prepare(sets, size, stride), query, keywords)
    found.sort(key=lambda w: (-w.score, w.start_line))
    return found
