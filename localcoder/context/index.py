"""The on-disk index of a repository's files for the similar-code windows: each file's identifiers, line by line.

Kept per root under the user cache directory (localcoder.paths.cache_dir()/context/), keyed by each file's path,
size and mtime, so a cold `complete` or `context` reads only the files that changed since the index was saved
(and the few whose windows it shows). Built incrementally: a file enters when a search first reads it. Saving
re-reads the index on disk and merges it, then replaces it atomically: two processes may save at once, and
neither sees a torn file; the later one wins for a file both changed, and both entries are valid. Saving runs on
its own thread: a request never waits for it.

The index copies what the user's files say (each line's identifiers, from 0600 files too): its files are 0600 in
0700 folders (localcoder.paths.private_folder), and a looser file or folder left by an older version is tightened
when it is next saved.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcoder.files import write_atomically

try:
    import fcntl
except ImportError:  # Windows: saves may race; the file is still replaced atomically, never torn
    fcntl = None  # type: ignore[assignment]
from localcoder.paths import PRIVATE_FILE, cache_dir, private_folder, tighten

INDEX_VERSION = 1
CACHE_FOLDER = "context"
Entry = tuple[int, int, list[list[str]]]  # size, mtime_ns, each line's identifiers


@dataclass
class DiskIndex:
    root: Path  # resolved
    entries: dict[str, Entry] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _saving: bool = field(default=False, repr=False)

    @property
    def path(self) -> Path:
        digest = hashlib.sha256(str(self.root).encode("utf-8", "surrogateescape")).hexdigest()[:24]
        return cache_dir() / CACHE_FOLDER / f"{digest}.json"

    @classmethod
    def load(cls, root: Path) -> DiskIndex:
        index = cls(root)
        index.entries = _read(index.path, root)
        if index.entries:  # an index an older version saved 0644 in a 0755 folder is made private when found
            with contextlib.suppress(OSError):
                private_folder(CACHE_FOLDER)
                tighten(index.path, PRIVATE_FILE)
        return index

    def get(self, relative: str, size: int, mtime_ns: int) -> list[set[str]] | None:
        entry = self.entries.get(relative)
        if entry is None or (entry[0], entry[1]) != (size, mtime_ns):
            return None
        return [set(line) for line in entry[2]]

    def has(self, relative: str, size: int, mtime_ns: int) -> bool:
        entry = self.entries.get(relative)
        return entry is not None and (entry[0], entry[1]) == (size, mtime_ns)

    def put(self, relative: str, size: int, mtime_ns: int, sets: list[set[str]]) -> None:
        with self._lock:
            self.entries[relative] = (size, mtime_ns, [sorted(line) for line in sets])
            self.changed.add(relative)

    def save(self) -> None:
        """Write the changed entries on a thread of their own, so that no request waits while a large index is
        merged and written (about 1 s for 20,000 files); a one-shot process waits for it as it exits (the thread
        is not a daemon). One saver at a time per index: changes made meanwhile go with its next round."""
        with self._lock:
            if not self.changed or self._saving:
                return
            self._saving = True
        try:
            private_folder(CACHE_FOLDER)  # here: the cache folder is where this process's settings put it now
        except OSError:
            with self._lock:
                self._saving = False
            return  # a cache that cannot be written is only slower next time
        threading.Thread(target=self._save_rounds, args=(self.path,), name="localcoder-index-save").start()

    def _save_rounds(self, path: Path) -> None:
        while True:
            with self._lock:
                pending = {name: self.entries[name] for name in self.changed}
                self.changed = set()
                if not pending:
                    self._saving = False
                    return
            _merge_into(path, self.root, pending)


def _merge_into(path: Path, root: Path, pending: dict[str, Entry]) -> None:
    """Merge with what another process may have saved meanwhile, then replace the file atomically."""
    try:
        with _locked(path.with_suffix(".lock")):
            merged = _read(path, root)
            merged.update(pending)
            document = {"version": INDEX_VERSION, "root": str(root), "files": merged}
            write_atomically(path, json.dumps(document, separators=(",", ":")).encode("utf-8"), mode=PRIVATE_FILE)
    except OSError:
        return  # a cache that cannot be written is only slower next time


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One saver at a time (where the platform has flock), so that no merge is lost; readers never wait."""
    with os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE), "a+b") as handle:
        tighten(path, PRIVATE_FILE)
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _read(path: Path, root: Path) -> dict[str, Entry]:
    try:
        document: Any = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict) or document.get("version") != INDEX_VERSION or document.get("root") != str(root):
        return {}
    files = document.get("files")
    if not isinstance(files, dict):
        return {}
    entries = {}
    for name, entry in files.items():
        if isinstance(entry, list) and len(entry) == 3 and isinstance(entry[2], list):
            entries[name] = (int(entry[0]), int(entry[1]), entry[2])
    return entries


def stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns
