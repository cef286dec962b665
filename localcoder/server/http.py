"""`localcoder serve`: the HTTP layer over the resident models (stdlib http.server, one thread per client).

Which path does what is the route table (server/routes.py); this module reads requests, finds their route,
and writes answers: compact one-line JSON, server-sent events or NDJSON streams. A request that fails
answers with a status and a one-line message in its protocol's error shape; nothing a client sends can stop
the server. A client that goes away stops its request's prompt reading or generation (asked between prompt
batches, inside them through llama.cpp's abort callback, and after every token: completion/prompt_read.py).

Why the standard library and not an ASGI stack: generation is a blocking llama.cpp call that must stop
when its client hangs up. One thread per connection lets the generation loop peek at its own socket after
each token; under Starlette/uvicorn the same needs a worker thread per request plus a cross-thread cancel
flag fed by the event loop's disconnect message, and two more dependencies, for the same dozen routes.

Before its route runs, every request passes the gate (server/trust.py: Host, Origin, API key, Content-Type), and
is told who it comes from (server/owner.py): repository context and cache figures are for the server's user.
"""

from __future__ import annotations

import errno
import json
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from localcoder import __version__
from localcoder.completion.engine import Engine, EngineError
from localcoder.completion.generate import GenerationCancelled
from localcoder.completion.infill import InfillInput
from localcoder.completion.model import LoadedModel
from localcoder.completion.request import CompletionRequest
from localcoder.errors import USER_ERRORS, LocalcoderError
from localcoder.server.engine_pool import DEFAULT_PARALLEL, EnginePool
from localcoder.server.fields import MAX_BODY_BYTES, BadRequest, read_json_body
from localcoder.server.owner import NONCE_HEADER, TOKEN_HEADER, Caller, caller, ensure_token
from localcoder.server.peer import peer_uid
from localcoder.server.pool import Busy, Gone, ModelPool, PoolOptions
from localcoder.server.routes import find_route, route_list, superseded
from localcoder.server.service import Service
from localcoder.server.trust import Gate, check_listen
from localcoder.server.wire import DEFAULT_HOST, DEFAULT_PORT
from localcoder.supersede import Claim, Claims

LOOPBACK = ("127.0.0.1", "localhost", "::1")
__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "LOOPBACK", "LocalcoderServer", "ServeOptions", "serve"]


@dataclass(frozen=True)
class ServeOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    pool: PoolOptions = PoolOptions()
    preload: bool = True
    quiet: bool = False
    supersede: bool = True  # a newer request from the same client and file stops the older (supersede.py)
    prefetch: bool = False  # after answering, read the prompt of the position the suggestion leads to
    # Repository context read around the file a POST /infill names (its absolute path, on this machine). None: on
    # when listening on loopback only, since the prompt built from the server's files is then the client's own.
    repo_context: bool | None = None
    api_key: str | None = None  # beyond loopback, clients send it as Authorization: Bearer KEY
    no_auth: bool = False  # listen beyond loopback without an API key, because the user said so
    repo_roots: tuple[Path, ...] = ()  # serve --repo-root: context only for repositories inside these
    engine: Engine | None = None  # serve --engine: generation there, the tokenizer here (engine_pool.py)
    parallel: int = DEFAULT_PARALLEL  # requests in flight to the engine at once

    @property
    def reads_repositories(self) -> bool:
        return self.host in LOOPBACK if self.repo_context is None else self.repo_context


