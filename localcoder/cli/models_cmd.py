"""`localcoder models`: the GGUF files in the model directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from localcoder import paths
from localcoder.cli._common import stdout, user_errors
from localcoder.errors import LocalcoderError
from localcoder.gguf_info import read_gguf
from localcoder.models import default_model, is_default
from localcoder.render import print_json, render_models
from localcoder.runtime import local_models

EPILOG = """\
[bold]Examples[/]

  localcoder models
  localcoder models --json
  localcoder rm old-model                 [dim]# remove one by name[/]
  localcoder complete app.py:10 --model codegen25-7b-mono_P.Q4_K_M   [dim]# use one by name[/]
"""


def register(app: typer.Typer) -> None:
    app.command("models", epilog=EPILOG)(models_command)


@user_errors
def models_command(as_json: bool = typer.Option(False, "--json", help="Print the list as JSON.")) -> None:
    """List the converted models in the model directory (LOCALCODER_HOME/models); broken files are marked, and
    the default (the one `complete` and `chat` use with no --model) is starred."""
    directory = paths.models_dir()
    default = default_model()
    rows = [_row(path) for path in local_models()]
    for row in rows:
        row["default"] = is_default(Path(row["path"]), default)
    document = {
        "directory": str(directory),
        "default": default.name if default else None,
        "default_source": default.source if default else None,
        "default_missing": default is not None and default.path is None,
        "models": rows,
    }
    if as_json:
        print_json("models", document)
    else:
        render_models(stdout, document)


def _row(path: Path) -> dict[str, Any]:
    """One file's entry; a file that cannot be read (a dangling symlink, not a GGUF) gets `error` instead."""
    row: dict[str, Any] = {"name": path.name.removesuffix(".gguf"), "path": str(path), "error": None}
    try:
        summary = read_gguf(path) if path.exists() else None
    except LocalcoderError as exc:
        return {**row, "error": str(exc).removeprefix(f"{path}: ").removeprefix(f"{path} ")}
    except Exception as exc:  # gguf's reader on a crafted file: one bad file must not hide the others
        return {**row, "error": f"not a valid GGUF file ({type(exc).__name__})"}
    if summary is None:
        return {**row, "error": "a symlink to nothing" if path.is_symlink() else "no such file"}
    return {
        **row,
        "family": summary.family,
        "prompt_format": summary.prompt_format,
        "parameters": summary.parameters,
        "type": summary.file_type,
        "bytes": summary.file_bytes,
    }
