"""Read the user's buffer and find the cursor in it, the first step of `localcoder complete`.

Positions follow editors, not Python: only "\\n", "\\r\\n" and "\\r" end a line (``str.splitlines``
would also split on form feeds and U+2028, which would shift every line number after them), and
columns count code points, a tab being one column.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from localcoder.errors import LocalcoderError

UTF8_BOM = codecs.BOM_UTF8
MAX_READ_MB = 64  # what `complete` reads of a file or stdin at most; --max-read-mb raises it
MAX_READ_BYTES = MAX_READ_MB << 20
STDIN_NAME = "<stdin>"
# Enough to catch real binaries (they have NULs early) without reading a big file twice.
BINARY_SNIFF_BYTES = 8192
# Codecs whose text legitimately contains NUL bytes, so the binary sniff would reject every file.
_WIDE_CODEC_PREFIXES = ("utf-16", "utf-32")
_UTF8_CODECS = ("utf-8", "utf-8-sig")
_NEWLINE_RE = re.compile(r"\r\n|\r|\n")
_SIGNED_RE = re.compile(r"[-+][0-9]+|[0-9]+[.,][0-9]*")
_TARGET_RE = re.compile(r"(?P<path>.+?):(?P<line>[0-9]+)(?::(?P<col>[0-9]+))?")


@dataclass(frozen=True)
class SourceBuffer:
    """A decoded source file plus what is needed to write it back byte for byte.

    ``text`` always uses "\\n" so prompt building and cursor arithmetic need not care about the
    file's newline style; ``encoding``, ``bom`` and ``newline`` say how to turn it back into bytes.
    ``raw_sha256`` fingerprints the bytes that were read, so a write can refuse to clobber a file
    that an editor saved meanwhile. ``file`` is the path it was read from (None for stdin), which
    is what makes a buffer writable.
    """

    path: str
    text: str
    encoding: str
    bom: bool
    newline: str
    raw_sha256: str = ""
    file: Path | None = None

    @property
    def line_count(self) -> int:
        """Lines as an editor numbers them: "" and "a" have 1, "a\\nb" and "a\\nb\\n" have 2.

        A final newline ends the last line rather than starting a new one, but when the text
        ends with a newline, ``locate`` still accepts line ``line_count + 1``: the empty line after
        it, where an editor puts the cursor at the end of such a file.
        """
        newlines = self.text.count("\n")
        return newlines if self.text.endswith("\n") else newlines + 1


@dataclass(frozen=True)
class Cursor:
    """Where the completion goes: 1-based line and column (code points), and the index into the text."""

    line: int
    col: int
    offset: int


def read_source(path: Path, encoding: str | None = None, limit: int = MAX_READ_BYTES) -> SourceBuffer:
    """Read a file from disk; every way it can be unreadable becomes a one-line LocalcoderError.

    Only regular files are read: a FIFO would block forever and /dev/zero never ends. The file is opened
    non-blocking so that even one swapped in after the check cannot hang, and at most `limit` bytes are read.
    """
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise LocalcoderError(f"{name} does not exist") from None
    except IsADirectoryError:
        raise LocalcoderError(f"{name} is a directory, not a file") from None
    except OSError as err:
        raise LocalcoderError(f"cannot read {name}: {err.strerror or err}") from err
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise LocalcoderError(f"{name} is a directory, not a file")
        raise LocalcoderError(f"{name} is not a regular file (a device, FIFO or socket); pipe it to - instead")
    with os.fdopen(fd, "rb") as handle:
        try:
            data = read_bounded(handle, name, limit)
        except OSError as err:
            raise LocalcoderError(f"cannot read {name}: {err.strerror or err}") from err
    buffer = read_source_bytes(data, name=name, encoding=encoding)
    return SourceBuffer(
        path=buffer.path,
        text=buffer.text,
        encoding=buffer.encoding,
        bom=buffer.bom,
        newline=buffer.newline,
        raw_sha256=buffer.raw_sha256,
        file=path,
    )


def read_bounded(handle: BinaryIO, name: str = STDIN_NAME, limit: int = MAX_READ_BYTES) -> bytes:
    """At most `limit` bytes of a stream (a file, or stdin that may never end); more is a LocalcoderError."""
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise LocalcoderError(
            f"{name} is larger than the {limit >> 20} MiB read limit; raise it with --max-read-mb"
        )
    return data


def read_source_bytes(data: bytes, name: str = STDIN_NAME, encoding: str | None = None) -> SourceBuffer:
    """Decode bytes (stdin, or a file's contents) into a buffer; ``name`` is only used in messages.

    Without ``encoding`` this is UTF-8 with an optional BOM. A UTF-8 BOM is stripped only for the
    UTF-8 codecs: in latin-1, say, those three bytes are ordinary characters and must survive.
    """
    codec = _lookup_codec(encoding) if encoding else "utf-8"
    wide = codec.startswith(_WIDE_CODEC_PREFIXES)
    if not wide and b"\x00" in data[:BINARY_SNIFF_BYTES]:
        raise LocalcoderError(f"{name} looks binary (it has NUL bytes); pass --encoding if it is UTF-16 or UTF-32")
    if codec in _UTF8_CODECS:
        codec = "utf-8"
    bom = codec == "utf-8" and data.startswith(UTF8_BOM)
    body = data[len(UTF8_BOM) :] if bom else data
    try:
        decoded = body.decode(codec)
    except UnicodeDecodeError as err:
        offset = err.start + (len(UTF8_BOM) if bom else 0)
        shown = "UTF-8" if codec == "utf-8" else encoding
        hint = "; pass --encoding" if encoding is None else ""
        byte = body[err.start] if err.start < len(body) else None
        where = f"byte 0x{byte:02x} at offset {offset}" if byte is not None else f"at offset {offset}"
        raise LocalcoderError(f"{name} is not valid {shown} ({where}){hint}") from err
    except LookupError as err:  # e.g. "base64": a codec, but not a text encoding
        raise LocalcoderError(f"{encoding!r} is not a text encoding") from err
    return SourceBuffer(
        path=name,
        text=normalize_newlines(decoded),
        encoding=codec,
        bom=bom,
        newline=dominant_newline(decoded),
        raw_sha256=hashlib.sha256(data).hexdigest(),
    )


def normalize_newlines(text: str) -> str:
    """Every "\\r\\n" and lone "\\r" becomes "\\n"."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def dominant_newline(text: str) -> str:
    """The most frequent line ending; ties go to "\\n", then "\\r\\n", so a file without any gets "\\n"."""
    counts = {"\n": 0, "\r\n": 0, "\r": 0}
    for match in _NEWLINE_RE.finditer(text):
        counts[match.group()] += 1
    # max() keeps the first of equal counts, so the dict order is the tie-break order.
    return max(counts, key=lambda newline: counts[newline])


def locate(buffer: SourceBuffer, line: int, col: int | None) -> Cursor:
    """Turn an editor position into an index into ``buffer.text``.

    Without ``col`` the cursor goes to the end of the line, which for a whitespace-only line is
    after its indentation: where the user would start typing. ``col`` may be one past the last
    character (the end of the line), never further.
    """
    if line < 1:
        raise LocalcoderError(f"LINE must be a positive integer, got {line}")
    if col is not None and col < 1:
        raise LocalcoderError(f"COL must be a positive integer, got {col}")
    text = buffer.text
    last_line = buffer.line_count + (1 if text.endswith("\n") else 0)
    if line > last_line:
        raise LocalcoderError(f"line {line} is past the end of {buffer.path} ({_plural(buffer.line_count, 'line')})")
    start = 0
    for _ in range(line - 1):
        start = text.index("\n", start) + 1
    end = text.find("\n", start)
    length = (len(text) if end == -1 else end) - start
    if col is None:
        col = length + 1
    elif col > length + 1:
        raise LocalcoderError(f"column {col} is past the end of line {line} ({_plural(length, 'character')})")
    return Cursor(line=line, col=col, offset=start + col - 1)


def parse_target(
    target: str, exists: Callable[[str], bool] = lambda _path: False
) -> tuple[str, int | None, int | None]:
    """Split "app.py:42:7" into path, line and column; anything else is all path.

    Only a trailing ":N" or ":N:M" of ASCII digits is a position, so "C:\\\\src\\\\a.py" and
    "weird:name.py" stay whole. A zero still parses here and is rejected by ``parse_position``,
    so "a.py:0" gets a message about the line, not "a.py:0 does not exist".
    """
    if not target:
        raise LocalcoderError("no file given; pass a path, or - for stdin")
    match = _TARGET_RE.fullmatch(target)
    if match is None:
        head, colon, tail = target.rpartition(":")
        # "a.py:-1", "a.py:abc" (a.py being there and "a.py:abc" not): a position that is not a number.
        if colon and head and (_SIGNED_RE.fullmatch(tail) or (tail and exists(head) and not exists(target))):
            what = "COL" if _TARGET_RE.fullmatch(head) else "LINE"
            raise LocalcoderError(f"{what} must be a positive integer, got {tail!r}")
        return target, None, None
    line = parse_position(match["line"], "LINE")
    col = parse_position(match["col"], "COL") if match["col"] is not None else None
    return match["path"], line, col


def resolve_target(
    target: str | None, line: str | None, col: str | None, stdin: bool, exists: Callable[[str], bool] = os.path.exists
) -> tuple[str, int, int | None]:
    """`complete`'s FILE:LINE[:COL] (or - / --stdin) with --line/--col: the path ("-" for stdin), line, column.

    A position given twice, or a file given with --stdin, is an error rather than a silent choice.
    """
    if stdin and target not in (None, "-"):
        raise LocalcoderError(f"--stdin reads the buffer from stdin, so {target!r} would be ignored; give one of them")
    path, file_line, file_col = parse_target(target or "-", exists) if target or stdin else ("", None, None)
    if not path:
        raise LocalcoderError("no file given; pass FILE:LINE, or - (or --stdin) with --line to read stdin")
    if file_line is not None and line is not None:
        raise LocalcoderError(f"the cursor line is given twice ({target} and --line {line}); give it once")
    if file_col is not None and col is not None:
        raise LocalcoderError(f"the cursor column is given twice ({target} and --col {col}); give it once")
    cursor_line = file_line if file_line is not None else (parse_position(line, "LINE") if line is not None else None)
    cursor_col = file_col if file_col is not None else (parse_position(col, "COL") if col is not None else None)
    if cursor_line is None:
        raise LocalcoderError("no cursor line: use FILE:LINE[:COL], or --line with - or --stdin")
    return path, cursor_line, cursor_col


def parse_position(value: str, what: str) -> int:
    """A 1-based LINE or COL from the command line; ``what`` names it in the message."""
    text = value.strip()
    if not re.fullmatch(r"[0-9]+", text) or int(text) == 0:
        raise LocalcoderError(f"{what} must be a positive integer, got {value!r}")
    return int(text)


def _lookup_codec(encoding: str) -> str:
    """The codec's canonical name, so "UTF8", "utf_8" and "utf-8" behave alike."""
    try:
        return codecs.lookup(encoding).name
    except LookupError as err:
        raise LocalcoderError(f"unknown encoding {encoding!r}") from err


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
