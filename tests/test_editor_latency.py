"""Work an editor has moved past never delays the next keystroke: the real `localcoder serve` over real sockets.

Bounds are in prompt tokens and batches, not seconds: a request whose client left reads less than one batch
(prompt_read.READ_BATCH) of its prompt, and what the cache holds after it is exact (the next completion equals
a fresh server's, token for token).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from ggufkit.vocab.codegen25 import codegen25_tokenizer
from localcoder.bench import sample_source
from localcoder.completion.prompt_read import READ_BATCH
from tests.bigram import GARBAGE, bigram_model, chain_for
from tests.server_run import Server, open_stream, post_head, read_to_end, running_server

pytest.importorskip("llama_cpp")

SERVE = ("--ctx", "2048", "--keep-alive", "-1")


def llama_body(prefix: str, **extra: object) -> dict:
    """llama.vim's FIM request: greedy, so the answer depends only on the model and the prompt."""
    return {"input_prefix": prefix, "prompt": "", "input_suffix": "\n", "n_predict": 8, "temperature": 0, **extra}


def long_prefix() -> str:
    text, line = sample_source(20)
    return "".join(text.splitlines(keepends=True)[: line - 1])


def send_and_close(server: Server, path: str, body: dict) -> None:
    """A client that sends its request and hangs up before any answer (the user typed on)."""
    payload = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(post_head(path, len(payload)) + payload)


def cached_tokens(server: Server) -> int:
    return server.request("GET", "/health")[1]["models"][0]["cache"]["tokens"][0]


@pytest.mark.parametrize(("path", "body_of"), [("/infill", llama_body), ("/v1/completions", None)])
def test_a_client_that_hangs_up_frees_the_model_before_its_prompt_is_read(tiny_f32_gguf: Path, path, body_of):
    prefix = long_prefix()
    if body_of is None:
        body_of = lambda text: {"prompt": text, "suffix": "\n", "max_tokens": 8, "temperature": 0}  # noqa: E731
    abandoned, wanted = body_of(prefix), body_of(prefix + "    x")
    with running_server("--model", str(tiny_f32_gguf), *SERVE) as server:
        send_and_close(server, path, abandoned)
        line = server.wait_for_log("generation cancelled")
        assert cached_tokens(server) < READ_BATCH  # old code: all of the ~650-token prompt, then a token
        assert "cancelled after reading 0 prompt tokens" in line, line
        status, answer = server.post(path, wanted)
        assert status == 200, answer
    with running_server("--model", str(tiny_f32_gguf), *SERVE) as fresh:
        status, fresh_answer = fresh.post(path, wanted)
        assert status == 200 and same_completion(fresh_answer, answer)


def same_completion(fresh: dict, served: dict) -> bool:
    """The completion's text and token counts, whatever the ids, clocks and cache figures."""

    def text(body: dict) -> tuple:
        if "choices" in body:
            return body["choices"][0]["text"], body["usage"]["completion_tokens"], body["usage"]["prompt_tokens"]
        return body["content"], body["tokens_predicted"], body["tokens_evaluated"]

    return text(fresh) == text(served)


# -- typing through a suggestion -------------------------------------------------------------------------------

SUGGESTION = "total = a + b\n    return total"  # two lines, each token once (a bigram chain)
ABOVE = "import os\nimport sys\n\n\nSCALE = 2\n\n\ndef f(a, b):\n"  # eight lines: the cursor starts line 9
BELOW = "\n\nprint(f(2, 3))\n"


@pytest.fixture(scope="module")
def typing_server(tmp_path_factory: pytest.TempPathFactory):
    model = bigram_model(tmp_path_factory.mktemp("suggest"), SUGGESTION)
    with running_server("--model", str(model), *SERVE) as server:
        yield server


def typed_body(typed: str, n_predict: int = 32) -> dict:
    """llama.vim after typing `typed` at the cursor: whole lines go to input_prefix, the cursor's line to prompt."""
    cut = typed.rfind("\n") + 1
    return {
        "input_prefix": ABOVE + typed[:cut],
        "prompt": typed[cut:],
        "input_suffix": BELOW,
        "n_predict": n_predict,
        "temperature": 0,
    }


