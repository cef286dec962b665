"""`localcoder complete` end to end on deterministic tiny models (see tests/bigram.py) and real llama.cpp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bigram import bigram_model
from tests.helpers import assert_one_line_error, run_complete

pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory):
    cache: dict[str, Path] = {}

    def model_for(completion: str) -> Path:
        if completion not in cache:
            cache[completion] = bigram_model(tmp_path_factory.mktemp("bigram"), completion)
        return cache[completion]

    return model_for


def completion_of(model: Path, target: str, *options: str) -> tuple[str, dict]:
    """The streamed text and the --json result for the same request; they must agree."""
    streamed = run_complete(target, "--model", str(model), *options)
    assert streamed.returncode == 0, streamed.stderr
    as_json = run_complete(target, "--model", str(model), "--json", *options)
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout)
    assert streamed.stdout == result["completion"] + "\n"
    assert "GARBAGE" not in streamed.stdout + as_json.stdout
    return streamed.stdout[:-1], result


def source(tmp_path: Path, text: str, name: str = "app.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BLOCK_FILE = "def f(x):\n    \n\nprint(f(2))\n"
ONE_LINE = "x = 1\n"
# Distinct tokens (a bigram chain cannot repeat one); the last line dedents below the block.
DEDENTING = "y = x * 2\n\n    return y\nprint(z)"


def test_stops_at_the_end_of_middle_sentinel(models, tmp_path: Path) -> None:
    model = models("y = x * 2\n    return y")
    text, result = completion_of(model, f"{source(tmp_path, BLOCK_FILE)}:2", "--scope", "full")
    assert text == "y = x * 2\n    return y"
    assert result["stop_reason"] == "eom"
    assert result["tokens"]["generated"] == 9
    assert result["cursor"] == {"line": 2, "col": 5, "offset": 14}
    assert result["prompt_format"] == "codegen-infill"


def test_max_tokens_cuts_generation(models, tmp_path: Path) -> None:
    model = models("y = x * 2\n    return y")
    text, result = completion_of(model, f"{source(tmp_path, BLOCK_FILE)}:2", "--max-tokens", "3")
    assert text == "y = x" and result["stop_reason"] == "max_tokens"


def test_block_scope_stops_at_a_dedent_below_the_cursor(models, tmp_path: Path) -> None:
    model = models(DEDENTING)
    text, result = completion_of(model, f"{source(tmp_path, BLOCK_FILE)}:2")
    assert result["scope"] == "block"
    assert text == "y = x * 2\n\n    return y"
    assert result["stop_reason"] == "scope"
    full, _ = completion_of(model, f"{source(tmp_path, BLOCK_FILE)}:2", "--scope", "full")
    assert full == DEDENTING


def test_block_scope_stops_at_a_blank_line_followed_by_a_dedent(models, tmp_path: Path) -> None:
    model = models("for n in data:\n        count += 1\n\n    return sum")
    path = source(tmp_path, "def f(data):\n    count = 0\n    \n")
    text, _ = completion_of(model, f"{path}:3")
    assert text == "for n in data:\n        count += 1"


def test_line_scope_mid_line(models, tmp_path: Path) -> None:
    model = models("a, b]\nprint(c)")
    path = source(tmp_path, "result = compute(\n")
    text, result = completion_of(model, f"{path}:1")
    assert result["scope"] == "line" and text == "a, b]"


def test_a_tail_repeating_the_suffix_is_dropped(models, tmp_path: Path) -> None:
    path = source(tmp_path, "value = compute()\n")
    text, _ = completion_of(models("a, b)"), f"{path}:1:17")
    assert text == "a, b"
    path = source(tmp_path, "def f(x):\n    \n    return y\n", "multi.py")
    text, _ = completion_of(models("y = x * 2\n    return y"), f"{path}:2", "--scope", "full")
    assert text == "y = x * 2"


def test_write_inserts_exactly_the_completion(models, tmp_path: Path) -> None:
    path = tmp_path / "crlf.py"
    path.write_bytes(BLOCK_FILE.replace("\n", "\r\n").encode())
    result = run_complete(f"{path}:2", "--model", str(models(DEDENTING)), "--write")
    assert result.returncode == 0, result.stderr
    assert path.read_bytes() == b"def f(x):\r\n    y = x * 2\r\n\r\n    return y\r\n\r\nprint(f(2))\r\n"


def test_diff_and_alternatives(models, tmp_path: Path) -> None:
    path = source(tmp_path, BLOCK_FILE)
    model = models(DEDENTING)
    result = run_complete(f"{path}:2", "--model", str(model), "--diff", "-n", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("+++ b/") == 2
    assert "+    y = x * 2\n+\n+    return y\n" in result.stdout
    assert path.read_text() == BLOCK_FILE  # --diff never writes
    data = json.loads(run_complete(f"{path}:2", "--model", str(model), "--json", "-n", "3", "--seed", "7").stdout)
    assert [a["completion"] for a in data["alternatives"]] == ["y = x * 2\n\n    return y"] * 3


def test_stdin_buffer_for_editors(models) -> None:
    model = models("y = x * 2\n    return y")
    result = run_complete("-", "--line", "2", "--model", str(model), "--json", stdin=BLOCK_FILE)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["completion"] == "y = x * 2\n    return y"


def test_a_file_longer_than_the_window_is_trimmed(models, tmp_path: Path) -> None:
    lines = [f"value_{i} = {i}\n" for i in range(400)]
    path = source(tmp_path, "".join(lines[:200]) + "def f(x):\n    \n" + "".join(lines[200:]))
    _, result = completion_of(models("y = x * 2\n    return y"), f"{path}:202", "--ctx", "256", "--max-tokens", "32")
    assert result["completion"] == "y = x * 2\n    return y"
    assert result["trimmed_lines"]["above"] > 0 and result["trimmed_lines"]["below"] > 0
    assert result["tokens"]["prompt"] <= 256 - 32


def test_empty_file_is_allowed(models, tmp_path: Path) -> None:
    text, _ = completion_of(models("import os"), f"{source(tmp_path, '')}:1")
    assert text == "import os"


@pytest.mark.parametrize(
    "make, needles",
    [
        (lambda d: f"{d / 'missing.py'}:1", ["missing.py"]),
        (lambda d: f"{d}:1", ["directory"]),
        (lambda d: f"{source(d, ONE_LINE)}:9", ["line 9", "1 line"]),
        (lambda d: f"{source(d, ONE_LINE)}:0", ["positive integer"]),
        (lambda d: f"{source(d, ONE_LINE)}:1:99", ["column 99"]),
    ],
)
def test_bad_targets(make, needles, models, tmp_path: Path) -> None:
    assert_one_line_error(run_complete(make(tmp_path), "--model", str(models("import os"))), *needles)


def test_binary_and_non_utf8_files(models, tmp_path: Path) -> None:
    model = str(models("import os"))
    (tmp_path / "blob.py").write_bytes(b"\x00\x01\x02binary")
    assert_one_line_error(run_complete(f"{tmp_path / 'blob.py'}:1", "--model", model), "binary")
    (tmp_path / "latin.py").write_bytes("x = 'café'\n".encode("latin-1"))
    assert_one_line_error(run_complete(f"{tmp_path / 'latin.py'}:1", "--model", model), "UTF-8", "--encoding")
    ok = run_complete(f"{tmp_path / 'latin.py'}:1", "--model", model, "--encoding", "latin-1")
    assert ok.returncode == 0, ok.stderr


def test_bad_models(tmp_path: Path) -> None:
    path = source(tmp_path, "x = 1\n")
    assert_one_line_error(
        run_complete(f"{path}:1", "--model", str(tmp_path / "none.gguf")), "no such file", "localcoder convert"
    )
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model")
    assert_one_line_error(run_complete(f"{path}:1", "--model", str(junk)), "not a GGUF")
    assert_one_line_error(run_complete(f"{path}:1"), "no model yet", "localcoder convert")


def test_write_refuses_read_only_files_and_leaves_them_alone(models, tmp_path: Path) -> None:
    path = source(tmp_path, BLOCK_FILE)
    path.chmod(0o444)
    result = run_complete(f"{path}:2", "--model", str(models("y = x * 2\n    return y")), "--write")
    assert_one_line_error(result, "read-only")
    assert path.read_text() == BLOCK_FILE
