"""A remote OpenAI-compatible completions engine (vLLM, llama-server, llama-cpp-python's server) as the
generation backend below infill.fill.

localcoder still builds the prompt (the family's infill format, trimmed to the window with the GGUF's own
tokenizer) and applies its cut (scope truncation, stop strings) to the streamed text; the engine only
continues the prompt. The prompt goes as token ids (`prompt_kind="ids"`; vLLM and OpenAI's schema take a
list of ints) or as text with the sentinels spelled out (`"text"`; engines on llama.cpp parse special
tokens in a text prompt). `"auto"` tries ids and falls back to text once the engine rejects them.
Stops: the ids are sent as `stop_token_ids` where the engine takes it (vLLM), and the sentinel text of
each stop token as a stop string for engines that print special tokens; llama.cpp-based engines also stop
at the GGUF's end-of-generation set, which holds `<eom>` in our converted GGUFs.

Cancelling reaches the engine: while a stream is open, a `HangUp` (hang_up.py) asks `cancelled()` every 20 ms and,
once it says yes, shuts the connection's socket. The engine sees its client go (vLLM aborts the request,
llama-server and llama_cpp.server stop generating) even while it is still reading the prompt and has sent
nothing yet, and the caller gets GenerationCancelled at once instead of after the next token.
`health` keeps what the last request or probe found (serve's /health shows it).

The API key comes from LOCALCODER_ENGINE_KEY, else OPENAI_API_KEY, and is sent as a bearer token only.
"""

from __future__ import annotations

import codecs
import http.client
import json
import os
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ggufkit.llamacpp import token_piece
from localcoder.completion.generate import GenerationCancelled, Job, Piece, Sampling
from localcoder.errors import LocalcoderError
from localcoder.hang_up import HangUp

PROMPT_KINDS = ("auto", "ids", "text")
DEFAULT_TIMEOUT = 60.0
MAX_LINE = 1 << 20  # one streamed event; a completion chunk is a few hundred bytes
TextOf = Callable[[dict[str, Any], str], str]  # a streamed choice's text (a completion's, a chat delta's)
PROBE_TIMEOUT = 2.0  # a health probe's wait: /health must answer quickly when the engine is down or stuck


def make_engine(url: str | None, model: str | None, prompt_kind: str, timeout: float) -> Engine | None:
    """The CLI's --engine options as an Engine, or None for in-process generation."""
    return Engine(url, model, timeout, prompt_kind) if url else None


def api_key() -> str | None:
    return os.environ.get("LOCALCODER_ENGINE_KEY") or os.environ.get("OPENAI_API_KEY") or None


class EngineError(LocalcoderError):
    """The engine could not be asked (down, slow, garbage): no answer about the prompt, so nothing to record."""


@dataclass
class EngineHealth:
    """What the last request (or probe) to the engine found: up, or down with its one-line reason."""

    up: bool | None = None  # None: not asked yet
    error: str | None = None
    at: float = 0.0  # time.monotonic() of the finding

    def record(self, error: str | None) -> None:
        self.up, self.error, self.at = error is None, error, time.monotonic()

    def to_dict(self) -> dict[str, Any]:
        state = "unknown" if self.up is None else "up" if self.up else "down"
        age = round(time.monotonic() - self.at, 1) if self.up is not None else None
        return {"state": state, "error": self.error, "checked_s_ago": age}


class _Rejected(Exception):
    """The engine answered 4xx to a token-id prompt (its schema takes text only)."""


