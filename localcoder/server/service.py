"""What the server does with a checked request and a leased model; HTTP is elsewhere (server/http.py)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from localcoder.complete import PROMPT_LAYOUTS, complete
from localcoder.generate import generate_cut
from localcoder.prompts import FORMATS, build_prompt, stop_ids
from localcoder.runtime import LoadedModel
from localcoder.server.requests import CompletionRequest, InfillRequest
from localcoder.source import locate, read_source_bytes
from localcoder.truncate import StopStrings

TextSink = Callable[[int, str], None]


@dataclass
class CacheStats:
    """Prompt tokens read from the KV cache versus evaluated, over the server's life."""

    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0

    def add(self, prompt_tokens: int, cached_tokens: int) -> None:
        self.requests += 1
        self.prompt_tokens += prompt_tokens
        self.cached_tokens += cached_tokens

    def to_dict(self) -> dict[str, Any]:
        rate = self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0
        return {**asdict(self), "evaluated_tokens": self.prompt_tokens - self.cached_tokens, "hit_rate": round(rate, 4)}


class Service:
    def __init__(self) -> None:
        self.stats = CacheStats()
        self._stats_lock = threading.Lock()

    def _count(self, prompt_tokens: int, cached_tokens: int) -> None:
        with self._stats_lock:
            self.stats.add(prompt_tokens, cached_tokens)

    def infill(
        self, model: LoadedModel, request: InfillRequest, on_text: TextSink | None, cancelled: Callable[[], bool]
    ) -> dict[str, Any]:
        """Exactly what `localcoder complete --json` prints for the same buffer and cursor."""
        buffer = read_source_bytes(request.text.encode("utf-8"), name=request.path)
        cursor = locate(buffer, request.line, request.col)
        result = complete(
            model, buffer, cursor, request.sampling, request.scope, request.n, on_text, request.layout, cancelled
        )
        for alternative in result.alternatives:
            self._count(result.prompt_tokens, alternative.cached_tokens)
        return result.to_dict()

    def completion(
        self, model: LoadedModel, request: CompletionRequest, on_text: TextSink | None, cancelled: Callable[[], bool]
    ) -> dict[str, Any]:
        """An OpenAI text completion; with a suffix, an infill in the model's own prompt format."""
        infill = request.suffix is not None and model.format.infill
        fmt = model.format if infill else FORMATS["left-to-right"]
        budget = model.n_ctx - request.sampling.max_tokens
        stable_lines = PROMPT_LAYOUTS[request.layout]
        prompt = build_prompt(fmt, model.vocab, request.prompt, request.suffix or "", budget, stable_lines)
        stop = stop_ids(fmt, model.vocab)
        eom = model.vocab.single_token("<eom>") if fmt.name == "codegen-infill" else None
        choices, generated = [], 0
        for index in range(request.n):
            scanner = StopStrings(request.stop)
            show = (lambda text, index=index: on_text(index, text)) if on_text else None
            sampling = request.sampling.offset_seed(index)
            run = generate_cut(model.llm, prompt.ids, stop, sampling, scanner, eom, show, cancelled)
            self._count(len(prompt.ids), run.cached_tokens)
            generated += run.tokens
            reason = "length" if run.stop_reason == "max_tokens" and not scanner.stopped else "stop"
            choices.append({"text": scanner.text, "index": index, "logprobs": None, "finish_reason": reason})
        usage = {"prompt_tokens": len(prompt.ids), "completion_tokens": generated}
        return completion_envelope(model, choices, {**usage, "total_tokens": len(prompt.ids) + generated})


def completion_envelope(model: LoadedModel, choices: list[dict[str, Any]], usage: dict[str, int] | None) -> dict:
    body: dict[str, Any] = {
        "id": f"cmpl-{uuid.uuid4().hex[:24]}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model.path.name,
        "choices": choices,
    }
    if usage is not None:
        body["usage"] = usage
    return body
