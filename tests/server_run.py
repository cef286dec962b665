"""Start the real `localcoder serve` in a subprocess on a free loopback port, and talk HTTP to it."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def post_head(path: str, length: int) -> bytes:
    """The head of a POST as real clients send it (a loopback Host, a JSON body), for tests on a raw socket."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def request(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            if headers is None:
                headers = {"Content-Type": "application/json"} if data is not None else {}
            connection.request(method, path, data, headers)
            response = connection.getresponse()
            payload = response.read()
            try:
                return response.status, json.loads(payload)
            except ValueError:
                return response.status, payload.decode(errors="replace")
        finally:
            connection.close()

    def raw(self, method: str, path: str, body: Any = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
        """Status, headers and the body's exact bytes, for clients that read the bytes themselves."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            data = json.dumps(body).encode() if body is not None else None
            connection.request(method, path, data, headers or {"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def ndjson(self, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """A streamed Ollama answer, one JSON object a line, up to the one with done: true."""
        status, headers, data = self.raw("POST", path, body)
        assert status == 200, data
        assert headers["Content-Type"].startswith("application/x-ndjson"), headers
        return [json.loads(line) for line in data.decode().splitlines() if line.strip()]

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.request("POST", path, body, headers={"Content-Type": "application/json"})

    def events(self, path: str, body: dict[str, Any]) -> list[Any]:
        """A streamed request's server-sent events, parsed, up to [DONE]."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            payload = json.dumps({**body, "stream": True}).encode()
            connection.request("POST", path, payload, {"Content-Type": "application/json"})
            response = connection.getresponse()
            assert response.status == 200, response.read()
            assert response.getheader("Content-Type", "").startswith("text/event-stream")
            events: list[Any] = []
            for raw in response:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("data: "):
                    data = line[6:]
                    events.append(data if data == "[DONE]" else json.loads(data))
                    if data == "[DONE]":
                        break
            return events
        finally:
            connection.close()

    def wait_for_log(self, needle: str, seconds: float = 30) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in list(self.log):
                if needle in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} never appeared in the server log: {self.log[-20:]}")

    def rss_kb(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def open_stream(server: Server, path: str, body: dict[str, Any]) -> tuple[socket.socket, bytes]:
    """Send a streamed request and read until its first event: the model is leased and generating."""
    payload = json.dumps({**body, "stream": True}).encode()
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=120)
    connection.sendall(post_head(path, len(payload)) + payload)
    received = b""
    while b"data: " not in received:
        chunk = connection.recv(65536)
        assert chunk, received
        received += chunk
    return connection, received


def read_to_end(connection: socket.socket, received: bytes) -> list[Any]:
    """The rest of a stream opened by open_stream, until the server closes it: each event's JSON (or "[DONE]")."""
    while chunk := connection.recv(65536):
        received += chunk
    connection.close()
    lines = [line[6:] for line in received.decode().split("\n") if line.startswith("data: ")]
    return [line if line == "[DONE]" else json.loads(line) for line in lines]


def serving_home(directory: Path, models: dict[str, Path]) -> dict[str, str]:
    """The environment of a server whose model directory links to `models` (as NAME.gguf): the models beyond its
    default that clients may name."""
    (directory / "models").mkdir(parents=True, exist_ok=True)
    for name, model in models.items():
        (directory / "models" / f"{name}.gguf").symlink_to(model)
    return {"LOCALCODER_HOME": str(directory)}


@contextlib.contextmanager
def running_server(*args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    process = subprocess.Popen(
        [sys.executable, "-m", "localcoder", "serve", "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "300", **(env or {})},
    )
    log: list[str] = []
    ready = threading.Event()
    found: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line.rstrip("\n"))
            match = re.search(r"serving on (http://\S+)", line)
            if match:
                found.append(match.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        ready.wait(120)
        if not found:
            raise AssertionError(f"the server did not start: {log}")
        yield Server(found[0], process, log)
        assert process.poll() is None, f"the server died: {log[-20:]}"
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
