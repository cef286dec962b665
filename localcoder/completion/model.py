"""A model opened for completion: the core's central type, what every stage reads (`runtime.load_model` and
`tokenizer_only.load_vocabulary` build it; nothing here loads anything).

The vocabulary and prompt format build the prompt here, whatever generates; the backend is where tokens come
from; the cache holds the KV state of the prompts read (PromptCache), or nothing when an engine keeps its own
(EngineCache); the suggestions given are kept for typing through (typing_through.py), whatever generates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcoder.completion.backends import Backend, LocalBackend
from localcoder.completion.budget import PromptBudget
from localcoder.completion.prompt_cache import EngineCache, PromptCache
from localcoder.completion.prompts import PromptFormat, Vocabulary
from localcoder.completion.typing_through import Suggestions


@dataclass
class LoadedModel:
    path: Path
    llm: Any
    vocab: Vocabulary
    format: PromptFormat
    n_ctx: int
    load_ms: float
    cache: PromptCache | EngineCache  # EngineCache: the engine holds the prompts (tokenizer_only.py)
    backend: Backend = field(default_factory=LocalBackend)  # where tokens come from; the prompt is built here
    suggestions: Suggestions = field(default_factory=Suggestions)  # the last ones given, to type through

    @property
    def chat_template(self) -> str | None:
        return self.vocab.metadata.get("tokenizer.chat_template")

    def budget(self, max_tokens: int, context_budget: int | None = None) -> PromptBudget:
        """A request's prompt budget in this model's window (budget.PromptBudget.of)."""
        return PromptBudget.of(self.n_ctx, max_tokens, context_budget)
