"""The edited Python buffer, read at the cost of a keystroke: its imports, the dotted names it uses, what it binds.

The buffer usually does not parse (the line being typed is incomplete), so nothing here parses it whole: import
statements are found by their shape (each, joined across its parentheses, parsed alone and remembered by its text),
names by a regular expression, and the names the buffer binds (which shadow an import) by their shape. An import
indented under `if TYPE_CHECKING:` is marked: such a name exists for the type checker, not at run time.

A keystroke changes a few lines around the cursor, so the reading of a buffer is kept per file as three parts: the
lines above the cursor's neighbourhood, that neighbourhood (MIDDLE_LINES either side), and the lines below it. The
next request whose text starts with the same first part and ends with the same last part reads only its middle
again. Measured on a 15,700-line module (x86-64, 2 shared cores): reading it whole costs about 150 ms; reading a
middle of 80 lines about 1 ms.
"""

from __future__ import annotations

import ast
import bisect
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache

MIDDLE_LINES = 40
KEPT_BUFFERS = 16  # edited files remembered per process
ENCLOSING_LINES = 400  # how far above the cursor its enclosing function is looked for
_IMPORT = re.compile(r"^([ \t]*)(?:from[ \t]+[\w.]+[ \t]+import\b|import[ \t]+\w)[^\n]*", re.M)
_CHAIN = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_LOCAL_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)", re.M)
_MODULE_ASSIGN = re.compile(r"^(\w+)[ \t]*(?::[^=\n]*)?=(?!=)", re.M)
_TYPE_CHECKING = re.compile(r"^[ \t]*(?:el)?if[ \t]+(?:\w+\.)?TYPE_CHECKING[ \t]*:")
_DEF_HEAD = re.compile(r"^([ \t]*)(?:async[ \t]+)?def[ \t]+\w+[ \t]*\((.*)")
_LOCAL_ASSIGN = re.compile(r"^[ \t]+([A-Za-z_]\w*)[ \t]*(?::[^=\n]*)?=(?!=)", re.M)


@dataclass(frozen=True)
class ImportLine:
    line: int  # 1-based, in the whole buffer
    statement: ast.stmt
    type_checking: bool  # indented under `if TYPE_CHECKING:`


@dataclass
class Part:
    """One run of lines: its imports, its dotted names by their first part, the names it binds."""

    lines: int  # how many lines it holds (its last one may be partial: the next part goes on from there)
    imports: list[tuple[int, ast.stmt, bool]] = field(default_factory=list)  # (line in the part, statement, TC)
    uses: dict[str, list[tuple[int, tuple[str, ...]]]] = field(default_factory=dict)  # head -> (line, chain)
    bound: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class BufferView:
    """What the resolver needs of a buffer at a cursor, line numbers counted in the whole buffer."""

    cursor_line: int
    imports: list[ImportLine]
    bound: set[str]  # def and class names, module-level assignments
    parameters: set[str]  # the enclosing function's parameters and its assignments up to the cursor
    cursor_text: str  # the cursor's line up to the cursor
    function_line: int  # where the enclosing function starts (0: none within ENCLOSING_LINES)
    parts: tuple[tuple[Part, int], ...]  # above, around the cursor, below; each with the lines before it

    def uses_of(self, head: str) -> list[tuple[int, tuple[str, ...]]]:
        """Where the buffer uses `head` (outside import statements): each line and dotted name, in line order;
        looked up per name, so a keystroke costs the uses of the names imported, not every name of the buffer."""
        return [(line + shift, chain) for part, shift in self.parts for line, chain in part.uses.get(head, ())]

    def uses_near(self, head: str, lines: int) -> tuple[list[tuple[int, tuple[str, ...]]], bool]:
        """`uses_of(head)` within `lines` lines of the cursor (found by bisection: a 15,000-line module's hundreds
        of far uses are not walked at every keystroke), and whether the buffer uses `head` anywhere."""
        found: list[tuple[int, tuple[str, ...]]] = []
        anywhere = False
        for part, shift in self.parts:
            seen = part.uses.get(head)
            if not seen:
                continue
            anywhere = True
            low = bisect.bisect_left(seen, self.cursor_line - lines - shift, key=lambda use: use[0])
            high = bisect.bisect_right(seen, self.cursor_line + lines - shift, key=lambda use: use[0])
            found += [(line + shift, chain) for line, chain in seen[low:high]]
        return found, anywhere

    def heads(self) -> set[str]:
        return {head for part, _ in self.parts for head in part.uses}

    def on_cursor_line(self) -> list[tuple[str, ...]]:
        center, shift = self.parts[1]
        return [c for found in center.uses.values() for line, c in found if line + shift == self.cursor_line]


def read_part(text: str, start: int, end: int) -> Part:
    """Read text[start:end] (whole lines, but for the last, which may stop mid-line)."""
    chunk = text[start:end]
    part = Part(chunk.count("\n") + 1)
    import_lines: set[int] = set()
    for match in _IMPORT.finditer(chunk):
        line = chunk.count("\n", 0, match.start()) + 1
        piece, extra = _joined(chunk, match.start())
        statement = _parsed(piece)
        if statement is None:
            continue
        import_lines.update(range(line, line + extra + 1))
        indent = len(match.group(1).expandtabs())
        part.imports.append((line, statement, indent > 0 and _under_type_checking(text, start + match.start(), indent)))
    for number, line_text in enumerate(chunk.split("\n"), 1):
        if number in import_lines:
            continue
        code = line_text.split("#", 1)[0] if "#" in line_text else line_text
        for found in _CHAIN.finditer(code):
            chain = tuple(found.group().split("."))
            part.uses.setdefault(chain[0], []).append((number, chain))
    part.bound = set(_LOCAL_DEF.findall(chunk)) | set(_MODULE_ASSIGN.findall(chunk))
    return part


