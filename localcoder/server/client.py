"""Talking to a running `localcoder serve`: finding it, checking it is the user's own, and streaming an infill from it.

Anyone can listen on 127.0.0.1:8788 first: another local user, or a program of theirs. Before a buffer goes to the
server found there, the server proves it knows the user's serve token (a 0600 file in the user's runtime folder,
server/owner.py): GET /health with a fresh nonce must answer its HMAC bound to the address and port reached. A
server that cannot is not sent the buffer: `complete` and `lsp` then load the model here, with a one-line note. A
server the user names (--server, LOCALCODER_SERVER) is used either way: a team's server on another machine cannot
know this machine's token, and gets no token from us. LOCALCODER_API_KEY is sent as `Authorization: Bearer`.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from localcoder.completion.generate import GenerationCancelled
from localcoder.completion.infill import TextSink
from localcoder.completion.model import LoadedModel
from localcoder.completion.request import CompletionRequest
from localcoder.errors import LocalcoderError
from localcoder.hang_up import HangUp
from localcoder.pipeline import complete
from localcoder.runtime import LoadOptions, resolve_model
from localcoder.server.owner import NONCE_HEADER, TOKEN_HEADER, owner_proof, read_token, same_secret
from localcoder.server.wire import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ErrorEvent,
    Event,
    NativeInfill,
    ResultEvent,
    decode_event,
)

DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
OFF = ("", "0", "off", "none", "no")
Cancelled = Callable[[], bool]
PROBE_SECONDS = 0.5


def server_url(flag: str | None, no_server: bool) -> tuple[str | None, bool]:
    """The server to try, and whether the user named it: --server, else LOCALCODER_SERVER, else the default."""
    if no_server:
        return None, False
    source = "--server" if flag is not None else "LOCALCODER_SERVER"
    value = flag if flag is not None else os.environ.get("LOCALCODER_SERVER")
    if value is not None and value.strip().lower() in OFF:
        return None, False
    url = (value or DEFAULT_URL).rstrip("/")
    _split(url, source)  # a bad URL is a one-line error now, not a traceback at the first request
    return url, value is not None


def _split(url: str, source: str = "--server") -> tuple[str, int | None, str, str]:
    """Scheme, host, port and path of a server URL; LocalcoderError for anything that is not one."""
    expected = f"{source} {url!r}: expected a URL like {DEFAULT_URL}"
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # "http://[::1", a port past 65535 or not a number
        raise LocalcoderError(f"{expected} ({exc})") from None
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() or c in "<>\"'`" for c in url):
        raise LocalcoderError(expected)
    return parts.scheme, port, host, parts.path.rstrip("/")


def _connection(url: str, timeout: float | None) -> tuple[http.client.HTTPConnection, str]:
    scheme, port, host, path = _split(url)
    kind = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    return kind(host, port, timeout=timeout), path


def _headers(token: str | None = None) -> dict[str, str]:
    """LOCALCODER_API_KEY as a bearer key (a server beyond loopback asks for it), and the user's token."""
    headers = {}
    key = os.environ.get("LOCALCODER_API_KEY")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if token is not None:
        headers[TOKEN_HEADER] = token
    return headers


def owner_token(url: str, timeout: float = PROBE_SECONDS) -> str | None:
    """The user's serve token when the server at `url` proves it knows it (the user started it), else None."""
    token = read_token()
    if token is None:
        return None
    nonce = secrets.token_hex(16)
    connection, base = _connection(url, timeout)
    try:
        connection.request("GET", f"{base}/health", headers={**_headers(), NONCE_HEADER: nonce})
        peer = connection.sock.getpeername() if connection.sock is not None else None  # what the answer binds
        response = connection.getresponse()
        body = json.loads(response.read()) if response.status == 200 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        connection.close()
    proof = body.get("owner_proof") if isinstance(body, dict) else None
    if peer is None or not isinstance(proof, str):
        return None
    return token if same_secret(proof, owner_proof(token, nonce, (peer[0], peer[1]))) else None


def health(url: str, timeout: float = PROBE_SECONDS) -> dict[str, Any] | None:
    """The server's /health answer, or None when nothing (or something else) answers there."""
    connection, base = _connection(url, timeout)
    try:
        connection.request("GET", f"{base}/health", headers=_headers())
        response = connection.getresponse()
        body = json.loads(response.read()) if response.status == 200 else None
        return body if isinstance(body, dict) and body.get("status") == "ok" else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        connection.close()