@dataclass
class Engine:
    url: str
    model: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    prompt_kind: str = "auto"
    used_kind: str | None = field(default=None, init=False)  # what the last request sent
    health: EngineHealth = field(default_factory=EngineHealth, init=False)

    def __post_init__(self) -> None:
        if self.prompt_kind not in PROMPT_KINDS:
            raise LocalcoderError(f"--engine-prompt must be one of {', '.join(PROMPT_KINDS)}, not {self.prompt_kind!r}")
        expected = f"--engine {self.url!r}: not an http(s) URL like http://127.0.0.1:8000"
        if not self.url.isprintable() or any(c.isspace() for c in self.url):
            raise LocalcoderError(expected)
        try:
            parts = urllib.parse.urlsplit(self.url if "://" in self.url else f"http://{self.url}")
            parts.port  # noqa: B018  # a port past 65535 or not a number raises here, not at the first request
        except ValueError as exc:  # "http://[::1", "http://host:99999"
            raise LocalcoderError(f"{expected} ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LocalcoderError(expected)
        self._parts = parts
        base = parts.path.rstrip("/")
        self._api = base if base.endswith("/v1") else f"{base}/v1"
        self._path = f"{self._api}/completions"
        self._kind = "ids" if self.prompt_kind == "auto" else self.prompt_kind

    @property
    def label(self) -> str:
        return f"{self.url}" + (f" ({self.model})" if self.model else "")

    def _connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        host, port = self._parts.hostname or "", self._parts.port
        cls = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
        return cls(host, port, timeout=timeout or self.timeout)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        key = api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def probe(self) -> EngineHealth:
        """Ask the engine's GET /v1/models (every OpenAI-compatible engine has it), within PROBE_TIMEOUT."""
        conn = self._connection(min(self.timeout, PROBE_TIMEOUT))
        try:
            conn.request("GET", f"{self._api}/models", headers=self._headers())
            response = conn.getresponse()
            response.read(65536)
            error = None if response.status < 400 else f"engine {self.label} answered HTTP {response.status}"
        except TimeoutError:
            error = f"engine {self.label} did not answer within {min(self.timeout, PROBE_TIMEOUT):g} s"
        except (OSError, http.client.HTTPException) as exc:
            error = f"engine {self.label} is not reachable: {getattr(exc, 'strerror', None) or exc}"
        finally:
            conn.close()
        self.health.record(error)
        return self.health

    def pieces(self, job: Job) -> Iterator[Piece]:
        """The job's prompt ids continued on the engine, a piece per streamed chunk (Backend.pieces)."""
        llm, stop = job.llm, job.stop
        stop_text = sorted({token_piece(llm, t).decode("utf-8", "replace") for t in stop} - {""})
        eom_text = token_piece(llm, job.eom_id).decode("utf-8", "replace") if job.eom_id is not None else None
        body = self._body(job.sampling)
        if stop_text:
            body["stop"] = stop_text[:4]  # OpenAI's schema allows four
        if self._kind == "ids":
            try:
                self.used_kind = "ids"
                sent = dict(body, prompt=job.prompt_ids, stop_token_ids=sorted(stop))
                yield from self._stream(sent, job, eom_text)
                return
            except _Rejected:
                if self.prompt_kind == "ids":
                    message = f"engine {self.label} rejects token-id prompts; use --engine-prompt text"
                    raise EngineError(message) from None
                self._kind = "text"  # remembered for this engine
        text = b"".join(token_piece(llm, t, special=True) for t in job.prompt_ids).decode("utf-8", "replace")
        self.used_kind = "text"
        try:
            yield from self._stream(dict(body, prompt=text), job, eom_text)
        except _Rejected as exc:
            raise EngineError(f"engine {self.label} rejected the request: {exc}") from None

    def chat_pieces(self, job: Job) -> Iterator[Piece]:
        """The job's chat messages answered on the engine's /v1/chat/completions (its own chat template)."""
        body = dict(self._body(job.sampling), messages=job.messages)
        try:
            yield from self._stream(body, job, None, f"{self._api}/chat/completions", _delta_text)
        except _Rejected as exc:
            raise EngineError(f"engine {self.label} rejected the request: {exc}") from None

    def _body(self, sampling: Sampling) -> dict[str, Any]:
        body: dict[str, Any] = {
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "stream": True,
        }
        if self.model:
            body["model"] = self.model
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        # The in-process sampler's settings, sent always: llama_cpp.server's defaults (top_k 40, min_p 0.05,
        # repeat_penalty 1.1) would change even greedy tokens. top_k 0 = the whole vocabulary.
        return body | {"top_k": sampling.top_k or 0, "min_p": 0.0, "repeat_penalty": 1.0}

    def _stream(
        self,
        body: dict[str, Any],
        job: Job,
        eom_text: str | None,
        path: str | None = None,
        text_of: TextOf | None = None,
    ) -> Iterator[Piece]:
        try:
            yield from self._stream_once(body, job, eom_text, path, text_of)
        except EngineError as exc:
            self.health.record(str(exc))
            raise
        except GeneratorExit:  # closed by its reader: the cut stopped the completion (or the caller cancelled)
            if job.finish == "scope":
                self.health.record(None)
            raise
        self.health.record(None)

    def _stream_once(
        self, body: dict[str, Any], job: Job, eom_text: str | None, path: str | None, text_of: TextOf | None
    ) -> Iterator[Piece]:
        conn = self._connection()
        watcher = HangUp(conn, job.cancelled)
        done = False
        try:
            conn.request("POST", path or self._path, json.dumps(body).encode(), self._headers())
            watcher.start()
            response = conn.getresponse()
            if response.status >= 400:
                message = _error_message(response.read(65536))
                # llama_cpp.server answers a token-id prompt 500 with its schema's validation error
                rejects = response.status < 500 or "prompt" in message
                if rejects and isinstance(body.get("prompt"), list):
                    raise _Rejected(message)
                raise EngineError(f"engine {self.label} answered HTTP {response.status}: {message}")
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            while raw := response.readline(MAX_LINE + 1):
                if len(raw) > MAX_LINE:
                    raise EngineError(f"engine {self.label} sent a line of over {MAX_LINE:,} bytes")
                line = decoder.decode(raw).strip()
                if not line or line.startswith(":"):
                    continue
                if not line.startswith("data:"):
                    raise EngineError(f"engine {self.label} sent something that is not a completion stream")
                data = line[5:].strip()
                if data == "[DONE]":  # before any finish_reason: cut short (llama_cpp.server's default, when
                    raise EngineError(  # another request comes in)
                        f"engine {self.label} ended a completion without a finish reason (interrupted?"
                        " llama_cpp.server: start it with --interrupt_requests False)"
                    )
                choice = _choice(data, self.label)
                text = (text_of or _completion_text)(choice, self.label)
                eom = bool(eom_text) and eom_text in text  # an engine that prints special tokens
                if eom:
                    text = text.split(eom_text, 1)[0]
                yield Piece(text, 1 if text else 0)  # an empty one marks the first chunk's time
                finish = choice.get("finish_reason")
                if finish or eom:
                    job.finish = "eom" if eom or finish != "length" else "max_tokens"
                    done = True
                    break
            if not done:
                raise EngineError(f"engine {self.label} closed the stream midway")
        except GenerationCancelled:
            raise
        except (EngineError, OSError, http.client.HTTPException) as exc:
            if watcher.hung_up:  # the caller stopped wanting it, and the watcher cut the connection
                raise GenerationCancelled from None
            raise self._as_engine_error(exc) from None
        finally:
            watcher.stop()
            conn.close()

    def _as_engine_error(self, exc: Exception) -> EngineError:
        if isinstance(exc, EngineError):
            return exc
        if isinstance(exc, ConnectionError | socket.gaierror):
            return EngineError(f"engine {self.label} is not reachable: {getattr(exc, 'strerror', None) or exc}")
        if isinstance(exc, TimeoutError):
            return EngineError(f"engine {self.label} did not answer within {self.timeout:g} s (--engine-timeout)")
        return EngineError(f"engine {self.label}: {exc}")


def _error_message(raw: bytes) -> str:
    try:
        data = json.loads(raw)
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message", error) if isinstance(error, dict) else error
        text = str(message)
    except (ValueError, UnicodeDecodeError):
        text = raw.decode("utf-8", "replace")
    return " ".join(text.split())[:300] or "(no message)"


def _choice(data: str, label: str) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
        choice = parsed["choices"][0]
        if not isinstance(choice, dict) or not isinstance(choice.get("finish_reason") or "", str):
            raise TypeError
        return choice
    except (ValueError, KeyError, IndexError, TypeError):
        raise EngineError(f"engine {label} sent a chunk that is not an OpenAI completion") from None


def _completion_text(choice: dict[str, Any], label: str) -> str:
    text = choice.get("text") or ""
    if not isinstance(text, str):
        raise EngineError(f"engine {label} sent a chunk that is not an OpenAI completion")
    return text


def _delta_text(choice: dict[str, Any], label: str) -> str:
    delta = choice.get("delta") or {}
    text = delta.get("content") or "" if isinstance(delta, dict) else None
    if not isinstance(text, str):
        raise EngineError(f"engine {label} sent a chunk that is not an OpenAI chat completion")
    return text
