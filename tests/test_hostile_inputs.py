"""Untrusted input meets the parsers: any input gets a result or a one-line error, never a traceback, a hang or a
blow-up. Property-based (hypothesis) for the cursor/target parser, the server's request parsers and the torch
pickle reader; crafted pickles that once hung the reader run in a child process with a time limit.
"""

from __future__ import annotations

import io
import json
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from convert.checkpoint.torch_bin import read_torch_bin, write_torch_bin
from convert.errors import ConvertError
from localcoder.errors import LocalcoderError
from localcoder.server import ollama_api, openai_api
from localcoder.server.fields import BadRequest, check_unicode
from localcoder.server.routes import parse_infill, parse_show
from localcoder.source import parse_target, read_source_bytes, resolve_target
from localcoder.terminal import escape_controls, print_untrusted

# Modest: the machine is small and shared. No deadline: a slow example is reported by the size bound below.
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
request_keys = st.sampled_from(
    [
        "text", "line", "col", "path", "scope", "n", "temperature", "top_p", "max_tokens", "seed", "prompt_layout",
        "model", "stream", "context", "prompt", "suffix", "stop", "logprobs", "echo", "best_of", "input_prefix",
        "input_suffix", "input_extra", "n_predict", "options", "keep_alive", "raw", "name", "n_indent", "t_max_ms",
    ]
)
request_bodies = st.dictionaries(request_keys, json_values, max_size=8) | json_values


@FEW
@given(target=st.text(max_size=40), line=st.none() | st.text(max_size=6), col=st.none() | st.text(max_size=6))
def test_any_target_is_a_position_or_a_one_line_error(target: str, line: str | None, col: str | None) -> None:
    for stdin in (False, True):
        try:
            path, cursor_line, cursor_col = resolve_target(target or None, line, col, stdin, lambda _path: False)
        except LocalcoderError as exc:
            assert "\n" not in str(exc) and str(exc)
            continue
        assert path and cursor_line >= 1 and (cursor_col is None or cursor_col >= 1)


def test_bad_positions_get_the_same_message(tmp_path: Path) -> None:
    real = tmp_path / "f.py"
    real.write_text("x\n")
    messages = []
    for tail in ("0", "-1", "abc", "+3"):
        with pytest.raises(LocalcoderError) as caught:
            parse_target(f"{real}:{tail}", lambda path: Path(path).exists())
        messages.append(str(caught.value))
    assert all(message.startswith("LINE must be a positive integer, got ") for message in messages), messages
    assert parse_target("weird:name.py") == ("weird:name.py", None, None)  # no such file: all of it is the path


@FEW
@given(body=request_bodies)
def test_any_request_body_parses_or_is_a_bad_request(body) -> None:
    for parse in (parse_infill, openai_api.parse_completion, ollama_api.parse_generate, parse_show):
        try:
            parse(body)
        except BadRequest as exc:
            assert 400 <= exc.status < 500 and "\n" not in str(exc)


@FEW
@given(raw=st.binary(max_size=2000) | st.text(max_size=500).map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_any_body_bytes_are_json_or_a_bad_request(raw: bytes) -> None:
    """What http.py does with a body before a route sees it: decode, parse, refuse lone surrogates."""
    started = time.perf_counter()
    try:
        body = json.loads(raw.decode("utf-8"))
        check_unicode(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, BadRequest):
        return
    finally:
        assert time.perf_counter() - started < 1 + len(raw) / 1e5  # generous: about linear in the size
    compact = json.dumps(body, ensure_ascii=False).encode("utf-8")  # what an answer may echo: encodable
    assert compact


def test_lone_surrogates_and_deep_nesting_are_bad_requests() -> None:
    with pytest.raises(BadRequest, match="lone surrogate"):
        check_unicode(json.loads('{"text": "a\\ud800b", "line": 1}'))
    check_unicode(json.loads('{"text": "\\ud83d\\ude00"}'))  # a pair is a real character
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(RecursionError):
        json.loads(deep)  # http.py turns this into a 400; tests/test_hardening.py checks the answer


@FEW
@given(data=st.binary(max_size=4000))
def test_any_source_bytes_decode_or_fail_in_one_line(data: bytes) -> None:
    try:
        buffer = read_source_bytes(data)
    except LocalcoderError as exc:
        assert "\n" not in str(exc)
        return
    assert "\r" not in buffer.text


# -- the torch pickle reader ----------------------------------------------------------------------------------


def archive_with(path: Path, data_pkl: bytes, storages: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        for key, data in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", data)
    return path


def valid_pickle(tmp_path: Path) -> bytes:
    path = tmp_path / "valid.bin"
    write_torch_bin(path, {"w": np.arange(6, dtype=np.float32).reshape(2, 3)})
    with zipfile.ZipFile(path) as archive:
        return archive.read(next(name for name in archive.namelist() if name.endswith("data.pkl")))


def read_or_fail(path: Path) -> None:
    try:
        records = read_torch_bin(path)
    except ConvertError as exc:
        assert "\n" not in str(exc)
        return
    assert all(isinstance(name, str) for name in records)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values, protocol=st.integers(0, 5))
def test_any_pickled_value_is_a_state_dict_or_a_one_line_error(tmp_path: Path, value, protocol: int) -> None:
    started = time.perf_counter()
    read_or_fail(archive_with(tmp_path / "any.bin", pickle.dumps(value, protocol=protocol)))
    assert time.perf_counter() - started < 10


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6))
def test_a_damaged_state_dict_pickle_is_read_or_refused(tmp_path: Path, flips) -> None:
    data = bytearray(valid_pickle(tmp_path))
    for position, byte in flips:
        data[position % len(data)] = byte
    started = time.perf_counter()
    read_or_fail(archive_with(tmp_path / "damaged.bin", bytes(data), {"0": bytes(24)}))
    assert time.perf_counter() - started < 10