def compact(body: Any) -> bytes:
    """One line, no spaces: llama.vim matches `"content":"` with a regex before it decodes."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class LocalcoderServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, options: ServeOptions, pool: ModelPool | EnginePool, log: Callable[[str], None]) -> None:
        self.address_family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
        self.pool = pool
        self.service = Service(log)
        self.claims = Claims(options.supersede)
        self.prefetch = options.prefetch
        self.repo_context = options.reads_repositories
        self.repo_roots = options.repo_roots
        self.token = ensure_token()  # localcoder's own clients prove they are this user with it, and we to them
        self.log = log
        self.started = time.time()
        super().__init__((options.host, options.port), HttpExchange)
        self.gate = Gate.for_server(options.host, self.server_address[1], options.api_key)

    def handle_error(self, request: Any, client_address: Any) -> None:  # a broken client, not a server fault
        exc = sys.exc_info()[1]
        self.log(f"{client_address[0]}: {type(exc).__name__}: {exc}")


class HttpExchange(BaseHTTPRequestHandler):
    """One HTTP request and its answer; route handlers (server/routes.py) talk to the client through it (they
    see it as routes.Exchange, so routes.py never imports this module)."""

    server: LocalcoderServer
    protocol_version = "HTTP/1.1"
    server_version = f"localcoder/{__version__}"
    timeout = 60  # seconds a client may take to send its request

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        self.server.log(f"{self.address_string()} {format % args}")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_HEAD(self) -> None:  # the ollama CLI's heartbeat
        self._dispatch("HEAD")

    def do_PUT(self) -> None:  # no route takes these: a JSON 405 or 404, not http.server's HTML 501 page
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a bad request line, an unknown method, headers too long) as JSON."""
        self.close_connection = True
        if not hasattr(self, "error_style"):
            self.error_style = "openai"
        try:
            self.error(code, message or HTTPStatus(code).phrase)
        except OSError:
            pass

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path.rstrip("/") or "/"
        self.stream_kind: str | None = None
        self.error_style = "ollama" if path.startswith("/api/") else "openai"
        self.extra_headers: tuple[tuple[str, str], ...] = ()
        refusal = self.server.gate.refusal(method, self.headers)
        if refusal is not None:
            self.close_connection = True  # its body, if any, is left unread
            self.extra_headers = refusal.headers
            self.server.log(f"{self.address_string()} {method} {path}: {refusal.status} {refusal.message}")
            self.error(refusal.status, refusal.message)
            return
        route, allowed = find_route(method, path)
        if route is None:
            if method not in ("GET", "HEAD"):
                self._discard_body()
            if allowed:
                self.error(405, f"{path} takes {' or '.join(allowed)}")
            else:
                self.error(404, f"no route {method} {path}; try {route_list()}")
            return
        self.error_style = route.errors
        try:
            body = self._read_json() if method == "POST" else None
            request = route.parse(body) if route.parse is not None else body
        except BadRequest as exc:
            self.error(exc.status, str(exc))
            return
        except USER_ERRORS as exc:
            self.error(400, str(exc))
            return
        except Exception as exc:  # a parser's bug must cost one request, never the connection unanswered
            self.error(500, f"internal error: {type(exc).__name__}: {exc}")
            return
        self.claim: Claim | None = None
        self.leased_at: float | None = None
        try:
            route.handle(self, request)
        except (GenerationCancelled, Gone) as exc:
            self._stopped(path, request, exc)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            self.server.log(f"{self.address_string()} {path}: client went away; generation cancelled")
        except BadRequest as exc:
            self._fail(exc.status, str(exc))
        except Busy as exc:
            self._fail(503, str(exc) or "busy: too many requests waiting; try again")
        except EngineError as exc:  # the engine is down, slow or garbled: its fault, not the request's
            self._fail(502, str(exc))
        except USER_ERRORS as exc:
            self._fail(400, str(exc))
        except Exception as exc:  # a bug must cost one request, never the server
            self._fail(500, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            if self.claim is not None:
                self.server.claims.release(self.claim)

    def _stopped(self, path: str, request: Any, exc: Exception) -> None:
        """The request stopped because nobody waits for it: count the model time it took, and answer it as its
        protocol expects where it was superseded (its client is still there)."""
        model_ms = (time.perf_counter() - self.leased_at) * 1000 if self.leased_at is not None else 0.0
        was_superseded = self.claim is not None and self.claim.superseded
        self.server.service.stopped(was_superseded, model_ms)
        how = f"({exc}; {model_ms:.0f} ms of model time for nobody)" if isinstance(exc, GenerationCancelled) else ""
        if not was_superseded or self.gone():
            self.close_connection = True
            self.server.log(f"{self.address_string()} {path}: client went away; generation cancelled {how}".rstrip())
            return
        self.server.log(f"{self.address_string()} {path}: superseded by a newer request {how}".rstrip())
        try:
            superseded(self, request)
        except OSError:
            self.close_connection = True

    # -- for route handlers ------------------------------------------------------------------------------

    @property
    def caller(self) -> Caller:
        """Who sent this request (server/owner.py): the token's user, else the peer's uid where Linux says."""
        if getattr(self, "_caller_of", None) is not self.headers:  # a new request on this connection
            token = self.headers.get(TOKEN_HEADER)
            self._caller = caller(self.client_address, lambda: self._peer_uid, token, self.server.token)
            self._caller_of = self.headers
        return self._caller

    @cached_property
    def _peer_uid(self) -> int | None:  # one lookup a connection
        return peer_uid(self.client_address, self.endpoint())

    def owner_nonce(self) -> str | None:
        return self.headers.get(NONCE_HEADER)

    def endpoint(self) -> tuple[str, int]:
        """The address and port this client reached (what an owner proof is bound to)."""
        local = self.connection.getsockname()
        return local[0], local[1]

    @contextmanager
    def model(self, name: str | None, keep_alive: float | None = None) -> Iterator[LoadedModel]:
        if self.claim is not None:  # typing into a suggestion still coming: wait for it, then type through
            self.claim.await_older(self.cancelled)
        with self.server.pool.lease(name, self.cancelled, keep_alive) as model:
            self.leased_at = time.perf_counter()
            yield model

    def for_client(
        self, who: object, model: str | None, source: InfillInput | CompletionRequest | None = None
    ) -> Callable[[int, str], None] | None:
        """Say whom the request is for (a slot, a user, a file): with the client's address, the route and the
        model, a newer request with the same key supersedes this one. `who` None or "" supersedes nothing.
        With the request's text around the cursor (`source`), a newer request that types into what this one
        has generated so far waits for it instead; the callable returned is what the generation shows."""
        if who is None or who == "":
            return None
        path = urlsplit(self.path).path
        before, after = (source.prefix, source.suffix) if source is not None else (None, None)
        key = (self.caller.identity, path, model, who)
        claim = self.claim = self.server.claims.claim(key, before, after)
        return lambda index, text: claim.show(text) if index == 0 else None

    def prefetch(self, name: str | None, source: InfillInput, text: str, max_tokens: int) -> None:
        """serve --prefetch, after the answer went out: while the model is idle, read the prompt of the position
        accepting `text` leads to. It gives way to any request: one queued for the model, or this client's
        next one on this connection."""
        if not self.server.prefetch or not text:
            return
        with self.server.pool.when_idle(name) as idle:
            if idle is not None:
                model, awaited = idle
                stop = lambda: awaited() or self._next_request()  # noqa: E731
                self.server.service.prefetch(model, source, text, max_tokens, stop, self.caller.cache_key)

    def _next_request(self) -> bool:
        """Bytes of this client's next request wait on the connection (a closed connection brings none)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) != b""
        except (OSError, ValueError):
            return False

    def cancelled(self) -> bool:
        """The client hung up, or a newer request from it for the same file superseded this one."""
        return (self.claim is not None and self.claim.superseded) or self.gone()

    def known_model(self, name: str | None) -> str | None:
        """Plugins send names like "gpt-3.5-turbo-instruct" or "codellama:7b": unknown means the default model."""
        if not name:
            return None
        try:
            self.server.pool.resolve(name)
            return name
        except LocalcoderError:
            return None

    def gone(self) -> bool:
        """True once the client has closed its end (a readable socket with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def send_json(self, status: int, body: Any) -> None:
        self._send(status, compact(body) + b"\n", "application/json; charset=utf-8")

    def send_text(self, status: int, text: str) -> None:
        self._send(status, text.encode("utf-8"), "text/plain; charset=utf-8")

    def error(self, status: int, message: str) -> None:
        if self.error_style == "ollama":
            self.send_json(status, {"error": message})
        else:
            kind = "invalid_request_error" if status < 500 else "server_error"
            self.send_json(status, {"error": {"message": message, "type": kind, "code": status}})

    def open_stream(self, kind: str) -> None:
        """Start a streamed answer: "sse" (server-sent events) or "ndjson" (one JSON object a line)."""
        self.close_connection = True
        self.stream_kind = kind
        self.send_response(200)
        content_type = "text/event-stream" if kind == "sse" else "application/x-ndjson"
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()

    def event(self, body: Any) -> None:
        """One item of the open stream; for SSE the string "[DONE]" is sent as it is."""
        data = body.encode() if isinstance(body, str) else compact(body)
        self.wfile.write(b"data: " + data + b"\n\n" if self.stream_kind == "sse" else data + b"\n")
        self.wfile.flush()

    # -- reading -----------------------------------------------------------------------------------------

    def _read_json(self) -> Any:
        try:
            return read_json_body(self.headers, self.rfile)
        except BadRequest as exc:
            if exc.status != 400 or not str(exc).startswith("malformed JSON"):
                self.close_connection = True  # the stream's framing is in doubt: end it after the answer
            raise

    def _discard_body(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if 0 <= length <= MAX_BODY_BYTES:
            self.rfile.read(length)
        else:
            self.close_connection = True

    # -- writing -----------------------------------------------------------------------------------------

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in getattr(self, "extra_headers", ()):
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _fail(self, status: int, message: str) -> None:
        self.server.log(f"{self.address_string()} {status}: {message}")
        try:
            if self.stream_kind == "sse":
                self.event({"error": {"message": message, "code": status}})
                self.event("[DONE]")
            elif self.stream_kind == "ndjson":
                self.event({"error": message})
            else:
                self.error(status, message)
        except OSError:
            self.close_connection = True


def serve(options: ServeOptions, on_ready: Callable[[str], None], log: Callable[[str], None]) -> None:
    """Run until interrupted (Ctrl-C, SIGTERM via KeyboardInterrupt) or `stop` is set."""
    check_listen(options.host, options.api_key, options.no_auth)
    pool = EnginePool(options.pool, options.engine, options.parallel) if options.engine else ModelPool(options.pool)
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
