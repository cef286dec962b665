"""`localcoder models` marks the default (env, config.toml, the only file; a missing one is shown) and
`localcoder rm` removes by name, only inside the model directory."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from localcoder import paths
from tests.helpers import localcoder


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return localcoder(*args, timeout=60, columns=None)


@pytest.fixture
def models_dir() -> Path:
    directory = paths.models_dir()
    directory.mkdir(parents=True)
    return directory


def listing() -> dict:
    result = cli("models", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def defaults(document: dict) -> list[str]:
    return [row["name"] for row in document["models"] if row["default"]]


def test_models_marks_the_default_for_each_source(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (models_dir / "a.gguf").write_bytes(b"GGUF")
    only = listing()
    assert (only["default"], only["default_source"], defaults(only)) == ("a", "only-file", ["a"])
    (models_dir / "b.gguf").write_bytes(b"GGUF")
    none = listing()
    assert (none["default"], defaults(none)) == (None, [])  # negative control: two files, no setting
    (paths.home() / "config.toml").write_text('model = "b"\n')
    config = listing()
    assert (config["default"], config["default_source"], defaults(config)) == ("b", "config", ["b"])
    monkeypatch.setenv("LOCALCODER_MODEL", "a.gguf")
    env = listing()
    assert (env["default_source"], defaults(env)) == ("env", ["a"])
    table = cli("models")
    starred = [line for line in table.stdout.splitlines() if "*" in line and "default" not in line]
    assert len(starred) == 1 and " a " in starred[0], table.stdout


def test_models_shows_a_missing_configured_default(models_dir: Path) -> None:
    (models_dir / "a.gguf").write_bytes(b"GGUF")
    (paths.home() / "config.toml").write_text('model = "gone"\n')
    document = listing()
    assert (document["default"], document["default_missing"], defaults(document)) == ("gone", True, [])
    text = cli("models")
    assert "default model gone (from config.toml) is missing" in text.stdout


def test_rm_removes_by_name_with_or_without_suffix(models_dir: Path) -> None:
    for name in ("a", "b", "c"):
        (models_dir / f"{name}.gguf").write_bytes(b"GGUF")
    assert cli("rm", "a").returncode == 0
    assert cli("rm", "b.gguf").returncode == 0
    assert sorted(p.name for p in models_dir.iterdir()) == ["c.gguf"]


def test_rm_refuses_paths_outside_and_keeps_symlink_targets(models_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.gguf"
    outside.write_bytes(b"GGUF")
    (models_dir / "link.gguf").symlink_to(outside)
    for name in ("../outside", str(outside), "../../outside.gguf", ".hidden"):
        result = cli("rm", name)
        assert result.returncode == 1 and result.stderr.startswith("error:"), (name, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert outside.exists()
    removed = cli("rm", "link")
    assert removed.returncode == 0, removed.stderr
    assert "symlink" in removed.stdout
    assert not (models_dir / "link.gguf").is_symlink() and outside.read_bytes() == b"GGUF"


def test_rm_unknown_name_suggests_close_ones(models_dir: Path) -> None:
    (models_dir / "codegen25-7b-mono_P.Q4_K_M.gguf").write_bytes(b"GGUF")
    result = cli("rm", "codegen25-7b-mono_P.Q4_K_S")
    assert result.returncode == 1
    assert "no model codegen25-7b-mono_P.Q4_K_S" in result.stderr and "codegen25-7b-mono_P.Q4_K_M" in result.stderr


def test_rm_keeps_the_configured_default_unless_yes(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (models_dir / "a.gguf").write_bytes(b"GGUF")
    (models_dir / "b.gguf").write_bytes(b"GGUF")
    monkeypatch.setenv("LOCALCODER_MODEL", "a")
    refused = cli("rm", "a")
    assert refused.returncode == 1 and "default model" in refused.stderr and "--yes" in refused.stderr
    assert (models_dir / "a.gguf").exists()
    assert cli("rm", "b").returncode == 0  # not the default: no question
    forced = cli("rm", "a", "--yes")
    assert forced.returncode == 0 and "was the default" in forced.stderr
    assert not (models_dir / "a.gguf").exists()


def test_rm_help_reads_as_prose() -> None:
    shown = cli("rm", "--help")
    assert shown.returncode == 0 and "Examples" in shown.stdout and "--yes" in shown.stdout, shown.stderr
