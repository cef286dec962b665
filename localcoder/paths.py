"""Where localcoder keeps things: flag, then environment, then the platform's user dirs.

Resolved at call time, never at import time, so tests and users can point
LOCALCODER_HOME elsewhere.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def home() -> Path:
    """LOCALCODER_HOME, else the platform's per-user data directory."""
    configured = os.environ.get("LOCALCODER_HOME")
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "localcoder"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "localcoder"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "localcoder"


def models_dir() -> Path:
    """Where converted GGUF files go by default and where later commands look for them."""
    return home() / "models"


def demo_dir() -> Path:
    return home() / "demo"
