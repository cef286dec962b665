"""Which model `complete` uses (flag, LOCALCODER_MODEL, config.toml, the only one) and `localcoder models`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from localcoder import paths
from localcoder.errors import LocalcoderError
from localcoder.runtime import resolve_model


@pytest.fixture
def models_dir() -> Path:
    directory = paths.models_dir()
    directory.mkdir(parents=True)
    return directory


def test_flag_then_environment_then_config_then_the_only_model(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only = models_dir / "only.gguf"
    only.write_bytes(b"GGUF")
    assert resolve_model(None) == only
    other = models_dir / "other.gguf"
    other.write_bytes(b"GGUF")
    with pytest.raises(LocalcoderError, match="2 models"):
        resolve_model(None)
    (paths.home() / "config.toml").write_text('model = "other"\n')
    assert resolve_model(None) == other
    monkeypatch.setenv("LOCALCODER_MODEL", str(only))
    assert resolve_model(None) == only
    assert resolve_model("other.gguf") == other
    with pytest.raises(LocalcoderError, match="no such file"):
        resolve_model("missing")


def test_broken_config_is_a_clear_error(models_dir: Path) -> None:
    (paths.home() / "config.toml").write_text("model = \n")
    with pytest.raises(LocalcoderError, match="config.toml"):
        resolve_model(None)


def test_models_lists_converted_files(models_dir: Path, tiny_f32_gguf: Path) -> None:
    shutil.copy(tiny_f32_gguf, models_dir / "tiny.F32.gguf")
    result = subprocess.run(
        [sys.executable, "-m", "localcoder", "models", "--json"], capture_output=True, text=True, env=os.environ
    )
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)["models"]
    assert [(m["name"], m["family"], m["type"]) for m in listed] == [("tiny.F32", "codegen2.5", "ALL_F32")]
    text = subprocess.run([sys.executable, "-m", "localcoder", "models"], capture_output=True, text=True)
    assert "tiny.F32" in text.stdout and "codegen2.5" in text.stdout


def test_the_home_without_localcoder_home_is_the_platform_data_directory(monkeypatch, tmp_path) -> None:
    """platformdirs' per-user data directory: on Linux $XDG_DATA_HOME/localcoder, else ~/.local/share/localcoder."""
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("the XDG layout is Linux's")
    monkeypatch.delenv("LOCALCODER_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert paths.home() == tmp_path / "data" / "localcoder"
    assert paths.models_dir() == tmp_path / "data" / "localcoder" / "models"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert paths.home() == tmp_path / "me" / ".local" / "share" / "localcoder"