def _joined(chunk: str, at: int) -> tuple[str, int]:
    """The import statement starting at `at`, joined onto one line, and how many more lines it took."""
    end = chunk.find("\n", at)
    piece = chunk[at : end if end >= 0 else len(chunk)].strip()
    extra = 0
    while end >= 0 and (piece.count("(") > piece.count(")") or piece.endswith("\\")) and extra < 200:
        following = chunk.find("\n", end + 1)
        piece = piece.rstrip("\\") + " " + chunk[end + 1 : following if following >= 0 else len(chunk)].strip()
        end, extra = following, extra + 1
    return piece, extra


@lru_cache(maxsize=4096)
def _parsed(piece: str) -> ast.stmt | None:
    try:
        body = ast.parse(piece.split("#", 1)[0].strip().rstrip(";")).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return body[0] if len(body) == 1 and isinstance(body[0], ast.Import | ast.ImportFrom) else None


def _under_type_checking(text: str, at: int, indent: int) -> bool:
    """Whether the line at `at`, indented by `indent`, sits in an `if TYPE_CHECKING:` block (looked for in the
    200 lines above)."""
    end = at
    for _ in range(200):
        if end <= 0:
            return False
        start = text.rfind("\n", 0, end - 1) + 1
        line = text[start : end - 1] if text[end - 1 : end] == "\n" else text[start:end]
        end = start
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(line.expandtabs()) - len(line.expandtabs().lstrip()) < indent:
            return bool(_TYPE_CHECKING.match(line))
    return False


@dataclass
class _Kept:
    head: str  # the text up to the middle (whole lines)
    tail: str  # the text after the middle (whole lines)
    head_part: Part
    tail_part: Part


_KEPT: OrderedDict[str, _Kept] = OrderedDict()
_LOCK = threading.Lock()


def view_of(key: str, text: str, offset: int) -> BufferView:
    """The buffer's reading at `offset`; `key` names the buffer (its path) for the parts kept between requests."""
    cursor_line = text.count("\n", 0, offset) + 1
    with _LOCK:
        kept = _KEPT.get(key)
    middle = None
    if kept is not None and len(kept.head) + len(kept.tail) <= len(text):
        low, high = len(kept.head), len(text) - len(kept.tail)
        if low <= offset <= high and text.startswith(kept.head) and text.endswith(kept.tail):
            middle = (low, high)
    if middle is None or text.count("\n", middle[0], middle[1]) > 4 * MIDDLE_LINES:
        low = _line_start(text, offset, MIDDLE_LINES)
        high = _line_end(text, offset, MIDDLE_LINES)
        kept = _Kept(text[:low], text[high:], read_part(text, 0, low), read_part(text, high, len(text)))
        with _LOCK:
            _KEPT[key] = kept
            while len(_KEPT) > KEPT_BUFFERS:
                _KEPT.popitem(last=False)
        middle = (low, high)
    else:
        with _LOCK:
            _KEPT.move_to_end(key)
    assert kept is not None
    center = read_part(text, *middle)
    parts = ((kept.head_part, 0), (center, kept.head_part.lines - 1))
    parts += ((kept.tail_part, kept.head_part.lines + center.lines - 2),)
    imports: list[ImportLine] = []
    bound: set[str] = set()
    for part, shift in parts:
        imports += [ImportLine(line + shift, statement, tc) for line, statement, tc in part.imports]
        bound |= part.bound
    line_start = text.rfind("\n", 0, offset) + 1
    parameters, above = _parameters(text, line_start)
    function_line = cursor_line - above if above else 0
    return BufferView(cursor_line, imports, bound, parameters, text[line_start:offset], function_line, parts)


def _line_start(text: str, offset: int, lines: int) -> int:
    position = offset
    for _ in range(lines + 1):
        position = text.rfind("\n", 0, position)
        if position < 0:
            return 0
    return position + 1


def _line_end(text: str, offset: int, lines: int) -> int:
    """The start of the line `lines` lines below the cursor's (the end of the text when there is none)."""
    position = offset
    for _ in range(lines):
        found = text.find("\n", position)
        if found < 0:
            return len(text)
        position = found + 1
    return position


def _parameters(text: str, line_start: int) -> tuple[set[str], int]:
    """The enclosing function's parameters and the names it assigns above the cursor's line, and how many lines
    above the cursor's its `def` is (0: none found)."""
    above = text[_line_start(text, line_start, ENCLOSING_LINES) : line_start].split("\n")
    names: set[str] = set()
    for index in range(len(above) - 1, -1, -1):
        match = _DEF_HEAD.match(above[index])
        if match:
            header = " ".join([match.group(2), *above[index + 1 : index + 6]]).split(")", 1)[0]
            names |= set(re.findall(r"(?:^|,|\(|\*)\s*([A-Za-z_]\w*)", header))
            names |= set(_LOCAL_ASSIGN.findall("\n".join(above[index + 1 :])))
            return names, len(above) - 1 - index
    return names, 0
