"""The open documents as the client sent them, and LSP positions mapped onto their text.

LSP counts a position's character in code units of the negotiated encoding (UTF-16 unless the client
offers utf-8 or utf-32) and ends lines only at "\\n", "\\r\\n" and "\\r". Python's str.splitlines also
splits at form feeds, U+2028 and others, which would shift every line after them, so lines are found here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from localcoder.errors import LocalcoderError

_LINE_END = re.compile(r"\r\n|\r|\n")
ENCODINGS = ("utf-16", "utf-8", "utf-32")


@dataclass(frozen=True)
class Position:
    line: int  # 0-based
    character: int  # code units of the encoding


@dataclass(frozen=True)
class Change:
    """One entry of didChange's contentChanges: a range and its new text, or the whole text (range None)."""

    text: str
    start: Position | None = None
    end: Position | None = None


def units(text: str, encoding: str) -> int:
    """Length of `text` in the encoding's code units."""
    if encoding == "utf-32":
        return len(text)
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def line_starts(text: str) -> list[int]:
    """Offset of each line's first character; a text ending in a newline has an empty last line."""
    return [0, *(match.end() for match in _LINE_END.finditer(text))]


def offset_at(text: str, position: Position, encoding: str = "utf-16") -> int:
    """The code-point offset of an LSP position. Past a line's end means its end (the spec says so);
    a position inside a character's code units (half a surrogate pair) means the character's start."""
    starts = line_starts(text)
    if position.line < 0 or position.character < 0:
        raise LocalcoderError(f"position {position.line}:{position.character} is negative")
    if position.line >= len(starts):
        return len(text)
    start = starts[position.line]
    end = starts[position.line + 1] if position.line + 1 < len(starts) else len(text)
    line = _LINE_END.sub("", text[start:end], count=1) if end > start else ""
    if encoding == "utf-32":
        return start + min(position.character, len(line))
    counted = 0
    for index, char in enumerate(line):
        width = units(char, encoding)
        if counted + width > position.character:
            return start + index
        counted += width
    return start + len(line)


def position_at(text: str, offset: int, encoding: str = "utf-16") -> Position:
    """The LSP position of a code-point offset."""
    starts = line_starts(text)
    line = max(index for index, start in enumerate(starts) if start <= offset)
    return Position(line, units(text[starts[line] : offset], encoding))


@dataclass
class Document:
    uri: str
    text: str
    version: int = 0
    language: str | None = None

    def apply(self, changes: Iterable[Change], encoding: str = "utf-16") -> None:
        """Apply didChange's edits in order: each range refers to the text left by the ones before it."""
        for change in changes:
            if change.start is None or change.end is None:
                self.text = change.text
                continue
            start = offset_at(self.text, change.start, encoding)
            end = max(start, offset_at(self.text, change.end, encoding))
            self.text = self.text[:start] + change.text + self.text[end:]


class Documents:
    """Open documents by URI: didOpen adds one, didChange edits it, didClose forgets it."""

    def __init__(self) -> None:
        self._open: dict[str, Document] = {}

    def open(self, uri: str, text: str, version: int = 0, language: str | None = None) -> None:
        self._open[uri] = Document(uri, text, version, language)

    def change(self, uri: str, version: int, changes: Iterable[Change], encoding: str = "utf-16") -> None:
        document = self.get(uri)
        document.apply(changes, encoding)
        document.version = version

    def close(self, uri: str) -> None:
        self._open.pop(uri, None)

    def get(self, uri: str) -> Document:
        document = self._open.get(uri)
        if document is None:
            raise LocalcoderError(f"{uri} is not open (the client must send didOpen first)")
        return document

    def texts(self) -> dict[str, str]:
        """Every open document's text by URI: what the context stage ranks first."""
        return {uri: document.text for uri, document in self._open.items()}

    def __contains__(self, uri: str) -> bool:
        return uri in self._open

    def __len__(self) -> int:
        return len(self._open)
