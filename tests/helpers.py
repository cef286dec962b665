"""Helpers every test module may use: test modules import these (and tests/bigram.py, checkpoints.py, codegen1.py,
llama_server.py, server_run.py), never each other."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from localcoder import schemas

REPO = Path(__file__).resolve().parent.parent


def localcoder(
    *args: str | Path,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    columns: int | None = 200,
    preexec: Callable[[], Any] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m localcoder ARGS` in a child process, its output captured as text; `columns` sets COLUMNS (None:
    the suite's own). Every other runner below is this one with a command's usual options."""
    width = {"COLUMNS": str(columns)} if columns is not None else {}
    return subprocess.run(
        [sys.executable, "-m", "localcoder", *map(str, args)],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, **width, **(env or {})},
        preexec_fn=preexec,
        timeout=timeout,
    )


def run_cli(*args: str, preexec: Callable[[], Any] | None = None) -> subprocess.CompletedProcess[str]:
    """Any command on an 80-column terminal (where help text and tables wrap as a user sees them)."""
    return localcoder(*args, columns=80, preexec=preexec)


def run_complete(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`complete`; the bigram models answer after <mask_1>, so the prompt is split at the cursor by default."""
    layout = [] if "--prompt-layout" in args else ["--prompt-layout", "cursor"]
    return localcoder("complete", *args, *layout, stdin=stdin, timeout=120)


def run_chat(model: Path, script: str, *options: str) -> subprocess.CompletedProcess[str]:
    """A scripted, greedy `chat` session on `model`."""
    return localcoder(
        "chat", "--model", model, "--script", "-", "-t", "0", *options, stdin=script, timeout=120, columns=None
    )


def run_eval(*args: str | Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    return localcoder("eval", *args, env=env, timeout=timeout)


def summary_of(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The command failed with exactly one `error:` line holding every needle, and no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def assert_no_connection(server: socket.socket) -> None:
    """Nothing connected to the listener (it has a timeout set)."""
    with pytest.raises(TimeoutError):
        server.accept()[0].close()


def checked_document(name: str, text_or_value: str | dict[str, Any]) -> dict[str, Any]:
    """A `--json` document, parsed and validated against its shipped schema (localcoder/schemas/NAME.json)."""
    import jsonschema

    document = json.loads(text_or_value) if isinstance(text_or_value, str) else text_or_value
    jsonschema.Draft202012Validator(schemas.schema(name)).validate(document)
    return document


def make_venv(parent: Path, python: str | None = None) -> Path:
    """A virtual environment under `parent` (of `python`, else this interpreter's base) holding a copy of
    localcoder's code; returns its interpreter."""
    venv = parent / "venv"
    base = python or getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    interpreter = venv / "bin" / "python"
    site = subprocess.run([str(interpreter), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    for package in ("localcoder", "ggufkit"):
        shutil.copytree(REPO / package, Path(site) / package, ignore=shutil.ignore_patterns("__pycache__"))
    return interpreter
