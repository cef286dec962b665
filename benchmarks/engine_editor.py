"""The editor trace of `make bench-engine`: several editors' keystrokes through `serve --engine`, against the same
requests sent straight to the engine, and serve at --parallel 1 against --parallel 4.

Each editor has its own file (~400 tokens, the cursor on a new line in its middle) and types one line, a request
per keystroke: OpenAI's /v1/completions with prompt and suffix, 16 new tokens, temperature 0, as minuet-ai.nvim
sends them. An editor waits for each answer before its next keystroke.

  overhead: the editors one after another, each keystroke through `serve --engine URL --parallel 1` and then the
      same keystroke straight to the engine, with the prompt serve builds (CodeGen2.5's infill format, spelled
      as text: what serve sends) precomputed outside the clock. Ratio = median through serve / median straight.
      Keystrokes serve answers by typing through an earlier suggestion (no engine request) are left out.
      Goal <= 1.10. The engine does the same work both ways (the same prompt, the same tokens), so the
      difference is serve's: parsing, the prompt (tokenizer here), the relay of the stream.
  serve's own: the same keystrokes against a stand-in engine that answers at once (16 canned chunks, in this
      process): what serve adds per request in milliseconds, whatever the engine's speed.
  throughput: all editors at once, each on its own thread, through serve --parallel 1 and --parallel 4:
      requests answered per second over the wall clock. llama_cpp.server (the engine here) runs one completion
      at a time and does not batch, so --parallel only overlaps serve's own work with the engine's; a batching
      engine (vLLM, llama-server -np 4) is where --parallel 4 pays.

serve runs as its own process (`python -m localcoder serve`), as editors see it; llama_cpp.server is started here.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ggufkit.llamacpp import token_piece
from localcoder.completion.backends import EngineBackend
from localcoder.completion.engine import Engine
from localcoder.completion.generate import Sampling
from localcoder.completion.infill import InfillInput, prepare
from localcoder.completion.prompts import stop_ids
from localcoder.runtime import load_model
from tests.server_run import running_server

NEW_TOKENS = 16
TYPED = "    result = helper(values, scale)"  # the line each editor types, one request per keystroke


def editor_file(editor: int) -> tuple[str, str]:
    """Editor `editor`'s file around its cursor: (text before, text after)."""
    lines = [f'"""Module {editor}: helpers for the data of team {editor}."""\n', "\n", "import math\n", "\n", "\n"]
    for index in range(8):
        lines += [
            f"def helper_{editor}_{index}(values, scale={index + 1}):\n",
            f'    """Scale team {editor} values by {index + 1}, keep the positive ones, and sum them."""\n',
            "    kept = [value * scale for value in values if value > 0]\n",
            "    return math.fsum(kept)\n",
            "\n",
            "\n",
        ]
    middle = len(lines) // 2
    return "".join(lines[:middle]) + "def combine(values, scale):\n", "\n\n" + "".join(lines[middle:])


def keystrokes(editor: int) -> list[tuple[str, str]]:
    before, after = editor_file(editor)
    return [(before + TYPED[:count], after) for count in range(1, len(TYPED) + 1)]


