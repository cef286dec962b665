"""`localcoder pull`: the real huggingface_hub client downloads a tiny CodeGen2.5 repo from a stand-in Hub
(tests/hub_standin.py), the real converter quantizes it into the model directory under a friendly name, and an
interrupted download resumes with a Range request instead of starting over."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from convert.synthetic import SHAPES, write_codegen25_checkpoint
from localcoder import paths
from tests.helpers import checked_document, localcoder
from tests.hub_standin import REPO_ID, running_hub

NAME = f"{REPO_ID.split('/')[1]}.Q4_K_M"


@pytest.fixture(scope="module")
def repo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("hub") / "repo"
    write_codegen25_checkpoint(directory, SHAPES["tiny"])
    return directory


def largest_weights(directory: Path) -> str:
    return max((p for p in directory.iterdir() if p.suffix == ".bin"), key=lambda p: p.stat().st_size).name


def cli(*args: str, hub_url: str = "http://127.0.0.1:9", **env: str) -> subprocess.CompletedProcess[str]:
    environment = {"HF_ENDPOINT": hub_url, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1", **env}
    return localcoder(*args, env=environment, columns=None)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    return last


def test_pull_downloads_converts_and_is_the_default(repo_dir: Path) -> None:
    big = largest_weights(repo_dir)
    with running_hub(repo_dir, {big: 1}) as hub:  # one dropped connection midway: the client resumes it
        result = cli("pull", REPO_ID, "--json", hub_url=hub.url)
    assert result.returncode == 0, result.stderr
    assert hub.gets(big)[0] is None and hub.gets(big)[1].startswith("bytes="), hub.gets(big)
    assert int(hub.gets(big)[1].removeprefix("bytes=").rstrip("-")) > 0  # resumed, not restarted
    assert not any(path.endswith("README.md") for _, path, _ in hub.log)  # only what the converter reads
    report = checked_document("convert", result.stdout)["result"]
    target = paths.models_dir() / f"{NAME}.gguf"
    assert report["output"] == str(target) and report["file_type"] == "Q4_K_M"
    assert sorted(p.name for p in paths.models_dir().iterdir()) == [target.name]  # no f16 intermediate left
    listed = json.loads(cli("models", "--json").stdout)
    assert listed["default"] == NAME and [row["default"] for row in listed["models"]] == [True]
    shown = cli("inspect", str(target), "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["family"] == "codegen2.5", shown.stdout

    again = cli("pull", REPO_ID, hub_url=hub.url)  # the hub is gone now: the name check comes first
    assert "already in" in one_line_error(again) and "--force" in again.stderr


def test_a_failed_pull_resumes_on_the_next_run(repo_dir: Path) -> None:
    """huggingface_hub resumes a dropped file with Range within a run and drops a file it gave up on; what
    finished stays in its cache, so the next run fetches only the rest."""
    big = largest_weights(repo_dir)
    with running_hub(repo_dir, {big: 1000}) as hub:  # every attempt at this file is cut
        failed = cli("pull", REPO_ID, "--quant", "f16", "--name", "tiny", hub_url=hub.url)
        assert "could not fetch" in one_line_error(failed)
        assert not paths.models_dir().exists() or not any(paths.models_dir().iterdir())
        snapshot = next(Path(os.environ["HF_HOME"]).rglob("snapshots/*"))
        kept = {p.name for p in snapshot.iterdir() if p.suffix == ".bin"}
        assert kept and big not in kept, "the failed run kept the files it finished"
        first_run = len(hub.log)
        hub.cuts.clear()
        done = cli("pull", REPO_ID, "--quant", "f16", "--name", "tiny", hub_url=hub.url)
    assert done.returncode == 0, done.stderr
    fetched = {path.rsplit("/", 1)[1] for method, path, _ in hub.log[first_run:] if method == "GET" and ".bin" in path}
    assert big in fetched and not fetched & kept, (fetched, kept)
    assert (paths.models_dir() / "tiny.gguf").is_file()


def test_pull_refuses_bad_names_and_repos_before_downloading(repo_dir: Path, tmp_path: Path) -> None:
    paths.models_dir().mkdir(parents=True)
    (paths.models_dir() / "taken.gguf").write_bytes(b"GGUF")
    with running_hub(repo_dir) as hub:
        for args, expected in (
            (("pull", REPO_ID, "--name", "taken"), "already in"),
            (("pull", REPO_ID, "--name", "../escape"), "not a model name"),
            (("pull", REPO_ID, "--name", ".hidden"), "not a model name"),
            (("pull", "./some/dir"), "not a Hugging Face repo id"),
            (("pull", REPO_ID, "--quant", "Q9_Z"), "unknown quantization type"),
        ):
            assert expected in one_line_error(cli(*args, hub_url=hub.url)), args
        assert not any(method == "GET" and "/resolve/" in path for method, path, _ in hub.log)
        missing = cli("pull", "Salesforce/no-such-repo", hub_url=hub.url)
        assert "no such repo" in one_line_error(missing)
    assert (paths.models_dir() / "taken.gguf").read_bytes() == b"GGUF"
    assert sorted(p.name for p in paths.models_dir().iterdir()) == ["taken.gguf"]
    assert not (tmp_path.parent / "escape.gguf").exists()


def test_pull_offline_without_the_cache_says_so() -> None:
    result = cli("pull", REPO_ID, HF_HUB_OFFLINE="1")
    assert "not in the local Hugging Face cache" in one_line_error(result)
