"""Put a completion into the user's file (`--write`) or show it as a diff (`--diff`).

The one promise here is that a write never damages the file: it lands whole or not at all
(temporary file, fsync, rename), it refuses if the file changed since it was read, and every
byte outside the inserted completion stays as it was, mixed newlines and odd encodings included.
"""

from __future__ import annotations

import codecs
import difflib
import hashlib
import os
import stat
from pathlib import Path

from localcoder.errors import LocalcoderError
from localcoder.files import write_atomically
from localcoder.source import UTF8_BOM, Cursor, SourceBuffer, normalize_newlines


def insert_completion(buffer: SourceBuffer, cursor: Cursor, completion: str) -> str:
    """The buffer's normalised text with the completion at the cursor (for diffs and previews)."""
    return buffer.text[: cursor.offset] + normalize_newlines(completion) + buffer.text[cursor.offset :]


def render_file_bytes(buffer: SourceBuffer, text: str) -> bytes:
    """Normalised text back to bytes in the file's encoding, BOM and dominant newline style.

    A file with mixed newlines comes back with one style; ``write_completion`` therefore splices
    into the original bytes instead of using this.
    """
    native = normalize_newlines(text).replace("\n", buffer.newline)
    return (UTF8_BOM if buffer.bom else b"") + _encode(buffer, native)


def unified_diff(buffer: SourceBuffer, new_text: str) -> str:
    """A git-style unified diff from the buffer to ``new_text``; "" when nothing changed."""
    name = buffer.path.replace("\\", "/").lstrip("/")
    lines = difflib.unified_diff(
        _lines(buffer.text),
        _lines(normalize_newlines(new_text)),
        fromfile=f"a/{name}",
        tofile=f"b/{name}",
    )
    # difflib leaves a last line without "\n" glued to whatever follows; mark it the way patch(1) expects.
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def write_completion(path: Path, buffer: SourceBuffer, cursor: Cursor, completion: str) -> None:
    """Insert the completion into the file on disk, atomically; raise LocalcoderError and leave it alone otherwise.

    A symlink is written through: its target is replaced and the link kept. The replacement gets
    the original's permission bits and, where allowed, its owner; other metadata (ACLs, extended
    attributes, hard links to the old inode) is not carried over.
    """
    name = buffer.path
    if buffer.file is None:
        raise LocalcoderError(f"{name} is not a file on disk, so there is nothing to write to; use --diff or stdout")
    target = Path(os.path.realpath(path))
    try:
        info = target.stat()
    except OSError as err:
        raise LocalcoderError(f"cannot write {name}: {err.strerror or err}; nothing was written") from err
    if not stat.S_ISREG(info.st_mode):
        raise LocalcoderError(f"{name} is not a regular file; nothing was written")
    # As root os.access says yes to everything, so the mode bits are checked too: a file nobody may
    # write is one the user meant to protect.
    if not info.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(target, os.W_OK):
        raise LocalcoderError(f"{name} is read-only; nothing was written")

    original = _read_unchanged(target, buffer)
    new_bytes = _splice(buffer, original, cursor, completion)
    _replace_atomically(target, info, new_bytes, buffer)


def _lines(text: str) -> list[str]:
    """Lines with their "\\n"; only "\\n" ends one, as in SourceBuffer (splitlines would also split on form feeds)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _read_unchanged(target: Path, buffer: SourceBuffer) -> bytes:
    """The file's current bytes, provided they are still the bytes the buffer was decoded from."""
    try:
        data = target.read_bytes()
    except OSError as err:
        raise LocalcoderError(f"cannot read {buffer.path}: {err.strerror or err}; nothing was written") from err
    if hashlib.sha256(data).hexdigest() != buffer.raw_sha256:
        raise LocalcoderError(f"{buffer.path} changed on disk while completing; nothing was written")
    return data


def _splice(buffer: SourceBuffer, original: bytes, cursor: Cursor, completion: str) -> bytes:
    """The original bytes with the encoded completion inserted at the cursor, and nothing else changed.

    Works on the decoded-but-not-normalised text so that each "\\r\\n", "\\r" and "\\n" keeps its
    own style; the result is checked to be exactly head + completion + tail of the original, and
    encodings that cannot promise that (stateful ones) are refused rather than risked.
    """
    prefix = UTF8_BOM if buffer.bom else b""
    body = original[len(prefix) :]
    raw_text = body.decode(buffer.encoding)
    split = _raw_index(raw_text, cursor.offset)
    native = normalize_newlines(completion).replace("\n", buffer.newline)
    encoder = codecs.getincrementalencoder(buffer.encoding)()
    try:
        head = encoder.encode(raw_text[:split])
        middle = encoder.encode(native)
        tail = encoder.encode(raw_text[split:], final=True)
    except UnicodeEncodeError as err:
        raise LocalcoderError(_unencodable(buffer, err)) from err
    if head != body[: len(head)] or tail != body[len(head) :]:
        raise LocalcoderError(
            f"{buffer.path} cannot be written back byte for byte in {buffer.encoding}; nothing was written"
        )
    return prefix + head + middle + tail


def _raw_index(raw_text: str, offset: int) -> int:
    """Map an index into the normalised text to one into the text with its original newlines.

    Only "\\r\\n" changes length when normalised, so each one before the cursor shifts it by one;
    the cursor can never fall between its "\\r" and "\\n".
    """
    shift = 0
    start = 0
    while True:
        found = raw_text.find("\r\n", start)
        if found == -1 or found - shift >= offset:
            return offset + shift
        shift += 1
        start = found + 2


def _replace_atomically(target: Path, info: os.stat_result, data: bytes, buffer: SourceBuffer) -> None:
    """Write beside the target keeping its mode and owner, then rename over it (files.write_atomically); the
    last look for an editor's save happens just before the rename, to narrow the window in which it is lost."""
    try:
        write_atomically(target, data, info, before_rename=lambda: _read_unchanged(target, buffer))
    except OSError as err:
        raise LocalcoderError(f"cannot write {buffer.path}: {err.strerror or err}; nothing was written") from err


def _encode(buffer: SourceBuffer, text: str) -> bytes:
    try:
        return text.encode(buffer.encoding)
    except UnicodeEncodeError as err:
        raise LocalcoderError(_unencodable(buffer, err)) from err


def _unencodable(buffer: SourceBuffer, err: UnicodeEncodeError) -> str:
    bad = err.object[err.start : err.end]
    return f"the completion has {bad!r}, which {buffer.encoding} cannot encode; nothing was written to {buffer.path}"
