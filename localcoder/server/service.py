"""What the server does with a checked request and a leased model, for every protocol; HTTP is in http.py.

Every endpoint goes through the one infill core (localcoder/completion/infill.py); this module only maps a protocol's
request onto it and counts what the prompt cache saved.

Cache figures are a prefix oracle across clients: how many prompt tokens were cached (and how long the prompt took
to read, and which slot served it) tells whether a guessed prompt starts like the last one another client sent.
So the service remembers who wrote each cache slot of each model (the caller's identity, server/owner.py), and a
request sees its figures only while every slot of the model holds prompts of its own caller (or nothing): one user,
the common case, always sees them. Otherwise its answer says nothing was cached, no prompt time, slot 0, not typed
through (`blind`); the wall-clock time of the answer still grows with what was read, which only separate models
per user would hide.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from localcoder.completion.generate import GenerationCancelled, read_prompt
from localcoder.completion.infill import FillResult, InfillInput, TextSink, prepare, run
from localcoder.completion.model import LoadedModel
from localcoder.completion.truncate import StopStrings
from localcoder.pipeline import complete
from localcoder.server.llama_api import LlamaInfillRequest
from localcoder.server.ollama_api import GenerateRequest, read_spelled_infill
from localcoder.server.openai_api import OpenAICompletion
from localcoder.server.wire import NativeInfill

Cancelled = Callable[[], bool]
Who = str | None  # whose prompts a request's are (owner.Caller.cache_key); None: cannot be told


@dataclass
class CacheStats:
    """Prompt tokens read from the KV cache versus evaluated, over the server's life; and the requests answered
    without the model (typed through a suggestion) or stopped because nobody waited for them any more."""

    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    typed_through: int = 0
    cancelled: int = 0  # the client went away
    superseded: int = 0  # a newer request from the same client and file took its place
    ms_for_nobody: float = 0.0  # model time spent on cancelled and superseded requests

    def add(self, prompt_tokens: int, cached_tokens: int) -> None:
        self.requests += 1
        self.prompt_tokens += prompt_tokens
        self.cached_tokens += cached_tokens

    def stopped(self, superseded: bool, model_ms: float) -> None:
        if superseded:
            self.superseded += 1
        else:
            self.cancelled += 1
        self.ms_for_nobody += model_ms

    def to_dict(self) -> dict[str, Any]:
        rate = self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0
        evaluated = self.prompt_tokens - self.cached_tokens
        counts = {**asdict(self), "ms_for_nobody": round(self.ms_for_nobody, 1)}
        return {**counts, "evaluated_tokens": evaluated, "hit_rate": round(rate, 4)}


@dataclass(frozen=True)
class Served:
    """One request's use of the cache, for the log line and the answer."""

    slot: int
    prompt_tokens: int
    read_tokens: int
    typed_through: bool = False

    def describe(self) -> str:
        reused = self.prompt_tokens - self.read_tokens
        through = "; typed through the last suggestion, model not run" if self.typed_through else ""
        read = f"read {self.read_tokens} of {self.prompt_tokens} prompt tokens, reused {reused}"
        return f"cache slot {self.slot}: {read}{through}"


def blind(result: FillResult) -> FillResult:
    """The result as a cold cache would have served it: no cached tokens, no prompt time, slot 0."""
    hidden = [replace(f, run=replace(f.run, cached_tokens=0, prompt_ms=0.0)) for f in result.alternatives]
    return replace(result, slot=0, alternatives=hidden, typed_through=False)


def blind_native(result: dict[str, Any]) -> dict[str, Any]:
    """`complete --json`'s result with the cache figures hidden, as `blind` does."""
    timings = {**result["timings_ms"], "prompt": 0.0}
    tokens = {**result["tokens"], "cached": 0}
    return {**result, "tokens": tokens, "timings_ms": timings, "cache_slot": 0, "typed_through": False}