def test_typing_through_a_multi_line_suggestion_answers_its_rest_exactly(typing_server):
    status, first = typing_server.post("/infill", typed_body(""))
    assert status == 200 and first["content"] == SUGGESTION and first["timings"]["prompt_n"] > 0
    for typed in ("tot", "total = a", "total = a + b\n    ret"):
        status, answer = typing_server.post("/infill", typed_body(typed))
        assert status == 200 and answer["content"] == SUGGESTION[len(typed) :], (typed, answer)
        assert answer["timings"]["prompt_n"] == 0 and answer["typed_through"] is True  # nothing read
        assert answer["stop_type"] == "eos"  # the suggestion ended at <eom>, and so does its rest
    status, other = typing_server.post("/infill", typed_body("totally"))  # not the suggestion: the model runs
    assert status == 200 and other["typed_through"] is False and other["timings"]["prompt_n"] > 0


def test_typing_through_a_suggestion_cut_by_its_budget_goes_on_generating(typing_server):
    tokens = chain_for(SUGGESTION)[1:-2]  # the suggestion's tokens, between <mask_1> and <eom>
    piece = codegen25_tokenizer().decode
    status, first = typing_server.post("/infill", typed_body("", n_predict=3))
    assert status == 200 and first["content"] == piece(tokens[:3]) and first["stop_type"] == "limit"
    status, answer = typing_server.post("/infill", typed_body("total", n_predict=3))
    # " = a" is the rest (2 tokens), then one more token from the KV state the first request left
    assert status == 200 and answer["content"] == piece(tokens[:4])[len("total") :], answer
    assert answer["tokens_predicted"] == 3 and answer["timings"]["prompt_n"] == 0 and answer["typed_through"]


def test_typing_through_with_a_smaller_budget_answers_only_as_many_tokens(typing_server):
    tokens = chain_for(SUGGESTION)[1:-2]
    piece = codegen25_tokenizer().decode
    assert typing_server.post("/infill", typed_body(""))[1]["content"] == SUGGESTION
    status, answer = typing_server.post("/infill", typed_body("tot", n_predict=2))  # "tot" is inside token 1
    assert status == 200 and answer["typed_through"] and answer["content"] == piece(tokens[:2])[3:], answer
    assert answer["tokens_predicted"] == 2 and answer["stop_type"] == "limit"


def test_openai_completions_type_through_too(typing_server):
    body = {"prompt": ABOVE, "suffix": BELOW, "max_tokens": 32, "temperature": 0}
    assert typing_server.post("/v1/completions", body)[1]["choices"][0]["text"] == SUGGESTION
    status, answer = typing_server.post("/v1/completions", {**body, "prompt": ABOVE + "total = a + b\n"})
    assert status == 200 and answer["choices"][0]["text"] == "    return total", answer
    assert answer["usage"]["prompt_tokens_details"]["cached_tokens"] == answer["usage"]["prompt_tokens"]


# -- superseding ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def endless(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model that never writes <eom>: a request runs to its n_predict unless something stops it."""
    return bigram_model(tmp_path_factory.mktemp("endless"), "x = 1", end=GARBAGE)


@pytest.mark.parametrize("path", ["/infill", "/v1/completions"])
def test_a_newer_request_for_the_same_slot_supersedes_the_one_in_flight(endless: Path, path: str):
    def body(who: object, tokens: int) -> dict:
        if path == "/infill":
            return {**llama_body("def f():\n", id_slot=who), "n_predict": tokens}
        return {"prompt": "def f():\n", "suffix": "\n", "max_tokens": tokens, "temperature": 0, "user": who}

    same, other = (0, 1) if path == "/infill" else ("ann", "bob")
    with running_server("--model", str(endless), *SERVE) as server:
        older, received = open_stream(server, path, body(same, 1024))  # many seconds of tokens on this machine
        status, newer = server.post(path, body(same, 8))
        assert status == 200
        events = read_to_end(older, received)
        last = events[-2] if path == "/v1/completions" else events[-1]
        assert (last["superseded"] is True) if path == "/infill" else (last["choices"][0]["finish_reason"] == "stop")
        streamed = "".join(e.get("content", "") if path == "/infill" else e["choices"][0]["text"] for e in events[:-2])
        assert len(streamed) < 1024  # stopped long before its n_predict (a token is one character or more)
        server.wait_for_log("superseded by a newer request")
        # Another client's request is not superseded: both run to their end, first come first served.
        first, received = open_stream(server, path, body(same, 24))
        status, second = server.post(path, body(other, 8))
        assert status == 200
        events = read_to_end(first, received)
        assert not any(isinstance(e, dict) and e.get("superseded") for e in events)
        stats = server.request("GET", "/health")[1]["cache"]
        assert stats["superseded"] == 1 and stats["ms_for_nobody"] > 0


