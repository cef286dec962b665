"""Talking to a running `localcoder serve`: finding it, and streaming an infill from it."""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from localcoder.completion.backends import backend_for
from localcoder.completion.complete import complete
from localcoder.completion.infill import TextSink
from localcoder.completion.request import CompletionRequest
from localcoder.errors import LocalcoderError
from localcoder.runtime import LoadedModel, load_model, resolve_model
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


def health(url: str, timeout: float = PROBE_SECONDS) -> dict[str, Any] | None:
    """The server's /health answer, or None when nothing (or something else) answers there."""
    connection, base = _connection(url, timeout)
    try:
        connection.request("GET", f"{base}/health")
        response = connection.getresponse()
        body = json.loads(response.read()) if response.status == 200 else None
        return body if isinstance(body, dict) and body.get("status") == "ok" else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        connection.close()


def remote_infill(url: str, request: NativeInfill, on_text: TextSink | None) -> dict[str, Any]:
    """POST /infill with streaming; `on_text` gets each alternative's text as it comes. Returns the result."""
    connection, base = _connection(url, None)
    body = json.dumps({**request.to_json(), "stream": True}).encode("utf-8")
    try:
        connection.request("POST", f"{base}/infill", body, {"Content-Type": "application/json"})
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
        if result is None:
            raise LocalcoderError(f"server {url} closed the stream before the result")
        return result
    except (OSError, http.client.HTTPException) as exc:
        raise LocalcoderError(f"server {url}: {exc}") from None
    finally:
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


@dataclass(frozen=True)
class LoadOptions:
    model: str | None = None
    ctx: int | None = None
    threads: int | None = None
    gpu_layers: int | None = None
    lookup: int = 0
    engine: Any = None  # a localcoder.completion.engine.Engine: the GGUF here gives the tokenizer, the engine generates

    @property
    def needs_own_load(self) -> bool:
        """Options that change how a model is loaded, which a running server already chose for itself."""
        loading = (self.ctx, self.threads, self.gpu_layers)
        return self.engine is not None or any(value is not None for value in loading) or self.lookup > 0


class Completer(Protocol):
    """Where `complete`'s requests go, chosen once by `open_completer`: a running server, or a model loaded here."""

    def complete(self, request: CompletionRequest, on_text: TextSink | None) -> dict[str, Any]:
        """`complete --json`'s result for the request; `on_text(alternative, text)` streams as it comes."""
        ...


@dataclass(frozen=True)
class ServedCompleter:
    """A running `localcoder serve`: its resident model builds the prompt and generates (POST /infill)."""

    url: str
    model: str | None  # the resolved path of the model named here; None: the server's default

    def complete(self, request: CompletionRequest, on_text: TextSink | None) -> dict[str, Any]:
        return remote_infill(self.url, NativeInfill(request, self.model), on_text)


@dataclass
class LoadedCompleter:
    """A model loaded in this process, generating here or on the --engine it names (completion.backends)."""

    load: LoadOptions
    _model: LoadedModel | None = None

    def complete(self, request: CompletionRequest, on_text: TextSink | None) -> dict[str, Any]:
        if self._model is None:
            path = resolve_model(self.load.model).resolve()
            backend = backend_for(self.load.engine)
            load = self.load
            self._model = load_model(path, load.ctx, load.threads, load.gpu_layers, load.lookup, backend=backend)
        data = complete(self._model, request, on_text).to_dict()
        described = self._model.backend.describe()
        if described is not None:
            data["engine"] = described
        return data


def open_completer(load: LoadOptions, server: tuple[str | None, bool], note: Callable[[str], None]) -> Completer:
    """A running server when one answers (and serves the model asked for), else a model loaded here."""
    url, named = server
    if url is None or load.needs_own_load:
        return LoadedCompleter(load)
    if health(url) is None:
        if named:
            note(f"no localcoder server answers at {url}; loading the model here")
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
    return ServedCompleter(url, model)


def served_models(url: str, timeout: float = PROBE_SECONDS) -> set[str]:
    """The paths of the models the server lets clients name (GET /v1/models); empty when it cannot say."""
    connection, base = _connection(url, timeout)
    try:
        connection.request("GET", f"{base}/v1/models")
        response = connection.getresponse()
        body = json.loads(response.read()) if response.status == 200 else {}
        entries = body.get("data", []) if isinstance(body, dict) else []
        return {str(entry.get("path")) for entry in entries if isinstance(entry, dict)}
    except (OSError, http.client.HTTPException, ValueError):
        return set()
    finally:
        connection.close()
