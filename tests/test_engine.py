"""`complete --engine`: localcoder builds the prompt, a separate OpenAI-completions engine process generates.

The engine is the real third-party one, `python -m llama_cpp.server` (tests/llama_server.py), on a free
loopback port with the same tiny bigram GGUF that the in-process runs load: text prompts with the sentinels
spelled out. What it cannot do is played by tests/engine_standin.py (llama-cpp-python's completion API behind a
stdlib server): token-id prompts (vLLM's schema), ignoring stops, and being slow, garbage or cut off.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from convert.pipeline import ConvertOptions, convert
from ggufkit.vocab.codegen25 import ENDOFTEXT_ID, codegen25_tokenizer
from tests.bigram import CHAT_CODE as CODE
from tests.bigram import GARBAGE, NEWLINE, bigram_model, chain_for, write_bigram_checkpoint
from tests.helpers import assert_one_line_error, run_chat, run_complete
from tests.llama_server import engine, free_port, llama_cpp_server

pytest.importorskip("llama_cpp")

COMPLETION = "return a + b"
STANDIN = Path(__file__).with_name("engine_standin.py")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bigram_model(tmp_path_factory.mktemp("bigram"), COMPLETION)


@pytest.fixture(scope="module")
def server(model: Path) -> Iterator[str]:
    """llama_cpp.server on the bigram GGUF, for the whole module."""
    with llama_cpp_server(model) as url:
        yield url


@pytest.fixture
def target(tmp_path: Path) -> str:
    path = tmp_path / "app.py"
    path.write_text("def add(a, b):\n    \n")
    return f"{path}:2:5"


def as_json(target: str, model: Path, *options: str) -> dict:
    result = run_complete(target, "--model", str(model), "--no-server", "--json", "--temperature", "0", *options)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_llama_cpp_server_gives_the_in_process_completion(model: Path, server: str, target: str) -> None:
    """auto sends token ids first; llama_cpp.server rejects them (HTTP 500, its schema) and gets text."""
    here = as_json(target, model)
    assert here["completion"] == COMPLETION and here["stop_reason"] == "eom"
    there = as_json(target, model, "--engine", server)
    assert there["completion"] == here["completion"]
    assert there["stop_reason"] == "eom"
    assert there["tokens"]["prompt"] == here["tokens"]["prompt"]
    assert there["engine"] == {"url": server, "model": None, "prompt": "text"}
    forced = as_json(target, model, "--engine", server, "--engine-prompt", "text")
    assert forced["completion"] == COMPLETION


@pytest.mark.parametrize(("mode", "kind"), [("ids", "ids"), ("nostop", "text")])
def test_standin_engine_gives_the_in_process_completion(model: Path, target: str, mode: str, kind: str) -> None:
    """Token ids (vLLM's schema), and an engine that ignores stops: localcoder's cut still ends at <eom>."""
    here = as_json(target, model)
    with engine(model, mode) as url:
        there = as_json(target, model, "--engine", url)
    assert there["completion"] == here["completion"]
    assert there["stop_reason"] == "eom"
    assert there["tokens"]["prompt"] == here["tokens"]["prompt"]
    assert there["engine"] == {"url": url, "model": None, "prompt": kind}  # auto: ids where taken, else text


def raw_completion(url: str, body: dict) -> str:
    """The text an engine streams for `body`, with no localcoder in between."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    text = ""
    for line in conn.getresponse().read().decode().splitlines():
        if line.startswith("data: {"):
            text += json.loads(line[6:])["choices"][0]["text"]
    return text


def test_eom_stops_the_engine_itself(model: Path, server: str) -> None:
    """llama_cpp.server parses "<mask_1>" in a text prompt as the sentinel (as text it is other tokens, and the
    bigram chain would not give COMPLETION), and the GGUF's end-of-generation set holds <eom>, so it stops there
    with no stop list; the negative control generates past it into the bigram chain's GARBAGE."""
    body = {"prompt": "<mask_1>", "max_tokens": 24, "temperature": 0.0, "stream": True}
    assert raw_completion(server, body) == COMPLETION
    spelled = dict(body, prompt="<mask_1 >")  # not the sentinel: the chain does not start
    assert not raw_completion(server, spelled).startswith(COMPLETION)
    with engine(model, "nostop") as url:
        past = raw_completion(url, body)
    garbage = codegen25_tokenizer().decode([GARBAGE])  # GARBAGE predicts itself
    assert past.startswith(COMPLETION + "<eom>" + garbage * 3)


def test_engine_down_slow_or_garbage_is_one_line_error(model: Path, target: str) -> None:
    down = run_complete(target, "--model", str(model), "--engine", f"http://127.0.0.1:{free_port()}")
    assert down.returncode != 0 and "not reachable" in down.stderr
    assert_one_line_error(down)
    with engine(model, "slow") as url:
        slow = run_complete(target, "--model", str(model), "--engine", url, "--engine-timeout", "1")
    assert slow.returncode != 0 and "did not answer within 1 s" in slow.stderr
    assert_one_line_error(slow)
    with engine(model, "garbage") as url:
        garbage = run_complete(target, "--model", str(model), "--engine", url)
    assert garbage.returncode != 0 and "not a completion stream" in garbage.stderr
    assert_one_line_error(garbage)
    with engine(model, "schema") as url:
        schema = run_complete(target, "--model", str(model), "--engine", url)
    assert schema.returncode != 0 and "not an OpenAI completion" in schema.stderr
    assert_one_line_error(schema)
    with engine(model, "cut") as url:
        cut = run_complete(target, "--model", str(model), "--engine", url)
    assert cut.returncode != 0 and "closed the stream midway" in cut.stderr
    assert_one_line_error(cut)
    with engine(model, "done") as url:  # cut short: the partial text is not taken for a completion
        done = run_complete(target, "--model", str(model), "--engine", url)
    assert done.returncode != 0 and "without a finish reason" in done.stderr
    assert_one_line_error(done)


@pytest.mark.parametrize("url", ["http://host:99999", "http://[::1", "http://a b", "ftp://host", "http://"])
def test_a_bad_engine_url_is_one_line_error(model: Path, target: str, url: str) -> None:
    bad = run_complete(target, "--model", str(model), "--engine", url)
    assert bad.returncode != 0 and "not an http(s) URL" in bad.stderr, bad.stderr
    assert_one_line_error(bad)


def test_text_only_engine_refuses_ids_when_asked_for_them(model: Path, server: str, target: str) -> None:
    forced = run_complete(target, "--model", str(model), "--engine", server, "--engine-prompt", "ids")
    assert forced.returncode != 0 and "rejects token-id prompts" in forced.stderr
    assert_one_line_error(forced)


def test_scripted_chat_through_an_engine_writes_the_same_program(tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("chat")
    chain = chain_for(CODE, start=NEWLINE, end=ENDOFTEXT_ID)  # each turn's prompt ends in "\n"
    checkpoint = write_bigram_checkpoint(directory / "checkpoint", chain)
    chat_gguf = convert(ConvertOptions(source=str(checkpoint), output=directory / "chat.gguf", outtype="f32")).output
    script = "print the answer\nprint it again\n"
    here = run_chat(chat_gguf, script, "--preamble", "mtpb")
    assert here.returncode == 0, here.stderr
    assert here.stdout.count(CODE) == 2
    with llama_cpp_server(chat_gguf) as url:
        there = run_chat(chat_gguf, script, "--preamble", "mtpb", "--engine", url)
    assert there.returncode == 0, there.stderr
    assert there.stdout == here.stdout


def chat_template_gguf(directory: Path, code: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bigram GGUF with a chat template (each message's content on its line) that answers every turn `code`."""
    from gguf import GGUFWriter

    add_eom = GGUFWriter.add_eom_token_id

    def with_template(self: GGUFWriter, token: int) -> None:
        add_eom(self, token)
        self.add_chat_template("{% for m in messages %}{{ m['content'] }}\n{% endfor %}")

    with monkeypatch.context() as patched:
        patched.setattr(GGUFWriter, "add_eom_token_id", with_template)
        checkpoint = write_bigram_checkpoint(directory / "checkpoint", chain_for(code, start=NEWLINE, end=ENDOFTEXT_ID))
        return convert(ConvertOptions(source=str(checkpoint), output=directory / "t.gguf", outtype="f32")).output


def test_chat_template_turns_go_to_the_engine_also_after_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GGUF here answers "print(42)", the engine's "print(7)": which one speaks shows where each turn ran.
    /model swaps the GGUF here (its tokenizer and template) and keeps the engine."""
    here = chat_template_gguf(tmp_path / "here", CODE, monkeypatch)
    there = chat_template_gguf(tmp_path / "there", "print(7)", monkeypatch)
    assert run_chat(here, "print the answer\n").stdout.count(CODE) == 1  # alone, the GGUF here answers
    with llama_cpp_server(there) as url:
        done = run_chat(here, f"print the answer\n/model {here}\nprint it again\n", "--engine", url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("print(7)") == 2 and CODE not in done.stdout, done.stdout + done.stderr
