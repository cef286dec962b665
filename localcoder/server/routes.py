"""The route table: every endpoint is one handler and one request schema, registered here once.

404 and 405 answers, `serve --help` and the README's list come from ROUTES. A handler leases the model,
calls the service (server/service.py), and renders the result in its protocol's shape.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from localcoder import __version__
from localcoder.completion.generate import Sampling
from localcoder.completion.infill import InfillInput, TextSink
from localcoder.completion.model import LoadedModel
from localcoder.completion.request import CompletionRequest
from localcoder.context.repository import find_root
from localcoder.errors import LocalcoderError
from localcoder.server import llama_api, ollama_api, openai_api
from localcoder.server.engine_pool import EnginePool
from localcoder.server.fields import Fields, json_object
from localcoder.server.owner import MAX_NONCE, Caller, owner_proof, root_refusal
from localcoder.server.pool import ModelPool
from localcoder.server.service import Service
from localcoder.server.wire import UNNAMED, NativeInfill, ResultEvent, TextEvent, encode_event


class ServerState(Protocol):
    """What handlers read of the running server (http.LocalcoderServer)."""

    pool: ModelPool | EnginePool
    service: Service
    started: float
    repo_context: bool  # whether a request naming a file on this machine gets context from its repository
    repo_roots: tuple[Path, ...]  # serve --repo-root: the folders context may search (empty: any but / and homes)
    token: str | None  # the user's serve token (server/owner.py), which proves this server is the user's


class Exchange(Protocol):
    """One request's conversation with its client, as handlers see it; http.HttpExchange is the real one.

    A handler answers with `send_json`/`send_text`, or opens a stream and sends `event`s; `gone()` says whether
    the client hung up; `for_client(...)` says whom the request is for, and `cancelled()` (the client hung up or
    a newer request superseded this one: supersede.py) is what every generation asks while it reads and writes.
    """

    server: ServerState
    caller: Caller  # who sent the request (server/owner.py)

    def owner_nonce(self) -> str | None: ...

    def endpoint(self) -> tuple[str, int]: ...

    def model(self, name: str | None, keep_alive: float | None = None) -> AbstractContextManager[LoadedModel]: ...

    def known_model(self, name: str | None) -> str | None: ...

    def gone(self) -> bool: ...

    def for_client(
        self, who: object, model: str | None, source: InfillInput | CompletionRequest | None = None
    ) -> TextSink | None: ...

    def cancelled(self) -> bool: ...

    def prefetch(self, name: str | None, source: InfillInput, text: str, max_tokens: int) -> None: ...

    def send_json(self, status: int, body: Any) -> None: ...

    def send_text(self, status: int, text: str) -> None: ...

    def open_stream(self, kind: str) -> None: ...

    def event(self, body: Any) -> None: ...


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handle: Callable[[Exchange, Any], None]
    parse: Callable[[Any], Any] | None  # the request schema: JSON body -> typed request (BadRequest if not)
    summary: str
    errors: str = "openai"  # the shape of error bodies: "openai" {"error": {...}} or "ollama" {"error": "..."}


# -- localcoder's own and llama-server's ---------------------------------------------------------------------


def parse_infill(body: Any) -> NativeInfill | llama_api.LlamaInfillRequest:
    """Two bodies share POST /infill: localcoder's (text + line) and llama-server's (input_prefix, ...)."""
    body = json_object(body)
    return llama_api.parse_llama_infill(body) if llama_api.is_llama_body(body) else NativeInfill.from_json(body)


def infill(ex: Exchange, request: NativeInfill | llama_api.LlamaInfillRequest) -> None:
    if isinstance(request, llama_api.LlamaInfillRequest):
        return llama_infill(ex, request)
    request, refused = repository_rule(ex, request)
    if refused is not None:
        request = replace(request, request=replace(request.request, context_budget=0))
    named = request.request.buffer.path
    on_text = ex.for_client(None if named == UNNAMED else named, request.model, request.request)
    with ex.model(request.model) as model:
        if request.stream:
            ex.open_stream("sse")
            on_text = both(on_text, lambda index, text: ex.event(encode_event(TextEvent(index, text))))
        result = ex.server.service.native_infill(model, request, on_text, ex.cancelled, ex.caller.cache_key)
    if refused:
        result["notes"] = [*result["notes"], f"no repository context: {refused}"]
    if request.stream:
        ex.event(encode_event(ResultEvent(result)))
        ex.event("[DONE]")
    else:
        ex.send_json(200, result)


def repository_rule(ex: Exchange, request: NativeInfill) -> tuple[NativeInfill, str | None]:
    """The request as the server may serve it, and why it gets no context from the server's files (None: it
    does; "": it asked for none). Only the server's own user, and only a root that user works in: the workspace
    folder the request names, else (or when that one may not be searched) the file's own repository."""
    path = request.request.buffer.path
    if request.request.context_budget == 0 or path == UNNAMED:
        return request, ""
    if not ex.server.repo_context:
        return request, "this server reads no repositories (serve --repo-context turns it on)"
    if not ex.caller.owner:
        return request, "only for requests from the server's own user"
    named = request.request.context_root
    if named and root_refusal(Path(named), ex.server.repo_roots) is None:
        return request, None
    without = replace(request, request=replace(request.request, context_root=None))
    return without, root_refusal(find_root(Path(path)), ex.server.repo_roots)


