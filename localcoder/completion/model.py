"""A model opened for completion: the core's central type, what every stage reads (`runtime.load_model` and
`tokenizer_only.load_vocabulary` build it; nothing here loads anything).

The vocabulary and prompt format build the prompt here, whatever generates; the backend is where tokens come
from; the cache holds the KV state of the prompts read (PromptCache), or nothing when an engine keeps its own
(EngineCache).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcoder.completion.backends import Backend, LocalBackend
from localcoder.completion.prompt_cache import EngineCache, PromptCache
from localcoder.completion.prompts import PromptFormat, Vocabulary


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

    @property
    def chat_template(self) -> str | None:
        return self.vocab.metadata.get("tokenizer.chat_template")
