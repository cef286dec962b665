"""Request bodies, checked field by field: anything malformed is a BadRequest with a message, never a crash.

Hand-written rather than pydantic models: the messages are one line in the client's words, and `null` means the
default as llama.cpp's clients use it. benchmarks/bench_wire.py and docs/architecture.md give the figures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, BinaryIO

from localcoder.completion.generate import MAX_TOP_K, SAMPLING_BOUNDS, SEED_MAX, SEED_MIN, Sampling

MAX_BODY_BYTES = 4 << 20
MAX_STOP_STRINGS = 16


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(f"the request body must be a JSON object, not {type(body).__name__}")
    return body


def _kind_name(kinds: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list"}
    names |= {dict: "an object"}
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return " or ".join(dict.fromkeys(names.get(kind, kind.__name__) for kind in kinds))


class Fields:
    """Typed reads of one JSON object's keys; `where` prefixes messages about a nested object."""

    def __init__(self, body: Any, where: str = "") -> None:
        self.body = json_object(body)
        self.where = where

    def __contains__(self, key: str) -> bool:
        return self.body.get(key) is not None

    def get(self, key: str, kinds: type | tuple[type, ...], default: Any = None) -> Any:
        value = self.body.get(key, default)
        if value is None:
            return default
        kind_tuple = kinds if isinstance(kinds, tuple) else (kinds,)
        if isinstance(value, bool) and bool not in kind_tuple:
            raise BadRequest(f"{self.where}{key} must be {_kind_name(kinds)}, not a boolean")
        if float in kind_tuple and isinstance(value, int):
            return value
        if not isinstance(value, kinds):
            raise BadRequest(f"{self.where}{key} must be {_kind_name(kinds)}, not {type(value).__name__}")
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = float(self.get(key, (int, float), default))
        if not math.isfinite(value) or not low <= value <= high:
            raise BadRequest(f"{self.where}{key} must be between {low:g} and {high:g}, got {value:g}")
        return value

    def integer(self, key: str, default: int | None, low: int, high: int) -> int | None:
        value = self.get(key, int, default)
        if value is not None and not low <= value <= high:
            raise BadRequest(f"{self.where}{key} must be between {low} and {high}, got {value}")
        return value

    def stops(self, key: str = "stop") -> tuple[str, ...]:
        """A stop string or a list of them (empty strings are dropped, as llama.cpp's servers do)."""
        value = self.body.get(key)
        stops = [value] if isinstance(value, str) else value if value is not None else []
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise BadRequest(f"{self.where}{key} must be a string or a list of strings")
        if len(stops) > MAX_STOP_STRINGS:
            raise BadRequest(f"{self.where}{key}: at most {MAX_STOP_STRINGS} stop strings")
        return tuple(s for s in stops if s)

    def sampling(self, max_tokens_cap: int, defaults: Sampling, max_tokens_key: str | None = "max_tokens") -> Sampling:
        """temperature, top_p, top_k, seed and (unless max_tokens_key is None) the token budget."""
        max_tokens = defaults.max_tokens
        if max_tokens_key is not None:
            max_tokens = self.integer(max_tokens_key, defaults.max_tokens, 1, max_tokens_cap) or defaults.max_tokens
        return Sampling(
            temperature=self.number("temperature", defaults.temperature, *SAMPLING_BOUNDS["temperature"]),
            top_p=self.number("top_p", defaults.top_p, *SAMPLING_BOUNDS["top_p"]),
            max_tokens=max_tokens,
            seed=self.integer("seed", None, SEED_MIN, SEED_MAX),
            top_k=self.integer("top_k", defaults.top_k, 0, MAX_TOP_K) or 0,
        )

    def token_count(self, key: str, default: int, cap: int) -> int:
        """llama.cpp's and Ollama's token counts: -1 (or any negative) means as many as allowed."""
        value = self.get(key, int, default)
        return cap if value < 0 else min(value, cap)


def check_unicode(body: Any) -> None:
    """BadRequest when a string holds a lone surrogate ("\\ud800" is valid JSON but no text): it could be neither
    tokenized nor echoed back. Walks the body without recursion, so any depth json accepts is fine."""
    pending = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                surrogate = ord(exc.object[exc.start])
                raise BadRequest(f"malformed JSON: a string holds the lone surrogate \\u{surrogate:04x}") from None
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


def read_json_body(headers: Mapping[str, str], stream: BinaryIO) -> Any:
    """A request's JSON body, read by its Content-Length (an empty body is {}); BadRequest for anything else.
    Every refusal but malformed JSON leaves the connection's framing in doubt (the caller closes it)."""
    length_header = headers.get("Content-Length")
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        raise BadRequest("chunked request bodies are not supported; send Content-Length", 411)
    if length_header is None:
        raise BadRequest("a POST needs a Content-Length header", 411)
    try:
        length = int(length_header)
    except ValueError:
        raise BadRequest(f"bad Content-Length {length_header!r}") from None
    if length < 0:
        raise BadRequest(f"bad Content-Length {length_header!r}")
    if length > MAX_BODY_BYTES:
        raise BadRequest(f"request body over {MAX_BODY_BYTES >> 20} MiB", 413)
    data = stream.read(length)
    if len(data) < length:
        raise BadRequest("request body shorter than its Content-Length")
    if not data.strip():
        return {}
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None
    check_unicode(body)
    return body
