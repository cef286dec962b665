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

from localcoder.bench import sample_source
from localcoder.completion.prompt_read import READ_BATCH
from tests.server_run import Server, running_server

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
        head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path.encode(), len(payload))
        connection.sendall(head + payload)


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
        assert "cancelled after reading 0 prompt tokens" in line, line
        assert cached_tokens(server) < READ_BATCH  # old code: the whole ~1,500-token prompt, then one token
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
