"""localcoder's own wire schema, shared by the server (server/routes.py) and its client (server/client.py).

POST /infill takes a NativeInfill as JSON and answers what `complete --json` prints; streamed, it sends
TextEvent lines and then one ResultEvent as server-sent events. Both sides build and read these through the
classes here, never through dicts of their own.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from localcoder.completion.generate import Sampling
from localcoder.completion.prompts import check_layout
from localcoder.completion.request import MAX_ALTERNATIVES as MAX_N
from localcoder.completion.request import CompletionRequest
from localcoder.completion.snippets import Snippet
from localcoder.errors import LocalcoderError
from localcoder.server.fields import BadRequest, Fields
from localcoder.source import read_source_bytes

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8788
MAX_TOKENS_CAP = 1024
MAX_SNIPPETS = 64


UNNAMED = "<request>"  # the path of a buffer whose request names none


def snippets_from(fields: Fields, key: str, text_key: str = "text", name_key: str = "filename") -> tuple[Snippet, ...]:
    """A list of {text, filename} objects (llama.vim's input_extra, localcoder's context)."""
    chunks = fields.get(key, list, [])
    if len(chunks) > MAX_SNIPPETS:
        raise BadRequest(f"{key}: at most {MAX_SNIPPETS} snippets")
    snippets = []
    for index, chunk in enumerate(chunks):
        if not isinstance(chunk, dict):
            raise BadRequest(f"{key}[{index}] must be an object with {text_key} and {name_key}")
        item = Fields(chunk, f"{key}[{index}].")
        snippets.append(Snippet(item.get(text_key, str, ""), item.get(name_key, str, "")))
    return tuple(snippets)


@dataclass(frozen=True)
class NativeInfill:
    """POST /infill in localcoder's own terms: a CompletionRequest (a whole buffer and a cursor), the model to use
    and whether to stream. Parsing builds and checks the request before any model is leased."""

    request: CompletionRequest
    model: str | None = None
    stream: bool = False

    def to_json(self) -> dict[str, Any]:
        request = self.request
        return {
            "text": request.buffer.text,
            "path": _absolute(request.buffer.path),
            "line": request.cursor.line,
            "col": request.cursor.col,
            "scope": request.scope,
            "n": request.n,
            "temperature": request.sampling.temperature,
            "top_p": request.sampling.top_p,
            "max_tokens": request.sampling.max_tokens,
            "seed": request.sampling.seed,
            "prompt_layout": request.layout,
            "model": self.model,
            "stream": self.stream,
            "context": [{"filename": s.filename, "text": s.text} for s in request.snippets],
            "repo_context": request.context_budget,  # the wire keeps its name
            "context_root": request.context_root,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> NativeInfill:
        fields = Fields(body)
        if body.get("text") is None or body.get("line") is None:
            raise BadRequest(
                "an infill request needs text (the file's contents) and line (1-based),"
                " or llama-server's input_prefix and input_suffix"
            )
        path = fields.get("path", str, UNNAMED)
        text = fields.get("text", str)
        line = fields.integer("line", None, 1, 10**9)
        col = fields.integer("col", None, 1, 10**9)
        try:
            request = CompletionRequest.build(
                read_source_bytes(text.encode("utf-8"), name=path),  # type: ignore[union-attr]
                line,  # type: ignore[arg-type]
                col,
                sampling=fields.sampling(MAX_TOKENS_CAP, Sampling()),
                scope=fields.get("scope", str),
                n=fields.integer("n", 1, 1, MAX_N),  # type: ignore[arg-type]
                layout=fields.get("prompt_layout", str, "stable"),
                snippets=snippets_from(fields, "context"),
                # Context reads around the file, so only a path the server cannot mistake for one of its own.
                context_budget=fields.integer("repo_context", None, 0, 1 << 20) if os.path.isabs(path) else 0,
                context_root=_absolute_or_none(fields.get("context_root", str)),
            )
        except LocalcoderError as exc:
            raise BadRequest(str(exc)) from None
        return cls(request, fields.get("model", str), fields.get("stream", bool, False))


def _absolute_or_none(root: str | None) -> str | None:
    """A workspace folder the client names for context (the language server's); only an absolute one counts."""
    return root if root and os.path.isabs(root) else None


def _absolute(path: str) -> str:
    """A file the server should find whatever its own working folder (repository context reads around it)."""
    return os.path.abspath(path) if os.path.isfile(path) else path


def layout(fields: Fields) -> str:
    try:
        return check_layout(fields.get("prompt_layout", str, "stable"))
    except LocalcoderError as exc:
        raise BadRequest(str(exc)) from None


@dataclass(frozen=True)
class TextEvent:
    index: int
    text: str


@dataclass(frozen=True)
class ResultEvent:
    result: dict[str, Any]  # what `complete --json` prints


@dataclass(frozen=True)
class ErrorEvent:
    message: str
    code: int


Event = TextEvent | ResultEvent | ErrorEvent


def encode_event(event: Event) -> dict[str, Any]:
    if isinstance(event, TextEvent):
        return {"index": event.index, "text": event.text}
    if isinstance(event, ResultEvent):
        return {"result": event.result}
    return {"error": {"message": event.message, "code": event.code}}


def decode_event(data: str) -> Event:
    body = json.loads(data)
    if "error" in body:
        error = body["error"]
        return ErrorEvent(str(error.get("message", error)) if isinstance(error, dict) else str(error), 500)
    if "result" in body:
        return ResultEvent(body["result"])
    return TextEvent(int(body["index"]), str(body["text"]))
