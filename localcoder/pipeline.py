"""complete(): a CompletionRequest -> its budget -> the context stage -> the infill core (prompt, generation) with
a scope cut -> a typed result.

The pipeline sits above its stages (context/, completion/) and calls them in order; they never import it. The
CLI, the server's own /infill, the language server, bench and the demo call this one function; rendering is
elsewhere (render.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from localcoder.completion.generate import GenerationCancelled
from localcoder.completion.infill import InfillInput, run
from localcoder.completion.model import LoadedModel
from localcoder.completion.request import CompletionRequest
from localcoder.completion.truncate import CursorContext, StreamingTruncator
from localcoder.context.stage import request_context
from localcoder.schemas import SCHEMA_VERSION
from localcoder.source import Cursor


@dataclass
class Alternative:
    completion: str
    stop_reason: str
    tokens: int
    prompt_ms: float
    generate_ms: float
    cached_tokens: int = 0


@dataclass
class CompletionResult:
    completion: str
    alternatives: list[Alternative]
    cursor: Cursor
    scope: str
    model: str
    prompt_format: str
    prompt_tokens: int
    trimmed_lines: dict[str, int]
    timings_ms: dict[str, float]
    notes: list[str] = field(default_factory=list)
    prompt_layout: str = "stable"
    cache_slot: int = 0  # which cached token sequence served it (serve --cache-slots)
    context: list[dict[str, Any]] = field(default_factory=list)  # repository context: ContextSnippet.to_dict()s
    typed_through: bool = False  # the rest of an earlier suggestion the text typed since starts (typing_through.py)

    @property
    def stop_reason(self) -> str:
        return self.alternatives[0].stop_reason

    def to_dict(self) -> dict[str, Any]:
        first = self.alternatives[0]
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,  # localcoder/schemas/complete.json
            "completion": self.completion,
            "cursor": asdict(self.cursor),
            "scope": self.scope,
            "stop_reason": first.stop_reason,
            "tokens": {"prompt": self.prompt_tokens, "cached": first.cached_tokens, "generated": first.tokens},
            "timings_ms": {key: round(value, 3) for key, value in self.timings_ms.items()},
            "model": self.model,
            "prompt_format": self.prompt_format,
            "prompt_layout": self.prompt_layout,
            "trimmed_lines": self.trimmed_lines,
            "notes": self.notes,
            "cache_slot": self.cache_slot,
            "context": self.context,
            "typed_through": self.typed_through,
        }
        if len(self.alternatives) > 1:
            data["alternatives"] = [
                {"completion": a.completion, "stop_reason": a.stop_reason, "tokens": a.tokens}
                for a in self.alternatives
            ]
        return data


__all__ = ["Alternative", "CompletionRequest", "CompletionResult", "complete"]


def complete(
    model: LoadedModel,
    request: CompletionRequest,
    on_text: Callable[[int, str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> CompletionResult:
    """Fill in code at the request's cursor; `on_text(alternative, text)` streams each alternative's final text.

    `cancelled()` is asked while the prompt is read and after every token; when it says yes (a client went away,
    a newer keystroke), GenerationCancelled is raised and the model is left ready for the next request. The
    request's snippets (other files' code) come before the document in the prompt.
    """
    started = time.perf_counter()
    suffix = request.suffix
    budget = model.budget(request.sampling.max_tokens, request.context_budget)  # decided once, for both stages
    repo = request_context(request, model.vocab.count_tokens, budget, cancelled)
    if cancelled is not None and cancelled():  # the client hung up while context was gathered: free the model now
        raise GenerationCancelled("cancelled while gathering repository context")
    context_ms = (time.perf_counter() - started) * 1000
    snippets = repo.to_snippets() if repo is not None else request.snippets
    source = InfillInput(request.prefix, suffix, snippets, request.layout)
    context = CursorContext(request.line_before, suffix)
    make_cut = lambda: StreamingTruncator(request.scope, context)  # noqa: E731
    filled = run(model, source, request.sampling, make_cut, request.n, on_text, cancelled, budget)
    prompt = filled.prompt
    alternatives = [
        Alternative(f.text, f.stop_reason, f.run.tokens, f.run.prompt_ms, f.run.generate_ms, f.run.cached_tokens)
        for f in filled.alternatives
    ]

    first = alternatives[0]
    return CompletionResult(
        completion=first.completion,
        alternatives=alternatives,
        cursor=request.cursor,
        scope=request.scope,
        model=str(model.path),
        prompt_format=model.format.name,
        prompt_tokens=len(prompt.ids),
        trimmed_lines={"above": prompt.trimmed_prefix_lines, "below": prompt.trimmed_suffix_lines},
        timings_ms={
            "load": model.load_ms,
            "prompt": first.prompt_ms,
            "generate": first.generate_ms,
            "context": context_ms,
            "total": (time.perf_counter() - started) * 1000,
        },
        notes=[*(repo.notes if repo else ()), *prompt.notes],
        prompt_layout=request.layout,
        cache_slot=filled.slot,
        context=[s.to_dict() for s in repo.snippets] if repo else [],
        typed_through=filled.typed_through,
    )
