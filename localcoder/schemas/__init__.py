"""The JSON Schemas of localcoder's `--json` documents, shipped with the package for editors and scripts.

Every `--json` output goes through `render.print_json(name, ...)` and starts with `"schema_version"`; its schema
is `localcoder/schemas/NAME.json` (JSON Schema 2020-12), where NAME is the command (`eval kld` is `kld`,
`pull` prints `convert`'s document, and the server's POST /infill answers with `complete`'s). A version is
bumped when a field is removed or changes meaning; fields may be added within a version, so readers should
ignore keys they do not know.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

SCHEMA_VERSION = 1
NAMES = ("bench", "chat", "complete", "context", "convert", "doctor", "eval", "inspect", "kld", "models", "verify")


def schema(name: str) -> dict[str, Any]:
    """The shipped schema of one document (a name from NAMES)."""
    if name not in NAMES:
        raise KeyError(name)
    return json.loads(resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8"))
