"""`localcoder doctor`: a health report of this installation."""

from __future__ import annotations

from typing import Optional

import typer

from localcoder.cli._common import stdout, user_errors
from localcoder.doctor import diagnose
from localcoder.render import print_json, render_doctor
from localcoder.server.client import server_url

EPILOG = """\
[bold]Examples[/]

  localcoder doctor
  localcoder doctor --json
  localcoder doctor --server http://127.0.0.1:8788
"""


def register(app: typer.Typer) -> None:
    app.command("doctor", epilog=EPILOG)(doctor_command)


@user_errors
def doctor_command(
    server: Optional[str] = typer.Option(None, "--server", help="Server URL to check (default: LOCALCODER_SERVER)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Report the llama.cpp build (GPU offload or not), threads, model directory, the OS sandbox and server status."""
    report = diagnose(server_url(server, False)[0])
    if as_json:
        print_json("doctor", report)
    else:
        render_doctor(stdout, report)
    if not report.ok:
        raise typer.Exit(1)
