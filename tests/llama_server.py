"""The real third-party engine for the tests: `python -m llama_cpp.server` (llama-cpp-python's OpenAI-compatible
server) in a subprocess on a free loopback port, serving a GGUF built by the tests.

It takes text prompts only (its schema: a string or a list of strings), parses the sentinels in them as special
tokens (it tokenizes with special=True when no suffix is given), and stops at the GGUF's end-of-generation set.
It is started with --interrupt_requests False: by default a new request cuts the one in flight short with a bare
[DONE] (see Engine._stream), which concurrent clients such as `eval --concurrency` must not get.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/v1/models")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@contextmanager
def llama_cpp_server(
    model: Path, *options: str, port: int | None = None, log_path: Path | None = None
) -> Iterator[str]:
    """The URL of a running llama_cpp.server on `model` (on `port`, else a free one); it is stopped on exit. Its
    log (uvicorn's access lines: one per request) goes to `log_path` where given."""
    port = port or free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--n_ctx", "2048", "--verbose", "False", "--interrupt_requests", "False"]
    # Its log goes to a file, not a pipe: each rejected token-id prompt logs a long traceback, and a pipe
    # nobody reads fills up and blocks the server.
    log = open(log_path, "a+") if log_path is not None else tempfile.TemporaryFile("w+")  # noqa: SIM115
    process = subprocess.Popen([*command, *options], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _answers(port):
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"llama_cpp.server exited: {log.read()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not answer /v1/models within {STARTUP_TIMEOUT:g} s")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


STANDIN = Path(__file__).with_name("engine_standin.py")


@contextmanager
def engine(model: Path, mode: str) -> Iterator[str]:
    """tests/engine_standin.py in `mode` on a free port: what llama_cpp.server cannot play (token-id prompts,
    ignored stops, slow, garbage or cut-off answers)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(STANDIN), str(model), str(port), mode], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