class Service:
    def __init__(self, log: Callable[[str], None] = lambda _line: None) -> None:
        self.stats = CacheStats()
        self._stats_lock = threading.Lock()
        self._log = log
        self._writers: dict[Path, dict[int, str]] = {}  # model -> cache slot -> who last wrote it

    def wrote(self, model: LoadedModel, slot: int, who: Who) -> bool:
        """Record that `who` wrote `slot`; True when the model's cache held only `who`'s prompts before (its
        figures are then its own). `who` None: a caller that cannot be told apart, never shown figures. Called
        under the model's lease, so the table never changes under it."""
        with self._stats_lock:
            slots = self._writers.setdefault(model.path, {})
            own = who is not None and all(writer == who for writer in slots.values())
            slots[slot] = who or "someone"
        return own

    def stopped(self, superseded: bool, model_ms: float) -> None:
        """A request stopped midway because nobody waits for it: count it and the model time it took."""
        with self._stats_lock:
            self.stats.stopped(superseded, model_ms)

    def _count(self, result: FillResult, route: str) -> Served:
        cached = [filled.run.cached_tokens for filled in result.alternatives]
        return self._tally(route, result.slot, result.prompt_tokens, cached, result.typed_through)

    def _tally(self, route: str, slot: int, prompt_tokens: int, cached: list[int], typed_through: bool) -> Served:
        """Count one request (each alternative's cached prompt tokens) and log what it read."""
        with self._stats_lock:
            for tokens in cached:
                self.stats.add(prompt_tokens, tokens)
            self.stats.typed_through += typed_through
        served = Served(slot, prompt_tokens, prompt_tokens - (cached[0] if cached else 0), typed_through)
        self._log(f"{route}: {served.describe()}")
        return served

    def native_infill(
        self, model: LoadedModel, request: NativeInfill, on_text: TextSink | None, cancelled: Cancelled, who: Who
    ) -> dict[str, Any]:
        """Exactly what `localcoder complete --json` prints for the same buffer and cursor."""
        result = complete(model, request.request, on_text, cancelled)
        cached = [alternative.cached_tokens for alternative in result.alternatives]
        self._tally("/infill", result.cache_slot, result.prompt_tokens, cached, result.typed_through)
        data = result.to_dict()
        return data if self.wrote(model, result.cache_slot, who) else blind_native(data)

    def _seen(self, model: LoadedModel, result: FillResult, who: Who) -> FillResult:
        return result if self.wrote(model, result.slot, who) else blind(result)

    def completion(
        self, model: LoadedModel, request: OpenAICompletion, on_text: TextSink | None, cancelled: Cancelled, who: Who
    ) -> FillResult:
        """An OpenAI text completion; with a suffix, an infill in the model's own prompt format."""
        cut = lambda: StopStrings(request.stop)  # noqa: E731
        result = run(model, request.source, request.sampling, cut, request.n, on_text, cancelled)
        self._count(result, "/v1/completions")
        return self._seen(model, result, who)

    def llama_infill(
        self, model: LoadedModel, request: LlamaInfillRequest, on_text: TextSink | None, cancelled: Cancelled, who: Who
    ) -> FillResult:
        """llama-server's /infill: n_predict 0 only reads the prompt (snippets and all) into the cache."""
        n = 0 if request.n_predict == 0 else request.n_cmpl  # 0: only read the prompt
        result = run(model, request.source, request.sampling, request.cut, n, on_text, cancelled)
        self._count(result, "/infill (llama-server)")
        return self._seen(model, result, who)

    def generate(
        self, model: LoadedModel, request: GenerateRequest, on_text: TextSink | None, cancelled: Cancelled, who: Who
    ) -> FillResult | None:
        """Ollama's /api/generate; None for an empty prompt, which only loads the model."""
        if request.source is None:
            return None
        source = read_spelled_infill(model.format, request.source)
        result = run(model, source, request.sampling, lambda: StopStrings(request.stop), 1, on_text, cancelled)
        self._count(result, "/api/generate")
        return self._seen(model, result, who)

    def prefetch(
        self, model: LoadedModel, source: InfillInput, text: str, max_tokens: int, cancelled: Cancelled, who: Who
    ) -> None:
        """serve --prefetch: read the prompt of the position the user reaches by accepting `text`, so that the
        next request there finds it cached; stops as soon as `cancelled()` (a request arrived) says so."""
        prompt = prepare(model, replace(source, prefix=source.prefix + text), model.budget(max_tokens))
        self.wrote(model, model.cache.select(prompt.ids).slot, who)
        try:
            run = read_prompt(model.llm, prompt.ids, cancelled)
        except GenerationCancelled as exc:
            self._log(f"prefetch: gave way to a request ({exc})")
            return
        self._log(f"prefetch: read {len(prompt.ids) - run.cached_tokens} of {len(prompt.ids)} prompt tokens")