def streamed(received: bytes) -> str:
    """The text of the whole events received so far on a llama-server stream."""
    events = [line[6:] for line in received.decode().split("\n")[:-1] if line.startswith("data: ")]
    return "".join(json.loads(event).get("content", "") for event in events if event != "[DONE]")


def test_typing_into_the_suggestion_being_generated_waits_for_it_and_types_through(endless: Path):
    """The user types what the stream shows while it is still coming: no superseding; the rest, at once."""
    older_body = {**llama_body("def f():\n", id_slot=0), "n_predict": 1024}  # seconds of tokens here
    with running_server("--model", str(endless), *SERVE) as server:
        older, received = open_stream(server, "/infill", older_body)
        while len(streamed(received)) < 3:
            received += older.recv(65536)
        typed = streamed(received)[:3]
        status, newer = server.post("/infill", {**older_body, "prompt": typed})  # sent while the older streams
        events = read_to_end(older, received)
        assert not events[-1].get("superseded") and events[-1]["tokens_predicted"] == 1024  # the older ran to its end
        whole = "".join(e.get("content", "") for e in events)
        assert status == 200 and newer["typed_through"] is True, newer
        assert newer["content"].startswith(whole[len(typed) :]), newer  # its rest, then on from its KV state
        assert server.request("GET", "/health")[1]["cache"]["superseded"] == 0


def test_no_supersede_serves_first_come_first_served(endless: Path):
    with running_server("--model", str(endless), *SERVE, "--no-supersede") as server:
        older, received = open_stream(server, "/infill", {**llama_body("def f():\n", id_slot=0), "n_predict": 40})
        status, newer = server.post("/infill", {**llama_body("def f():\n", id_slot=0), "n_predict": 8})
        events = read_to_end(older, received)
        assert status == 200 and events[-1]["tokens_predicted"] == 40 and not events[-1].get("superseded")


def test_localcoders_own_infill_supersedes_by_path_and_answers_409(endless: Path):
    def body(tokens: int) -> dict:
        text = "def f():\n    \n"
        return {"text": text, "line": 2, "path": "app.py", "scope": "full", "max_tokens": tokens, "temperature": 0}

    with running_server("--model", str(endless), *SERVE) as server:
        older, received = open_stream(server, "/infill", body(1024))
        status, newer = server.post("/infill", body(4))
        assert status == 200 and newer["tokens"]["generated"] == 4
        events = read_to_end(older, received)
        assert events[-2]["error"]["code"] == 409 and events[-1] == "[DONE]"
        status, unnamed = server.post("/infill", {**body(4), "path": None})  # names no file: supersedes nothing
        assert status == 200


@pytest.mark.parametrize("prefetch", [True, False])
def test_prefetch_reads_where_accepting_the_suggestion_leads(tmp_path: Path, prefetch: bool):
    """The model card's cursor layout: accepting a suggestion moves the split, so without look-ahead the next
    request re-reads from the cursor on (the control); with --prefetch at most its last token."""
    model = bigram_model(tmp_path, SUGGESTION)
    body = {"prompt": ABOVE, "suffix": BELOW, "max_tokens": 32, "temperature": 0, "prompt_layout": "cursor"}
    options = ("--prefetch",) if prefetch else ()
    with running_server("--model", str(model), *SERVE, *options) as server:
        assert server.post("/v1/completions", body)[1]["choices"][0]["text"] == SUGGESTION
        if prefetch:
            server.wait_for_log("prefetch: read")
        # top_k 1 is greedy too, but another sampling: not typed through, so the model reads the prompt
        status, accepted = server.post("/v1/completions", {**body, "prompt": ABOVE + SUGGESTION, "top_k": 1})
    usage = accepted["usage"]
    read = usage["prompt_tokens"] - usage["prompt_tokens_details"]["cached_tokens"]
    assert status == 200 and (read <= 1 if prefetch else read > 4), usage
