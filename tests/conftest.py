from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from convert.synthetic import LlamaShape
from tests.checkpoints import TinySpec, save_checkpoint
from tests.references import humaneval_prompts, stdlib_texts, tiktoken_encoding  # noqa: F401  (shared fixtures)

TINY = TinySpec(LlamaShape(hidden=64, intermediate=128, layers=2, heads=4))


def pytest_configure(config: pytest.Config) -> None:
    """Children that the Ctrl-C tests interrupt must see SIGINT: a shell that starts the suite in the background
    sets it to ignored, and an ignored signal stays ignored across exec, so Python in the child would never raise
    KeyboardInterrupt. A handled signal is reset to the default in the child instead."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's model directory or Hugging Face cache."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("LOCALCODER_HOME", str(home / "localcoder"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LOCALCODER_SERVER", "off")  # a developer's own running server must not answer tests
    # What a resident server's context holds is tested here, not how fast a loaded 2-core runner finds it: the
    # deadline's own tests give theirs explicitly (tests/test_repo_trust.py), the rest a generous one.
    monkeypatch.setenv("LOCALCODER_CONTEXT_MS", "5000")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default tiny CodeGen2.5 checkpoint: 3 .bin shards, index, rotary buffers, poisoned tokenizer code."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return save_checkpoint(TINY, tmp_path_factory.mktemp("tiny") / "codegen25-tiny")


def cli_env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200"}


@pytest.fixture(scope="session")
def tiny_f32_gguf(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from convert.pipeline import ConvertOptions, convert

    out = tmp_path_factory.mktemp("f32") / "tiny.F32.gguf"
    return convert(ConvertOptions(source=str(tiny_checkpoint), output=out, outtype="f32")).output


@pytest.fixture
def listener():
    """A local TCP listener that sandboxed programs must not reach."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    yield server
    server.close()


@pytest.fixture
def os_sandbox():
    """The OS sandbox (bwrap on Linux) that runs generated programs. Without it, the tests that need it skip
    locally and FAIL in CI (CI set; see pytest_runtest_call), where a green run must mean the boundary was
    tested. `make test` installs it."""
    from localcoder import sandbox

    found = sandbox.status()
    if not found.available and not os.environ.get("CI"):
        pytest.skip(f"needs the OS sandbox: {found.detail}; {found.hint}")
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    found = getattr(item, "funcargs", {}).get("os_sandbox")
    if found is not None and not found.available:
        pytest.fail(f"needs the OS sandbox: {found.detail}; {found.hint} (CI is set: this fails, not skips)")
