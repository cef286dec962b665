"""Request bodies, checked field by field: anything malformed is a BadRequest with a message, never a crash."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from localcoder.complete import PROMPT_LAYOUTS
from localcoder.generate import Sampling

MAX_BODY_BYTES = 4 << 20
MAX_N = 16
MAX_STOP_STRINGS = 4
_SCOPES = ("line", "block", "full")


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class InfillRequest:
    """POST /infill: what `localcoder complete --json` takes, as JSON."""

    text: str
    line: int
    col: int | None
    path: str
    scope: str | None
    n: int
    sampling: Sampling
    layout: str
    model: str | None
    stream: bool


@dataclass(frozen=True)
class CompletionRequest:
    """POST /v1/completions (OpenAI): `suffix` makes it an infill in the model's own format."""

    prompt: str
    suffix: str | None
    n: int
    sampling: Sampling
    stop: tuple[str, ...]
    layout: str
    model: str | None
    stream: bool


def _get(body: dict[str, Any], key: str, kinds: type | tuple[type, ...], default: Any = None) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise BadRequest(f"{key} must be {_kind_name(kinds)}, not a boolean")
    if not isinstance(value, kinds):
        raise BadRequest(f"{key} must be {_kind_name(kinds)}, not {type(value).__name__}")
    return value


def _kind_name(kinds: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list"}
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return " or ".join(dict.fromkeys(names.get(kind, kind.__name__) for kind in kinds))


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = float(_get(body, key, (int, float), default))
    if not math.isfinite(value) or not low <= value <= high:
        raise BadRequest(f"{key} must be between {low:g} and {high:g}, got {value:g}")
    return value


def _integer(body: dict[str, Any], key: str, default: int | None, low: int, high: int) -> int | None:
    value = _get(body, key, int, default)
    if value is not None and not low <= value <= high:
        raise BadRequest(f"{key} must be between {low} and {high}, got {value}")
    return value


def _sampling(body: dict[str, Any], max_tokens_cap: int, defaults: Sampling) -> Sampling:
    return Sampling(
        temperature=_number(body, "temperature", defaults.temperature, 0.0, 2.0),
        top_p=_number(body, "top_p", defaults.top_p, 0.0, 1.0),
        max_tokens=_integer(body, "max_tokens", defaults.max_tokens, 1, max_tokens_cap) or defaults.max_tokens,
        seed=_integer(body, "seed", None, -(2**31), 2**31 - 1),
    )


def _layout(body: dict[str, Any]) -> str:
    layout = _get(body, "prompt_layout", str, "stable")
    if layout not in PROMPT_LAYOUTS:
        raise BadRequest(f"prompt_layout must be one of {', '.join(PROMPT_LAYOUTS)}, not {layout!r}")
    return layout


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(f"the request body must be a JSON object, not {type(body).__name__}")
    return body


def parse_infill(body: Any, max_tokens_cap: int) -> InfillRequest:
    body = _object(body)
    if "text" not in body or "line" not in body:
        raise BadRequest("an infill request needs text (the file's contents) and line (1-based)")
    scope = _get(body, "scope", str)
    if scope is not None and scope not in _SCOPES:
        raise BadRequest(f"scope must be line, block or full, not {scope!r}")
    return InfillRequest(
        text=_get(body, "text", str),
        line=_integer(body, "line", None, 1, 10**9),  # type: ignore[arg-type]
        col=_integer(body, "col", None, 1, 10**9),
        path=_get(body, "path", str, "<request>"),
        scope=scope,
        n=_integer(body, "n", 1, 1, MAX_N),  # type: ignore[arg-type]
        sampling=_sampling(body, max_tokens_cap, Sampling()),
        layout=_layout(body),
        model=_get(body, "model", str),
        stream=_get(body, "stream", bool, False),
    )


def parse_completion(body: Any, max_tokens_cap: int) -> CompletionRequest:
    body = _object(body)
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):  # OpenAI allows a batch; one prompt per request here
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise BadRequest("prompt must be a string (or a list holding one string); token arrays are not supported")
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise BadRequest(f"prompt must be a string, not {type(prompt).__name__}")
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if stop is not None else []
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise BadRequest("stop must be a non-empty string or a list of them")
    if len(stops) > MAX_STOP_STRINGS:
        raise BadRequest(f"at most {MAX_STOP_STRINGS} stop strings")
    if body.get("logprobs") is not None or body.get("echo") or body.get("logit_bias") or body.get("best_of", 1) != 1:
        raise BadRequest("logprobs, echo, best_of and logit_bias are not supported by this server")
    # OpenAI's defaults: 16 tokens, temperature 1, top_p 1.
    openai = Sampling(temperature=1.0, top_p=1.0, max_tokens=min(16, max_tokens_cap))
    return CompletionRequest(
        prompt=prompt,
        suffix=_get(body, "suffix", str),
        n=_integer(body, "n", 1, 1, MAX_N),  # type: ignore[arg-type]
        sampling=_sampling(body, max_tokens_cap, openai),
        stop=tuple(stops),
        layout=_layout(body),
        model=_get(body, "model", str),
        stream=_get(body, "stream", bool, False),
    )