def llama_infill(ex: Exchange, request: llama_api.LlamaInfillRequest) -> None:
    warm_up = request.n_predict == 0  # reads the prompt for later; supersedes nothing (supersede.py)
    on_text = ex.for_client(None if warm_up else request.id_slot, request.model, request.source)
    with ex.model(ex.known_model(request.model)) as model:
        if request.stream:
            ex.open_stream("sse")
            on_text = both(on_text, lambda index, text: ex.event({"index": index, "content": text, "stop": False}))
        result = ex.server.service.llama_infill(model, request, on_text, ex.cancelled, ex.caller.cache_key)
        bodies = llama_api.completion_bodies(request, result, model.path.name)
    if request.stream:
        for body in bodies:
            ex.event({**body, "content": ""} if "content" in body else body)
    else:
        ex.send_json(200, bodies if request.n_cmpl > 1 else bodies[0])
    if request.n_predict > 0 and request.n_cmpl == 1:
        ex.prefetch(ex.known_model(request.model), request.source, result.alternatives[0].text, request.n_predict)


def both(first: TextSink | None, second: TextSink) -> TextSink:
    """One sink that feeds `first` (what the request's claim has shown so far) and `second` (the stream)."""
    if first is None:
        return second

    def show(index: int, text: str) -> None:
        first(index, text)
        second(index, text)

    return show


def superseded(ex: Exchange, request: Any) -> None:
    """The answer to a request a newer one from the same client and file took the place of: llama-server's and
    OpenAI's an empty completion (closing a stream that was open), localcoder's own a 409 with the reason."""
    if isinstance(request, llama_api.LlamaInfillRequest):
        body = llama_api.superseded_body(request)
    elif isinstance(request, openai_api.OpenAICompletion):
        body = openai_api.superseded_body(request)
    else:
        message = "superseded by a newer request for the same file"
        if getattr(ex, "stream_kind", None):
            ex.event({"error": {"message": message, "code": 409}})
            ex.event("[DONE]")
        else:
            ex.send_json(409, {"error": {"message": message, "type": "superseded", "code": 409}})
        return
    if not request.stream:
        ex.send_json(200, body)
        return
    if not getattr(ex, "stream_kind", None):
        ex.open_stream("sse")
    ex.event(body)
    if isinstance(request, openai_api.OpenAICompletion):
        ex.event("[DONE]")


def health(ex: Exchange, _request: Any) -> None:
    """Status for anyone; the cache's figures only for the server's user (another's would be a prefix oracle);
    with X-Localcoder-Nonce, the proof that this server knows its user's token (server/owner.py)."""
    pool = ex.server.pool
    try:
        default = str(pool.resolve(None))
    except LocalcoderError:
        default = None
    owner = ex.caller.owner
    models = [entry if owner else {k: v for k, v in entry.items() if k != "cache"} for entry in pool.status()]
    body: dict[str, Any] = {
        "status": "ok",
        "version": __version__,
        "uptime_s": round(time.time() - ex.server.started, 1),
        "default_model": default,
        "models": models,
    }
    if owner:
        body["cache"] = ex.server.service.stats.to_dict()
    if (engine := pool.engine_status()) is not None:
        body["engine"] = engine
    nonce = ex.owner_nonce()
    if nonce and len(nonce) <= MAX_NONCE and ex.server.token is not None:
        body["owner_proof"] = owner_proof(ex.server.token, nonce, ex.endpoint())
    ex.send_json(200, body)


def props(ex: Exchange, _request: Any) -> None:
    with ex.model(None) as model:
        body = llama_api.props_body(model.n_ctx, str(model.path), model.cache.slots, Sampling().max_tokens)
    ex.send_json(200, body)


def _model_paths(ex: Exchange) -> list[Path]:
    return sorted(path.resolve() for path in ex.server.pool.servable() if path.is_file())


# -- OpenAI ----------------------------------------------------------------------------------------------------


def models(ex: Exchange, _request: Any) -> None:
    ex.send_json(200, openai_api.models_body([str(path) for path in _model_paths(ex)]))


