"""complete(): buffer and cursor -> the infill core (prompt, generation) with a scope cut -> result.

The CLI and the server's own /infill call this one function; rendering is elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from localcoder.generate import Sampling
from localcoder.infill import InfillInput, fill, prepare
from localcoder.prompts import PROMPT_LAYOUTS
from localcoder.runtime import LoadedModel
from localcoder.snippets import Snippet
from localcoder.source import Cursor, SourceBuffer
from localcoder.truncate import CursorContext, Scope, StreamingTruncator, default_scope


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

    @property
    def stop_reason(self) -> str:
        return self.alternatives[0].stop_reason

    def to_dict(self) -> dict[str, Any]:
        first = self.alternatives[0]
        data: dict[str, Any] = {
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
        }
        if len(self.alternatives) > 1:
            data["alternatives"] = [
                {"completion": a.completion, "stop_reason": a.stop_reason, "tokens": a.tokens}
                for a in self.alternatives
            ]
        return data


__all__ = ["PROMPT_LAYOUTS", "Alternative", "CompletionResult", "complete"]


def complete(
    model: LoadedModel,
    buffer: SourceBuffer,
    cursor: Cursor,
    sampling: Sampling,
    scope: Scope | None = None,
    n: int = 1,
    on_text: Callable[[int, str], None] | None = None,
    layout: str = "stable",
    cancelled: Callable[[], bool] | None = None,
    snippets: tuple[Snippet, ...] = (),
) -> CompletionResult:
    """Fill in code at `cursor`; `on_text(alternative, text)` streams each alternative's final text.

    `cancelled()` is asked after every token; when it says yes (a client went away), GenerationCancelled is
    raised and the model is left ready for the next request. `snippets` (other files' code) come before the
    file in the prompt.
    """
    started = time.perf_counter()
    prefix, suffix = buffer.text[: cursor.offset], buffer.text[cursor.offset :]
    line_start = prefix.rfind("\n") + 1
    context = CursorContext(line_before=prefix[line_start:], suffix=suffix)
    chosen_scope = scope or default_scope(context)
    prompt = prepare(model, InfillInput(prefix, suffix, snippets, layout), sampling.max_tokens)
    filled = fill(model, prompt, sampling, lambda: StreamingTruncator(chosen_scope, context), n, on_text, cancelled)
    alternatives = [
        Alternative(f.text, f.stop_reason, f.run.tokens, f.run.prompt_ms, f.run.generate_ms, f.run.cached_tokens)
        for f in filled.alternatives
    ]

    first = alternatives[0]
    return CompletionResult(
        completion=first.completion,
        alternatives=alternatives,
        cursor=cursor,
        scope=chosen_scope,
        model=str(model.path),
        prompt_format=model.format.name,
        prompt_tokens=len(prompt.ids),
        trimmed_lines={"above": prompt.trimmed_prefix_lines, "below": prompt.trimmed_suffix_lines},
        timings_ms={
            "load": model.load_ms,
            "prompt": first.prompt_ms,
            "generate": first.generate_ms,
            "total": (time.perf_counter() - started) * 1000,
        },
        notes=prompt.notes,
        prompt_layout=layout,
        cache_slot=filled.slot,
    )
