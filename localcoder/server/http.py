"""`localcoder serve`: a small HTTP server over the resident models (stdlib http.server, one thread per client).

Routes: GET /health, GET /v1/models, POST /infill (what `complete --json` prints), POST /v1/completions
(OpenAI). Streaming answers are server-sent events. A request that fails answers with a status and a
one-line message; nothing a client sends can stop the server.
"""

from __future__ import annotations

import errno
import json
import select
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from localcoder import __version__, paths
from localcoder.errors import USER_ERRORS, LocalcoderError
from localcoder.generate import GenerationCancelled
from localcoder.server.pool import Busy, Gone, ModelPool, PoolOptions
from localcoder.server.requests import MAX_BODY_BYTES, BadRequest, parse_completion, parse_infill
from localcoder.server.service import Service, completion_envelope

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8788
MAX_TOKENS_CAP = 1024
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ServeOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    pool: PoolOptions = PoolOptions()
    preload: bool = True
    quiet: bool = False


class LocalcoderServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, options: ServeOptions, pool: ModelPool, log: Callable[[str], None]) -> None:
        self.address_family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
        self.pool = pool
        self.service = Service()
        self.log = log
        self.started = time.time()
        super().__init__((options.host, options.port), Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:  # a broken client, not a server fault
        exc = sys.exc_info()[1]
        self.log(f"{client_address[0]}: {type(exc).__name__}: {exc}")


class Handler(BaseHTTPRequestHandler):
    server: LocalcoderServer
    protocol_version = "HTTP/1.1"
    server_version = f"localcoder/{__version__}"
    timeout = 60  # seconds a client may take to send its request

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        self.server.log(f"{self.address_string()} {format % args}")

    def do_GET(self) -> None:
        route = urlsplit(self.path).path
        if route == "/health":
            self._json(200, self._health())
        elif route == "/v1/models":
            self._json(200, {"object": "list", "data": self._models()})
        elif route in ("/infill", "/v1/completions"):
            self._error(405, f"{route} takes POST")
        else:
            self._error(404, f"no route {route}; try /health, /v1/models, POST /infill or POST /v1/completions")

    def do_POST(self) -> None:
        route = urlsplit(self.path).path
        if route not in ("/infill", "/v1/completions"):
            self._discard_body()
            self._error(404, f"no route POST {route}")
            return
        try:
            body = self._read_json()
            if route == "/infill":
                request: Any = parse_infill(body, MAX_TOKENS_CAP)
            else:
                request = parse_completion(body, MAX_TOKENS_CAP)
                request = self._with_known_model(request)
        except BadRequest as exc:
            self._error(exc.status, str(exc))
            return
        run = self.server.service.infill if route == "/infill" else self.server.service.completion
        self._run(route, request, run)

    def _run(self, route: str, request: Any, run: Callable[..., dict[str, Any]]) -> None:
        streaming = False
        try:
            with self.server.pool.lease(request.model, self._peer_gone) as model:
                on_text = None
                if request.stream:
                    self._start_events()
                    streaming = True
                    on_text = self._infill_event if route == "/infill" else self._completion_event(model)
                result = run(model, request, on_text, self._peer_gone)
            if not streaming:
                self._json(200, result)
            elif route == "/infill":
                self._event({"result": result})
                self._event("[DONE]")
            else:
                self._event({**result, "choices": [{**c, "text": ""} for c in result["choices"]]})
                self._event("[DONE]")
        except (GenerationCancelled, Gone, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            self.server.log(f"{self.address_string()} {route}: client went away; generation cancelled")
        except Busy as exc:
            self._fail(streaming, 503, str(exc) or "busy: too many requests waiting; try again")
        except USER_ERRORS as exc:
            self._fail(streaming, 400, str(exc))
        except Exception as exc:  # a bug must cost one request, never the server
            self._fail(streaming, 500, f"internal error: {type(exc).__name__}: {exc}")

    def _with_known_model(self, request: Any) -> Any:
        """OpenAI plugins send names like "gpt-3.5-turbo-instruct": unknown names mean the default model."""
        if request.model is None:
            return request
        try:
            self.server.pool.resolve(request.model)
            return request
        except LocalcoderError:
            return replace(request, model=None)

    # -- reading -----------------------------------------------------------------------------------------

    def _read_json(self) -> Any:
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise BadRequest("chunked request bodies are not supported; send Content-Length", 411)
        if length_header is None:
            self.close_connection = True
            raise BadRequest("a POST needs a Content-Length header", 411)
        try:
            length = int(length_header)
        except ValueError:
            self.close_connection = True
            raise BadRequest(f"bad Content-Length {length_header!r}") from None
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            raise BadRequest(f"request body over {MAX_BODY_BYTES >> 20} MiB", 413)
        data = self.rfile.read(length)
        if len(data) < length:
            self.close_connection = True
            raise BadRequest("request body shorter than its Content-Length")
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"malformed JSON: {exc}") from None

    def _discard_body(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if 0 <= length <= MAX_BODY_BYTES:
            self.rfile.read(length)
        else:
            self.close_connection = True

    def _peer_gone(self) -> bool:
        """True once the client has closed its end (a readable socket with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    # -- writing -----------------------------------------------------------------------------------------

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = (json.dumps(body, ensure_ascii=False) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        kind = "invalid_request_error" if status < 500 else "server_error"
        self._json(status, {"error": {"message": message, "type": kind, "code": status}})

    def _fail(self, streaming: bool, status: int, message: str) -> None:
        self.server.log(f"{self.address_string()} {status}: {message}")
        try:
            if streaming:
                self._event({"error": {"message": message, "code": status}})
                self._event("[DONE]")
            else:
                self._error(status, message)
        except OSError:
            self.close_connection = True

    def _start_events(self) -> None:
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()

    def _event(self, body: dict[str, Any] | str) -> None:
        data = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        self.wfile.write(f"data: {data}\n\n".encode())
        self.wfile.flush()

    def _infill_event(self, index: int, text: str) -> None:
        self._event({"index": index, "text": text})

    def _completion_event(self, model: Any) -> Callable[[int, str], None]:
        def send(index: int, text: str) -> None:
            choice = {"text": text, "index": index, "logprobs": None, "finish_reason": None}
            self._event(completion_envelope(model, [choice], None))

        return send

    # -- status ------------------------------------------------------------------------------------------

    def _health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "uptime_s": round(time.time() - self.server.started, 1),
            "default_model": _default_model_name(self.server.pool),
            "models": self.server.pool.status(),
            "cache": self.server.service.stats.to_dict(),
        }

    def _models(self) -> list[dict[str, Any]]:
        names = {status["model"] for status in self.server.pool.status()}
        directory = paths.models_dir()
        if directory.is_dir():
            names |= {str(path.resolve()) for path in directory.glob("*.gguf")}
        return [
            {"id": Path(name).name, "object": "model", "owned_by": "localcoder", "path": name} for name in sorted(names)
        ]


def _default_model_name(pool: ModelPool) -> str | None:
    try:
        return str(pool.resolve(None))
    except LocalcoderError:
        return None


def serve(options: ServeOptions, on_ready: Callable[[str], None], log: Callable[[str], None]) -> None:
    """Run until interrupted (Ctrl-C, SIGTERM via KeyboardInterrupt) or `stop` is set."""
    pool = ModelPool(options.pool)
    try:
        if options.preload:
            pool.preload(None)
        try:
            server = LocalcoderServer(options, pool, (lambda _line: None) if options.quiet else log)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise LocalcoderError(
                    f"port {options.port} on {options.host} is in use (another localcoder serve?); pick --port"
                ) from None
            raise LocalcoderError(f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}") from None
        host = f"[{options.host}]" if ":" in options.host else options.host
        on_ready(f"http://{host}:{server.server_address[1]}")
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        thread.start()
        try:
            while thread.is_alive():
                thread.join(0.5)
        finally:
            server.shutdown()
            server.server_close()
    finally:
        pool.close()
