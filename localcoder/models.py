"""The model directory: which model is the default (and why), and removing one by name.

The default is the model `complete`/`chat` use with no --model: LOCALCODER_MODEL, then `model = "..."` in
config.toml, then the only GGUF in the model directory (see runtime.resolve_model).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from localcoder import paths
from localcoder.errors import LocalcoderError
from localcoder.runtime import configured_model, find_by_name, local_models


@dataclass(frozen=True)
class Default:
    """The default model: `name` as configured (or the file's stem), its `path` if it resolves, and `source`
    (env, config or only-file)."""

    name: str
    source: str
    path: Path | None


def default_model() -> Default | None:
    """The default model, or None when there is none (no setting and not exactly one GGUF)."""
    setting = configured_model()
    if setting is not None:
        value, source = setting
        return Default(value, source, find_by_name(value))
    found = local_models()
    if len(found) == 1:
        return Default(found[0].name.removesuffix(".gguf"), "only-file", found[0])
    return None


def is_default(path: Path, default: Default | None) -> bool:
    if default is None or default.path is None:
        return False
    return os.path.abspath(path) == os.path.abspath(default.path)


def check_name(name: str) -> None:
    """A model name is a file name in the model directory: no path separators, not hidden, printable."""
    if (
        not name
        or "/" in name
        or "\\" in name
        or name.startswith(".")
        or Path(name).is_absolute()
        or not name.isprintable()
        or len(name.encode()) > 200
    ):
        raise LocalcoderError(f"{name!r} is not a model name (no paths: a name from `localcoder models`)")


def locate(name: str) -> Path:
    """The file in the model directory called `name` (with or without .gguf); never anything outside it."""
    directory = paths.models_dir()
    check_name(name)
    for candidate in (directory / f"{name}.gguf", directory / name):
        if candidate.name.endswith(".gguf") and (candidate.is_symlink() or candidate.is_file()):
            return candidate
    names = [p.name.removesuffix(".gguf") for p in directory.glob("*.gguf")] if directory.is_dir() else []
    close = difflib.get_close_matches(name.removesuffix(".gguf"), names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; see `localcoder models` ({directory})"
    raise LocalcoderError(f"no model {name} in {directory}{hint}")


@dataclass(frozen=True)
class Removed:
    path: Path
    was_symlink: bool
    was_default: Default | None


def remove_model(name: str, *, allow_default: bool) -> Removed:
    """Remove the model `name` from the model directory: a symlink loses only the link, never its target.
    The configured default (env/config) is refused unless `allow_default`."""
    path = locate(name)
    default = default_model()
    was_default = default if is_default(path, default) else None
    if was_default is not None and was_default.source != "only-file" and not allow_default:
        where = "LOCALCODER_MODEL" if was_default.source == "env" else f"config.toml ({paths.home()})"
        raise LocalcoderError(f"{path.name} is the default model (set by {where}); pass --yes to remove it anyway")
    was_symlink = path.is_symlink()
    path.unlink()
    return Removed(path, was_symlink, was_default)