def tuple_tower_key(levels: int) -> bytes:
    """{t: 0} where t = (t', t'), t' = (t'', t''), ...: a few hundred bytes whose hash takes 2**levels steps."""
    tower = b"".join(b"q\x01h\x01\x86" for _ in range(levels))  # BINPUT 1, BINGET 1, TUPLE2
    return b"\x80\x02}K\x00" + tower + b"K\x00s."


def list_tower_persistent_id(levels: int) -> bytes:
    """A persistent id l = [l', l'], ...: printing it takes 2**levels characters."""
    tower = b"".join(b"q\x010(h\x01h\x01l" for _ in range(levels))  # BINPUT 1, POP, MARK, BINGET 1 twice, LIST
    return b"\x80\x02}K\x00" + tower + b"Qs."


def run_reader(path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; from pathlib import Path; from convert.checkpoint.torch_bin import read_torch_bin\n"
        "from convert.errors import ConvertError\n"
        "try:\n    read_torch_bin(Path(sys.argv[1]))\nexcept ConvertError as exc:\n    print(exc)\n"
    )
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (tuple_tower_key(120), "dictionary key that is a tuple"),
        (list_tower_persistent_id(80), "unknown persistent object"),
        (b"\x80\x02" + b"(" * 100_000 + b".", "nested more than"),
        (b"\x80\x02}" + b"(" * 10 + b"\x8f" + b".", "a set"),
    ],
    ids=["tuple-tower-key", "list-tower-persistent-id", "deep-marks", "set"],
)
def test_crafted_pickles_are_refused_at_once(tmp_path: Path, data: bytes, needle: str) -> None:
    done = run_reader(archive_with(tmp_path / "crafted.bin", data))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert needle in done.stdout and len(done.stdout.splitlines()) == 1, done.stdout


def test_ctrl_c_stops_the_pickle_reader(tmp_path: Path) -> None:
    """A long (legal) pickle: the reader's loop runs in Python, so SIGINT lands between opcodes."""
    big = io.BytesIO()
    big.write(b"\x80\x02]")  # EMPTY_LIST, then appends of one small int each
    big.write(b"K\x01a" * 10_000_000)
    big.write(b".")
    path = archive_with(tmp_path / "long.bin", big.getvalue())
    code = "import sys; from pathlib import Path; from convert.checkpoint.torch_bin import read_torch_bin\n"
    code += "print('reading', flush=True); read_torch_bin(Path(sys.argv[1]))"
    child = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"reading\n"
    time.sleep(0.3)
    child.send_signal(signal.SIGINT)
    try:
        _, stderr = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        pytest.fail("the reader ignored Ctrl-C")
    assert child.returncode != 0 and b"KeyboardInterrupt" in stderr


def test_a_state_dict_with_metadata_is_read(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    torch.save(module.state_dict(), tmp_path / "sd.bin")  # an OrderedDict with _metadata, as torch.save writes it
    assert sorted(read_torch_bin(tmp_path / "sd.bin")) == ["0.bias", "0.weight", "1.bias", "1.weight"]


# -- printing user text -----------------------------------------------------------------------------------------


def test_untrusted_text_is_printed_as_text() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=200, emoji=False, color_system=None)
    hostile = "pages/[id].py [/x] [bold]b[/] :x: \x1b]0;title\x07\x1b[2J\x9b done"
    print_untrusted(console, hostile)
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b" not in shown and "\x07" not in shown and "\x9b" not in shown
    assert "pages/[id].py [/x] [bold]b[/] :x: \\x1b]0;title\\x07\\x1b[2J\\x9b done" in shown
    assert escape_controls("tab\tand\nnewline") == "tab\tand\nnewline"


def test_output_at_the_run_limit_says_it_was_cut() -> None:
    console = Console(file=io.StringIO(), width=200, emoji=False)
    print_untrusted(console, "x" * 1000, cut_at=1000)
    assert "output cut at 1,000 bytes" in console.file.getvalue()  # type: ignore[attr-defined]
    console = Console(file=io.StringIO(), width=200, emoji=False)
    print_untrusted(console, "x" * 999, cut_at=1000)
    assert "cut" not in console.file.getvalue()  # type: ignore[attr-defined]
