"""Writing a user's file so that nothing is lost: beside it, flushed to disk, then renamed over it.

`edit.write_completion` (complete --write) and chat's /save write through `write_atomically`; a reader of the
path sees the old file or the new one, never a part. (The converter's own temp-then-rename lives in
convert/pipeline.py, because it streams gigabytes and must tell a Ctrl-C during the rename apart.)
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(
    target: Path,
    data: bytes,
    like: os.stat_result | None = None,
    before_rename: Callable[[], None] | None = None,
    mode: int | None = None,
) -> None:
    """Write `data` to a temporary file in `target`'s directory, fsync it, and rename it over `target`.

    `like`: the replaced file's stat, whose mode (and owner, where allowed) the new file keeps; without it the
    file gets the mode a new file would (0666 less the umask), not mkstemp's 0600; `mode` names it outright (0600
    for a cache that copies what private files say). `before_rename` is called
    last (edit.py checks there that no one saved the file meanwhile); what it raises propagates. An OSError
    propagates for the caller to word; the temporary file never stays behind.
    """
    directory = target.parent if str(target.parent) else Path(".")
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".localcoder-tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if mode is None:
                mode = stat.S_IMODE(like.st_mode) if like is not None else 0o666 & ~_umask()
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)
            else:  # Windows before 3.13
                os.chmod(temporary, mode)
            if like is not None and hasattr(os, "fchown") and (like.st_uid, like.st_gid) != (os.getuid(), os.getgid()):
                # Only root (or a group member) may do this; a file the user cannot chown still gets written.
                with contextlib.suppress(OSError):
                    os.fchown(handle.fileno(), like.st_uid, like.st_gid)
            os.fsync(handle.fileno())
        if before_rename is not None:
            before_rename()
        os.replace(temporary, target)
        temporary = None  # type: ignore[assignment]
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    _fsync_directory(directory)


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; best effort, since some platforms cannot open directories."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
