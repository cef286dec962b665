"""`serve --engine`: every protocol answered through a real OpenAI-compatible engine exactly as by a local model.

The engine is llama-cpp-python's own server (`python -m llama_cpp.server`, tests/llama_server.py) on the bigram
GGUF, started once for the module; its log (uvicorn's access lines) shows the requests that reached it. A local
`serve` on the same GGUF gives the answers to match. The engine that goes down and comes back, and the one that
is slow or garbled, get their own (the standin plays the latter: tests/engine_standin.py).
"""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localcoder.server.pool import Busy, FairLock
from tests.bigram import bigram_model
from tests.helpers import assert_one_line_error, localcoder
from tests.llama_server import engine, free_port, llama_cpp_server
from tests.server_run import Server, post_head, running_server

pytest.importorskip("llama_cpp")

COMPLETION = "return a + b"
PREFIX, SUFFIX = "def add(a, b):\n    ", "\n\nprint(add(1, 2))\n"
ENGINE_POST = '"POST /v1/completions HTTP/1.1" 200'


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bigram_model(tmp_path_factory.mktemp("bigram"), COMPLETION)


@pytest.fixture(scope="module")
def engine_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engine") / "llama_cpp.server.log"


@pytest.fixture(scope="module")
def engine_url(model: Path, engine_log: Path) -> Iterator[str]:
    with llama_cpp_server(model, log_path=engine_log) as url:
        yield url


@pytest.fixture(scope="module")
def local(model: Path) -> Iterator[Server]:
    with running_server("--model", str(model)) as server:
        yield server


@pytest.fixture(scope="module")
def served(model: Path, engine_url: str) -> Iterator[Server]:
    with running_server("--model", str(model), "--engine", engine_url, "--parallel", "4") as server:
        yield server


def engine_requests(log: Path) -> int:
    return log.read_text(errors="replace").count(ENGINE_POST)


def infill_bodies(prefix: str = PREFIX, tokens: int = 24) -> dict[str, tuple[str, dict[str, Any]]]:
    """One request per protocol for a cursor after `prefix` (the prompt split at the cursor: the bigram chain)."""
    cursor = {"prompt_layout": "cursor", "temperature": 0}
    text = prefix + SUFFIX
    return {
        "openai": ("/v1/completions", {"prompt": prefix, "suffix": SUFFIX, "max_tokens": tokens, **cursor}),
        "llama-server": (
            "/infill",
            {"input_prefix": prefix, "input_suffix": SUFFIX, "prompt": "", "n_predict": tokens, **cursor},
        ),
        "localcoder": ("/infill", {"text": text, "line": prefix.count("\n") + 1, "max_tokens": tokens, **cursor}),
        "ollama": (
            "/api/generate",
            {"model": "bigram", "prompt": prefix, "suffix": SUFFIX, "stream": False, "raw": False}
            | {"options": {"temperature": 0, "num_predict": tokens}, "prompt_layout": "cursor"},
        ),
    }


def answer_of(protocol: str, body: Any) -> Any:
    """What must be equal between two servers: the text and how it ended, not clocks or cache counts."""
    if protocol == "openai":
        choice = body["choices"][0]
        return choice["text"], choice["finish_reason"], body["usage"]["prompt_tokens"], body["model"]
    if protocol == "llama-server":
        return body["content"], body["stop_type"], body["tokens_evaluated"], body["tokens_predicted"], body["model"]
    if protocol == "localcoder":
        tokens = {key: value for key, value in body["tokens"].items() if key != "cached"}
        kept = {key: value for key, value in body.items() if key not in ("timings_ms", "cache_slot")}
        return kept | {"tokens": tokens}
    return body["response"], body["done_reason"], body["prompt_eval_count"], body["eval_count"], body["model"]


def streamed_text(protocol: str, server: Server, path: str, body: dict[str, Any]) -> str:
    if protocol == "ollama":
        return "".join(chunk["response"] for chunk in server.ndjson(path, {**body, "stream": True}))
    events = [event for event in server.events(path, body) if event != "[DONE]"]
    if protocol == "openai":
        return "".join(event["choices"][0]["text"] for event in events)
    if protocol == "llama-server":
        return "".join(event["content"] for event in events)
    return "".join(event.get("text", "") for event in events)