def completions(ex: Exchange, request: openai_api.OpenAICompletion) -> None:
    on_text = ex.for_client(request.user, request.model, request.source)
    with ex.model(ex.known_model(request.model)) as model:
        envelope = openai_api.Envelope(model.path)
        if request.stream:
            ex.open_stream("sse")
            on_text = both(on_text, lambda index, text: ex.event(envelope.chunk(index, text)))
        result = ex.server.service.completion(model, request, on_text, ex.cancelled, ex.caller.cache_key)
    body = openai_api.completion_body(envelope, result)
    if request.stream:
        ex.event({**body, "choices": [{**choice, "text": ""} for choice in body["choices"]]})
        ex.event("[DONE]")
    else:
        ex.send_json(200, body)
    if request.n == 1:
        text = result.alternatives[0].text
        ex.prefetch(ex.known_model(request.model), request.source, text, request.sampling.max_tokens)


# -- Ollama ----------------------------------------------------------------------------------------------------


def root(ex: Exchange, _request: Any) -> None:
    ex.send_text(200, ollama_api.RUNNING)


def generate(ex: Exchange, request: ollama_api.GenerateRequest) -> None:
    started = time.perf_counter()
    on_text = None
    with ex.model(ex.known_model(ollama_api.strip_tag(request.model)), request.keep_alive) as model:
        path = model.path
        if request.stream:
            ex.open_stream("ndjson")
            on_text = lambda _index, text: ex.event(ollama_api.chunk(path, text))  # noqa: E731
        result = ex.server.service.generate(model, request, on_text, ex.cancelled, ex.caller.cache_key)
    text = "" if request.stream or result is None else result.alternatives[0].text
    total_ns = int((time.perf_counter() - started) * 1e9)
    final = ollama_api.final_chunk(path, result, 0.0, total_ns, text)
    if request.stream:
        ex.event(final)
    else:
        ex.send_json(200, final)


def tags(ex: Exchange, _request: Any) -> None:
    ex.send_json(200, {"models": [ollama_api.tag_entry(path) for path in _model_paths(ex)]})


def parse_show(body: Any) -> str | None:
    fields = Fields(body)
    return fields.get("model", str) or fields.get("name", str)


def show(ex: Exchange, name: str | None) -> None:
    with ex.model(ex.known_model(ollama_api.strip_tag(name))) as model:
        body = ollama_api.show_body(model.path, model.format, model.vocab.metadata, model.n_ctx)
    ex.send_json(200, body)


def ps(ex: Exchange, _request: Any) -> None:
    entries = [
        ollama_api.ps_entry(Path(status["model"]), {}, status["n_ctx"], status["expires_in_s"])  # type: ignore[arg-type]
        for status in ex.server.pool.status()
        if status["loaded"]
    ]
    ex.send_json(200, {"models": entries})


def version(ex: Exchange, _request: Any) -> None:
    ex.send_json(200, {"version": ollama_api.API_VERSION})


ROUTES = (
    Route("GET", "/health", health, None, "status, loaded models, prompt-cache hit rate"),
    Route("POST", "/infill", infill, parse_infill, "localcoder's {text, line} or llama-server's body"),
    Route("GET", "/props", props, None, "llama-server: generation_settings.n_ctx, total_slots"),
    Route("GET", "/v1/models", models, None, "OpenAI: the models it can serve"),
    Route("POST", "/v1/completions", completions, openai_api.parse_completion, "OpenAI; suffix makes it an infill"),
    Route("GET", "/", root, None, 'Ollama: "Ollama is running"', "ollama"),
    Route("HEAD", "/", root, None, "Ollama: the ollama CLI's heartbeat", "ollama"),
    Route("POST", "/api/generate", generate, ollama_api.parse_generate, "Ollama: prompt + suffix, NDJSON", "ollama"),
    Route("GET", "/api/tags", tags, None, "Ollama: the models it can serve", "ollama"),
    Route("POST", "/api/show", show, parse_show, "Ollama: template, capabilities, model_info", "ollama"),
    Route("GET", "/api/ps", ps, None, "Ollama: the loaded models", "ollama"),
    Route("GET", "/api/version", version, None, "Ollama: the API version followed", "ollama"),
)


def find_route(method: str, path: str) -> tuple[Route | None, list[str]]:
    """The route for `method path`, or None and the methods `path` does take (for a 405)."""
    same_path = [route for route in ROUTES if route.path == path]
    match = next((route for route in same_path if route.method == method), None)
    return match, [route.method for route in same_path]


def route_list() -> str:
    return ", ".join(f"{route.method} {route.path}" for route in ROUTES)