def _post(port: int, path: str, body: dict[str, Any]) -> tuple[float, str]:
    """Milliseconds to the answer's last byte, and its text (a JSON answer's, or a stream's chunks joined)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    started = time.perf_counter()
    try:
        connection.request("POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        ms = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise SystemExit(f"{path} answered {response.status}: {data[:300]!r}")
        if not body.get("stream"):
            return ms, json.loads(data)["choices"][0]["text"]
        chunks = [line[5:].strip() for line in data.decode().splitlines() if line.startswith("data:")]
        return ms, "".join(json.loads(chunk)["choices"][0]["text"] for chunk in chunks if chunk != "[DONE]")
    finally:
        connection.close()


def _typed_through(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", "/health")
        return int(json.loads(connection.getresponse().read())["cache"]["typed_through"])
    finally:
        connection.close()


def _serve_body(prefix: str, suffix: str) -> dict[str, Any]:
    return {"prompt": prefix, "suffix": suffix, "max_tokens": NEW_TOKENS, "temperature": 0}


def engine_bodies(gguf: Path, url: str, trace: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """What serve sends the engine for each keystroke (completion/engine.py's body: the prompt as text with
    the sentinels, its stop strings, streamed), built here once with the tokenizer alone."""
    model = load_model(gguf, backend=EngineBackend(Engine(url)))
    sampling = Sampling(temperature=0.0, max_tokens=NEW_TOKENS)
    bodies = []
    for prefix, suffix in trace:
        prompt = prepare(model, InfillInput(prefix, suffix), model.budget(NEW_TOKENS))
        stop = stop_ids(prompt.format, model.vocab)
        text = b"".join(token_piece(model.llm, t, special=True) for t in prompt.ids).decode("utf-8", "replace")
        stops = sorted({token_piece(model.llm, t).decode("utf-8", "replace") for t in stop} - {""})[:4]
        bodies.append(Engine(url)._body(sampling) | {"prompt": text, "stop": stops})
    return bodies


def overhead(gguf: Path, url: str, editors: int) -> list[str]:
    engine_port = int(url.rsplit(":", 1)[1])
    trace = [stroke for editor in range(editors) for stroke in keystrokes(editor)]
    bodies = engine_bodies(gguf, url, trace)
    through, straight, same, typed = [], [], 0, 0
    with running_server("--model", str(gguf), "--engine", url, "--engine-prompt", "text", "--parallel", "1") as server:
        _post(server.port, "/v1/completions", _serve_body(*trace[0]))  # serve's tokenizer loaded before the clock
        for (prefix, suffix), body in zip(trace, bodies, strict=True):
            typed_before = _typed_through(server.port)
            ms, answer = _post(server.port, "/v1/completions", _serve_body(prefix, suffix))
            if _typed_through(server.port) > typed_before:  # answered without the engine: not a comparison
                typed += 1
                continue
            through.append(ms)
            ms, direct = _post(engine_port, "/v1/completions", body)
            straight.append(ms)
            same += answer == direct
    ratio = statistics.median(through) / statistics.median(straight)
    return [
        f"  overhead   {len(trace)} keystrokes of {editors} editors, one at a time: through serve median"
        f" {statistics.median(through):6.1f} ms, straight to the engine {statistics.median(straight):6.1f} ms,"
        f" ratio {ratio:.3f} (goal <= 1.10)",
        f"             same text both ways: {same} of {len(through)}; left out, typed through (the engine not"
        f" asked): {typed}",
    ]


class _InstantEngine(BaseHTTPRequestHandler):
    """An OpenAI completions engine that answers every request at once with NEW_TOKENS canned chunks."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as uvicorn: each write goes out at once

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._answer(b'{"object":"list","data":[]}', "application/json")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        chunks = [
            {"choices": [{"text": "x", "index": 0, "finish_reason": "length" if n == NEW_TOKENS - 1 else None}]}
            for n in range(NEW_TOKENS)
        ]
        stream = b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in chunks)
        self._answer(stream + b"data: [DONE]\n\n", "text/event-stream")

    def _answer(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve_own_ms(gguf: Path, editors: int) -> tuple[float, float]:
    """Median ms per keystroke through serve and straight, against an engine that takes no time."""
    instant = ThreadingHTTPServer(("127.0.0.1", 0), _InstantEngine)
    threading.Thread(target=instant.serve_forever, daemon=True).start()
    port = instant.server_address[1]
    url = f"http://127.0.0.1:{port}"
    strokes = [stroke for editor in range(editors) for stroke in keystrokes(editor)]
    # canned answers: salted so that nothing is typed through
    trace = [(f"# {index}\n{prefix}", suffix) for index, (prefix, suffix) in enumerate(strokes)]
    bodies = engine_bodies(gguf, url, trace)
    through, straight = [], []
    try:
        options = ("--engine", url, "--engine-prompt", "text", "--parallel", "1", "--quiet")
        with running_server("--model", str(gguf), *options) as server:
            _post(server.port, "/v1/completions", _serve_body(*trace[0]))
            for (prefix, suffix), body in zip(trace, bodies, strict=True):
                through.append(_post(server.port, "/v1/completions", _serve_body(prefix, suffix))[0])
                straight.append(_post(port, "/v1/completions", body)[0])
    finally:
        instant.shutdown()
        instant.server_close()
    return statistics.median(through), statistics.median(straight)


def throughput(gguf: Path, url: str, editors: int, parallel: int) -> tuple[float, float, int]:
    """Requests answered per second, the median request's ms, and how many were typed through (the engine not
    asked), with all editors typing at once."""
    times: list[float] = []
    lock = threading.Lock()
    options = ("--engine", url, "--engine-prompt", "text", "--parallel", str(parallel), "--quiet")
    with running_server("--model", str(gguf), *options) as server:
        _post(server.port, "/v1/completions", _serve_body(*keystrokes(0)[0]))

        def type_line(editor: int) -> None:
            for prefix, suffix in keystrokes(editor):
                ms, _ = _post(server.port, "/v1/completions", _serve_body(f"# run {parallel}\n" + prefix, suffix))
                with lock:
                    times.append(ms)

        started = time.perf_counter()
        threads = [threading.Thread(target=type_line, args=(editor,)) for editor in range(editors)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        typed = _typed_through(server.port)
    return len(times) / wall, statistics.median(times), typed


def editor_trace(gguf: Path, url: str, editors: int) -> list[str]:
    lines = overhead(gguf, url, editors)
    through, straight = serve_own_ms(gguf, editors)
    lines.append(
        f"  serve's own: against an engine that answers at once, median {through:5.1f} ms through serve,"
        f" {straight:5.1f} ms straight: {through - straight:5.1f} ms per request"
    )
    rates = {parallel: throughput(gguf, url, editors, parallel) for parallel in (1, 4)}
    for parallel, (rate, median, typed) in rates.items():
        lines.append(
            f"  throughput {editors} editors at once, --parallel {parallel}: {rate:5.2f} requests/s,"
            f" median request {median:6.0f} ms; typed through {typed}"
        )
    lines.append(f"  ratio      --parallel 4 / --parallel 1: {rates[4][0] / rates[1][0]:.2f}")
    return lines
