"""`localcoder models`: the GGUF files in the model directory."""

from __future__ import annotations

import typer
from rich.table import Table

from localcoder import paths
from localcoder.cli._common import stdout, user_errors
from localcoder.gguf_info import read_gguf
from localcoder.render import human_bytes, human_count, to_json

EPILOG = """\
[bold]Examples[/]

  localcoder models
  localcoder models --json
  localcoder complete app.py:10 --model codegen25-7b-mono_P.Q4_K_M   [dim]# use one by name[/]
"""


def register(app: typer.Typer) -> None:
    app.command("models", epilog=EPILOG)(models_command)


@user_errors
def models_command(as_json: bool = typer.Option(False, "--json", help="Print the list as JSON.")) -> None:
    """List the converted models in the model directory (LOCALCODER_HOME/models)."""
    directory = paths.models_dir()
    summaries = [read_gguf(path) for path in sorted(directory.glob("*.gguf"))] if directory.is_dir() else []
    rows = [
        {
            "name": s.path.rsplit("/", 1)[-1].removesuffix(".gguf"),
            "path": s.path,
            "family": s.family,
            "prompt_format": s.prompt_format,
            "parameters": s.parameters,
            "type": s.file_type,
            "bytes": s.file_bytes,
        }
        for s in summaries
    ]
    if as_json:
        stdout.print(
            to_json({"directory": str(directory), "models": rows}), markup=False, highlight=False, soft_wrap=True
        )
        return
    if not rows:
        stdout.print(f"no models in {directory}; convert one with `localcoder convert`, or run `localcoder demo`")
        return
    table = Table(title=str(directory), title_justify="left")
    for column in ("name", "family", "parameters", "type", "size"):
        table.add_column(column, justify="right" if column in ("parameters", "size") else "left")
    for row in rows:
        table.add_row(
            row["name"],
            row["family"] or "-",
            human_count(row["parameters"]),
            row["type"] or "-",
            human_bytes(row["bytes"]),
        )
    stdout.print(table)
