"""Prompt-lookup decoding (--lookup) changes speed, never the tokens."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bigram import bigram_model

pytest.importorskip("llama_cpp")

COPIED = '    assert isinstance(payload, dict), "expected a mapping for the loader config"'
FILE = f"def load(payload):\n{COPIED}\n    return payload\n\n\ndef save(payload):\n    \n    return payload\n"


def complete_json(model: Path, path: Path, *options: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "localcoder", "complete", f"{path}:7", "--model", str(model), "--json", "--no-server"]
        + ["--prompt-layout", "cursor", "--temperature", "0", "--scope", "line", *options],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_lookup_gives_the_same_completion(tmp_path: Path) -> None:
    model = bigram_model(tmp_path / "model", COPIED.strip())  # the model copies a line from above the cursor
    path = tmp_path / "app.py"
    path.write_text(FILE)
    plain = complete_json(model, path)
    assert plain["completion"] == COPIED.strip()
    for lookup in ("4", "10"):
        drafted = complete_json(model, path, "--lookup", lookup)
        assert drafted["completion"] == plain["completion"]
        assert drafted["tokens"]["generated"] == plain["tokens"]["generated"]