def remote_infill(
    url: str,
    request: NativeInfill,
    on_text: TextSink | None,
    cancelled: Cancelled | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """POST /infill with streaming; `on_text` gets each alternative's text as it comes. Returns the result.

    When `cancelled()` says yes the connection is closed (the server then stops generating for it) and
    GenerationCancelled is raised. `token` (the user's, to a server that proved it is the user's) lets the server
    add context from the user's repository."""
    connection, base = _connection(url, None)
    body = json.dumps({**request.to_json(), "stream": True}).encode("utf-8")
    watcher = HangUp(connection, cancelled) if cancelled is not None else None
    try:
        headers = {**_headers(token), "Content-Type": "application/json"}
        connection.request("POST", f"{base}/infill", body, headers)
        if watcher is not None:
            watcher.start()
        response = connection.getresponse()
        if response.status != 200:
            raise LocalcoderError(f"server {url}: {_error_message(response.read(), response.status)}")
        result = None
        for event in _events(response):
            if isinstance(event, ErrorEvent):
                raise LocalcoderError(f"server {url}: {event.message}")
            if isinstance(event, ResultEvent):
                result = event.result
            elif on_text is not None:
                on_text(event.index, event.text)
        if watcher is not None and watcher.hung_up:
            raise GenerationCancelled
        if result is None:
            raise LocalcoderError(f"server {url} closed the stream before the result")
        return result
    except (OSError, http.client.HTTPException) as exc:
        if watcher is not None and watcher.hung_up:
            raise GenerationCancelled from None
        raise LocalcoderError(f"server {url}: {exc}") from None
    finally:
        if watcher is not None:
            watcher.stop()
        connection.close()


def _events(response: http.client.HTTPResponse) -> Iterator[Event]:
    for raw in response:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line.startswith("data: "):
            continue
        data = line[len("data: ") :]
        if data == "[DONE]":
            return
        yield decode_event(data)


def _error_message(data: bytes, status: int) -> str:
    try:
        return str(json.loads(data)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}"


class Completer(Protocol):
    """Where `complete`'s requests go, chosen once by `open_completer`: a running server, or a model loaded here."""

    def complete(
        self, request: CompletionRequest, on_text: TextSink | None, cancelled: Cancelled | None = None
    ) -> dict[str, Any]:
        """`complete --json`'s result for the request; `on_text(alternative, text)` streams as it comes.

        `cancelled()` is asked while it works (a newer keystroke, the client's $/cancelRequest); when it says
        yes the work stops and GenerationCancelled is raised."""
        ...


@dataclass(frozen=True)
class ServedCompleter:
    """A running `localcoder serve`: its resident model builds the prompt and generates (POST /infill)."""

    url: str
    model: str | None  # the resolved path of the model named here; None: the server's default
    token: str | None = None  # the user's token, when the server proved it is the user's (owner_token)

    def complete(
        self, request: CompletionRequest, on_text: TextSink | None, cancelled: Cancelled | None = None
    ) -> dict[str, Any]:
        return remote_infill(self.url, NativeInfill(request, self.model), on_text, cancelled, self.token)


@dataclass
class LoadedCompleter:
    """A model loaded in this process, generating here or on the --engine it names (completion.backends)."""

    load: LoadOptions
    _model: LoadedModel | None = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def ensure_loaded(self) -> LoadedModel:
        """The model, loaded on first use (a language server shows $/progress around this)."""
        if self._model is None:
            self._model = self.load.open()
        return self._model

    def complete(
        self, request: CompletionRequest, on_text: TextSink | None, cancelled: Cancelled | None = None
    ) -> dict[str, Any]:
        model = self.ensure_loaded()
        data = complete(model, request, on_text, cancelled).to_dict()
        described = model.backend.describe()
        if described is not None:
            data["engine"] = described
        return data


def open_completer(load: LoadOptions, server: tuple[str | None, bool], note: Callable[[str], None]) -> Completer:
    """A running server when one answers (and serves the model asked for), else a model loaded here. A server
    found at the default address must prove it is this user's before it is sent a buffer."""
    url, named = server
    if url is None or load.needs_own_load:
        return LoadedCompleter(load)
    if health(url) is None:
        if named:
            note(f"no localcoder server answers at {url}; loading the model here")
        return LoadedCompleter(load)
    token = owner_token(url)
    if token is None and not named:
        note(f"the server at {url} could not show that you started it; not sending it your code, loading the model")
        return LoadedCompleter(load)
    try:
        model = str(resolve_model(load.model).resolve())
    except LocalcoderError:
        if load.model is not None:
            raise
        model = None  # nothing configured here: the server's default model
    if load.model is not None and model not in served_models(url):
        note(f"the server at {url} does not serve {load.model}; loading it here")
        return LoadedCompleter(load)
    return ServedCompleter(url, model, token)


def served_models(url: str, timeout: float = PROBE_SECONDS) -> set[str]:
    """The paths of the models the server lets clients name (GET /v1/models); empty when it cannot say."""
    connection, base = _connection(url, timeout)
    try:
        connection.request("GET", f"{base}/v1/models", headers=_headers())
        response = connection.getresponse()
        body = json.loads(response.read()) if response.status == 200 else {}
        entries = body.get("data", []) if isinstance(body, dict) else []
        return {str(entry.get("path")) for entry in entries if isinstance(entry, dict)}
    except (OSError, http.client.HTTPException, ValueError):
        return set()
    finally:
        connection.close()
