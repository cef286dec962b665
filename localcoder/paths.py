"""Where localcoder keeps things: LOCALCODER_HOME, else the platform's per-user data directory (platformdirs:
~/.local/share/localcoder or $XDG_DATA_HOME/localcoder on Linux, ~/Library/Application Support/localcoder on
macOS, %LOCALAPPDATA%\\localcoder on Windows).

Resolved at call time, never at import time, so tests and users can point LOCALCODER_HOME elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path


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