@pytest.mark.parametrize("protocol", ["openai", "llama-server", "localcoder", "ollama"])
def test_each_protocol_answers_through_the_engine_as_with_a_local_model(
    protocol: str, served: Server, local: Server, engine_log: Path
) -> None:
    path, body = infill_bodies()[protocol]
    before = engine_requests(engine_log)
    status, here = local.post(path, body)
    assert status == 200, here
    status, there = served.post(path, body)
    assert status == 200, there
    assert answer_of(protocol, there) == answer_of(protocol, here)
    # The positive control: the model ran. With the prompt split at the cursor (OpenAI's and localcoder's
    # prompt_layout) the bigram chain gives COMPLETION; the stable layout (the others) gives its garbage token.
    assert (COMPLETION if protocol in ("openai", "localcoder") else "GGGG") in json.dumps(answer_of(protocol, there))
    assert streamed_text(protocol, served, path, body) == streamed_text(protocol, local, path, body)
    assert engine_requests(engine_log) == before + 2  # the engine generated both: the plain and the streamed one


def test_four_clients_at_once_are_all_answered_exactly(served: Server, local: Server, engine_log: Path) -> None:
    prefixes = [f"# client {n}\n{PREFIX}" for n in range(4)]  # four files: nothing is typed through
    requests = [infill_bodies(prefix)["openai"] for prefix in prefixes]
    expected = [local.post(path, body)[1]["choices"][0]["text"] for path, body in requests]
    assert expected == [COMPLETION] * 4
    before = engine_requests(engine_log)
    answers: list[Any] = [None] * 4

    def ask(index: int) -> None:
        answers[index] = served.post(*requests[index])

    threads = [threading.Thread(target=ask, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [status for status, _ in answers] == [200] * 4, answers
    assert [body["choices"][0]["text"] for _, body in answers] == expected
    assert engine_requests(engine_log) == before + 4
    status, health = served.request("GET", "/health")
    assert health["engine"]["state"] == "up" and health["engine"]["in_flight"] == 0
    assert health["engine"]["parallel"] == 4


def test_typing_through_answers_from_the_engines_suggestion_without_asking_it(
    served: Server, engine_log: Path
) -> None:
    prefix = f"# typed\n{PREFIX}"
    path, body = infill_bodies(prefix)["openai"]
    status, first = served.post(path, body)
    assert status == 200 and first["choices"][0]["text"] == COMPLETION
    before = engine_requests(engine_log)
    status, typed = served.post(path, {**body, "prompt": prefix + "retu"})
    assert status == 200 and typed["choices"][0]["text"] == "rn a + b"
    served.wait_for_log("typed through the last suggestion, model not run")
    assert engine_requests(engine_log) == before  # the engine was not asked


def test_a_warm_up_puts_the_prompt_in_the_engines_cache(served: Server, engine_log: Path) -> None:
    """llama.vim's n_predict 0: nothing to generate for the client; one token on the engine, thrown away."""
    before = engine_requests(engine_log)
    path, body = infill_bodies("# warm\n" + PREFIX)["llama-server"]
    status, answer = served.post(path, {**body, "n_predict": 0})
    assert status == 200 and answer["content"] == "" and answer["tokens_evaluated"] > 0
    assert engine_requests(engine_log) == before + 1


def test_the_bundled_codegen25_tokenizer_replaces_the_gguf(model: Path, engine_url: str, tmp_path: Path) -> None:
    """`complete --engine` with `--model codegen25-tokenizer`: no GGUF here, the same prompt and answer."""
    target = tmp_path / "app.py"
    target.write_text(PREFIX + SUFFIX)
    common = (f"{target}:2:5", "--json", "--no-server", "--temperature", "0", "--prompt-layout", "cursor")
    with_gguf = localcoder("complete", *common, "--model", str(model), "--engine", engine_url, timeout=120)
    assert with_gguf.returncode == 0, with_gguf.stderr
    bundled = localcoder("complete", *common, "--model", "codegen25-tokenizer", "--engine", engine_url, timeout=120)
    assert bundled.returncode == 0, bundled.stderr
    a, b = json.loads(with_gguf.stdout), json.loads(bundled.stdout)
    assert a["completion"] == b["completion"] == COMPLETION
    assert a["tokens"]["prompt"] == b["tokens"]["prompt"] and b["model"].endswith("codegen25-tokenizer.gguf")
    # Without an engine there are no weights to run: one line, not a llama.cpp failure.
    alone = localcoder("complete", *common, "--model", "codegen25-tokenizer", timeout=120)
    assert_one_line_error(alone, "tokenizer without weights", "--engine")


def test_with_an_engine_only_the_vocabulary_is_loaded(model: Path) -> None:
    from localcoder.completion.backends import EngineBackend
    from localcoder.completion.engine import Engine
    from localcoder.runtime import load_model

    loaded = load_model(model, backend=EngineBackend(Engine("http://127.0.0.1:9")))
    assert loaded.llm.model_params.vocab_only and loaded.format.name == "codegen-infill"
    assert loaded.vocab.tokenize("<mask_1>") == [51199] and loaded.n_ctx == 2048
    local = load_model(model)
    assert not local.llm.model_params.vocab_only  # the control: without an engine the weights are loaded


def test_a_stopped_engine_gives_each_request_a_502_and_a_restarted_one_answers(model: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running_server("--model", str(model), "--engine", url, "--engine-timeout", "10") as server:
        with llama_cpp_server(model, port=port):
            path, body = infill_bodies()["openai"]
            status, answer = server.post(path, body)
            assert status == 200 and answer["choices"][0]["text"] == COMPLETION
            assert server.request("GET", "/health")[1]["engine"]["state"] == "up"
        for protocol, (path, body) in infill_bodies("# down\n" + PREFIX).items():
            status, failed = server.post(path, body)
            assert status == 502, (protocol, failed)
            message = failed["error"] if protocol == "ollama" else failed["error"]["message"]
            assert "not reachable" in message and url in message and "\n" not in message
        events = server.events("/v1/completions", infill_bodies("# stream\n" + PREFIX)["openai"][1])
        assert "not reachable" in events[0]["error"]["message"] and events[0]["error"]["code"] == 502
        status, health = server.request("GET", "/health")
        assert status == 200 and health["engine"]["state"] == "down" and "not reachable" in health["engine"]["error"]
        with llama_cpp_server(model, port=port):
            status, answer = server.post(*infill_bodies("# back\n" + PREFIX)["openai"])
            assert status == 200 and answer["choices"][0]["text"] == COMPLETION
            assert server.request("GET", "/health")[1]["engine"]["state"] == "up"


@pytest.mark.parametrize(("mode", "needle"), [("slow", "did not answer within 1 s"), ("garbage", "not a completion")])
def test_a_slow_or_garbled_engine_gives_a_502_with_one_line(model: Path, mode: str, needle: str) -> None:
    with engine(model, mode) as url, running_server(
        "--model", str(model), "--engine", url, "--engine-timeout", "1"
    ) as server:
        status, failed = server.post(*infill_bodies()["llama-server"])
        assert status == 502 and needle in failed["error"]["message"], failed
        status, health = server.request("GET", "/health")
        assert status == 200 and health["status"] == "ok"  # serve is still up


@dataclass
class Relayed:
    """One connection through the relay: did the engine finish its completion (a chunk with a finish_reason),
    and did serve hang up before that."""

    engine_done: bool = False
    serve_closed_first: bool = False


class Relay:
    """A TCP relay between serve and the engine that records who ended each connection."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[Relayed] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            record = Relayed()
            self.connections.append(record)
            threading.Thread(target=self._pump, args=(client, record), daemon=True).start()

    def _pump(self, client: socket.socket, record: Relayed) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        with client, upstream:
            try:
                self._relay(client, upstream, record)
            except OSError:  # serve hung up with bytes in flight (a reset, a broken pipe): still a hang-up
                record.serve_closed_first = not record.engine_done

    @staticmethod
    def _relay(client: socket.socket, upstream: socket.socket, record: Relayed) -> None:
        while True:
            readable, _, _ = select.select([client, upstream], [], [], 60)
            if not readable:
                return
            if client in readable:
                data = client.recv(65536)
                if not data:
                    record.serve_closed_first = not record.engine_done
                    return
                upstream.sendall(data)
            if upstream in readable:
                data = upstream.recv(65536)
                if not data:
                    return
                record.engine_done |= b'"finish_reason":"' in data.replace(b" ", b"")  # "stop" or "length"
                client.sendall(data)

    def close(self) -> None:
        self.listener.close()


def test_a_superseded_request_closes_its_engine_stream(model: Path, engine_url: str) -> None:
    relay = Relay(int(engine_url.rsplit(":", 1)[1]))
    try:
        relayed = f"http://127.0.0.1:{relay.port}"
        with running_server("--model", str(model), "--engine", relayed, "--engine-prompt", "text") as server:
            # A: the stable layout puts no <mask_1> last, so the bigram model repeats GARBAGE to its budget.
            endless = {"prompt": PREFIX, "suffix": SUFFIX, "max_tokens": 1024, "temperature": 0, "user": "editor"}
            connection = socket.create_connection(("127.0.0.1", server.port))
            payload = json.dumps({**endless, "stream": True}).encode()
            head = post_head("/v1/completions", len(payload))
            connection.sendall(head + payload)
            connection.settimeout(60)
            received = b""
            while b'"text":"G' not in received:  # it streams: the engine is generating A
                received += connection.recv(65536)
                assert not received.startswith(b"HTTP/1.1 4"), received
            # B, same user, another position: supersedes A.
            path, body = infill_bodies("# other\n" + PREFIX)["openai"]
            status, answer = server.post(path, {**body, "user": "editor"})
            assert status == 200 and answer["choices"][0]["text"] == COMPLETION
            server.wait_for_log("superseded by a newer request")
            connection.close()
        assert len(relay.connections) == 2
        first, second = relay.connections
        assert first.serve_closed_first and not first.engine_done  # A's engine stream: closed by serve midway
        assert second.engine_done and not second.serve_closed_first  # the control: B's ran to its end
    finally:
        relay.close()


def test_parallel_gate_lets_n_in_and_queues_the_rest_in_order() -> None:
    gate = FairLock(max_waiting=1, capacity=2)
    gate.acquire()
    gate.acquire()  # two holders at once, neither waits
    assert gate.holders == 2
    entered = threading.Event()
    waiter = threading.Thread(target=lambda: (gate.acquire(), entered.set()))
    waiter.start()
    while gate.waiting == 0:
        threading.Event().wait(0.01)
    with pytest.raises(Busy):  # past --max-waiting: 503
        gate.acquire()
    assert not entered.is_set()
    gate.release()
    waiter.join(10)
    assert entered.is_set() and gate.holders == 2


def test_serve_engine_options_are_checked(model: Path) -> None:
    assert_one_line_error(localcoder("serve", "--model", str(model), "--parallel", "4"), "--parallel", "--engine")
    prefetch = localcoder("serve", "--model", str(model), "--engine", "http://127.0.0.1:9", "--prefetch")
    assert_one_line_error(prefetch, "--prefetch")
    assert_one_line_error(localcoder("serve", "--engine", "ftp://x", "--model", str(model)), "not an http(s) URL")


def test_a_client_that_hangs_up_before_the_first_token_closes_the_engine_stream(model: Path) -> None:
    """The standin's slow mode says nothing for 30 s: serve must not wait for a token to notice its client left."""
    with engine(model, "slow") as url, running_server("--model", str(model), "--engine", url) as server:
        connection = socket.create_connection(("127.0.0.1", server.port))
        payload = json.dumps({"prompt": PREFIX, "suffix": SUFFIX, "max_tokens": 8}).encode()
        connection.sendall(post_head("/v1/completions", len(payload)))
        connection.sendall(payload)
        connection.close()  # serve reads what was sent, asks the engine, and must notice the hang-up
        server.wait_for_log("client went away; generation cancelled", seconds=15)  # long before the 30 s


def test_bench_engine_times_serve_and_complete_in_front_of_the_engine(model: Path, engine_url: str) -> None:
    result = localcoder(
        "bench", "--model", str(model), "--engine", engine_url, "--new-tokens", "4", "--no-cold", "--json", timeout=300
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [row["scenario"] for row in rows] == ["warm", "hot-type", "hot-enter"]
    assert all(row["generated_tokens"] == 4 and row["latency_ms"] > 0 for row in rows), rows
