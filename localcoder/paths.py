"""Where localcoder keeps things: LOCALCODER_HOME, else the platform's per-user data directory (platformdirs:
~/.local/share/localcoder or $XDG_DATA_HOME/localcoder on Linux, ~/Library/Application Support/localcoder on
macOS, %LOCALAPPDATA%\\localcoder on Windows).

Resolved at call time, never at import time, so tests and users can point LOCALCODER_HOME elsewhere.

The cache holds what localcoder copied out of the user's files (the context index keeps every line's identifiers,
also those of 0600 files), so its folders are 0700 and its files 0600; `private_folder` makes them so, and
tightens a folder an older version made looser.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600


def home() -> Path:
    """LOCALCODER_HOME, else the platform's per-user data directory."""
    configured = os.environ.get("LOCALCODER_HOME")
    if configured:
        return Path(configured).expanduser()
    import platformdirs  # imported only when LOCALCODER_HOME is unset

    return Path(platformdirs.user_data_dir("localcoder", appauthor=False))


def cache_dir() -> Path:
    """What localcoder can rebuild (the repository-context index): LOCALCODER_HOME/cache, else the platform's."""
    configured = os.environ.get("LOCALCODER_HOME")
    if configured:
        return Path(configured).expanduser() / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir("localcoder", appauthor=False))


def models_dir() -> Path:
    """Where converted GGUF files go by default and where later commands look for them."""
    return home() / "models"


def demo_dir() -> Path:
    return home() / "demo"


def private_folder(*parts: str) -> Path:
    """cache_dir()/parts..., each level from the cache folder down made (or tightened) to 0700; OSError when a
    level cannot be made. The folders above the cache folder (~/.cache) are not localcoder's: left as they are."""
    folder = cache_dir()
    folder.parent.mkdir(parents=True, exist_ok=True)
    for level in ("", *parts):
        folder = folder / level if level else folder
        folder.mkdir(exist_ok=True, mode=PRIVATE_FOLDER)
        tighten(folder, PRIVATE_FOLDER)
    return folder


def tighten(path: Path, mode: int) -> None:
    """Take from a path of the user's the permissions `mode` does not give (what an older version left looser)."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        return
    if stat.S_IMODE(info.st_mode) & ~mode:
        os.chmod(path, stat.S_IMODE(info.st_mode) & mode)
