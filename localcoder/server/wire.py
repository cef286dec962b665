"""localcoder's own wire schema, shared by the server (server/routes.py) and its client (server/client.py).

POST /infill takes a NativeInfill as JSON and answers what `complete --json` prints; streamed, it sends
TextEvent lines and then one ResultEvent as server-sent events. Both sides build and read these through the
classes here, never through dicts of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from localcoder.generate import Sampling
from localcoder.prompts import PROMPT_LAYOUTS
from localcoder.server.fields import BadRequest, Fields
from localcoder.snippets import Snippet

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8788
MAX_TOKENS_CAP = 1024
MAX_N = 16
MAX_SNIPPETS = 64
_SCOPES = ("line", "block", "full")


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
    """POST /infill in localcoder's own terms: a whole buffer and a cursor, as `complete` takes them."""

    text: str
    line: int
    col: int | None = None
    path: str = "<request>"
    scope: str | None = None
    n: int = 1
    sampling: Sampling = Sampling()
    layout: str = "stable"
    model: str | None = None
    stream: bool = False
    context: tuple[Snippet, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "scope": self.scope,
            "n": self.n,
            "temperature": self.sampling.temperature,
            "top_p": self.sampling.top_p,
            "max_tokens": self.sampling.max_tokens,
            "seed": self.sampling.seed,
            "prompt_layout": self.layout,
            "model": self.model,
            "stream": self.stream,
            "context": [{"filename": s.filename, "text": s.text} for s in self.context],
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> NativeInfill:
        fields = Fields(body)
        if "text" not in body or "line" not in body:
            raise BadRequest(
                "an infill request needs text (the file's contents) and line (1-based),"
                " or llama-server's input_prefix and input_suffix"
            )
        scope = fields.get("scope", str)
        if scope is not None and scope not in _SCOPES:
            raise BadRequest(f"scope must be line, block or full, not {scope!r}")
        return cls(
            text=fields.get("text", str),
            line=fields.integer("line", None, 1, 10**9),  # type: ignore[arg-type]
            col=fields.integer("col", None, 1, 10**9),
            path=fields.get("path", str, "<request>"),
            scope=scope,
            n=fields.integer("n", 1, 1, MAX_N),  # type: ignore[arg-type]
            sampling=fields.sampling(MAX_TOKENS_CAP, Sampling()),
            layout=layout(fields),
            model=fields.get("model", str),
            stream=fields.get("stream", bool, False),
            context=snippets_from(fields, "context"),
        )


def layout(fields: Fields) -> str:
    value = fields.get("prompt_layout", str, "stable")
    if value not in PROMPT_LAYOUTS:
        raise BadRequest(f"prompt_layout must be one of {', '.join(PROMPT_LAYOUTS)}, not {value!r}")
    return value


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
