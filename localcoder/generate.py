"""Sample tokens from a loaded model until a stop token, the token budget, or the caller says stop.

Text is decoded incrementally from each token's exact bytes (see
convert.llamacpp), so a multi-byte character split across tokens is printed
only when it is complete.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from convert.llamacpp import token_piece


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.2  # 0: greedy
    top_p: float = 0.95
    max_tokens: int = 128
    seed: int | None = None


@dataclass
class Generation:
    text: str
    tokens: int
    stop_reason: str  # "eom" | "end_of_text" | "scope" | "max_tokens"
    prompt_ms: float
    generate_ms: float


def generate(
    llm: Any,
    prompt_ids: list[int],
    stop: frozenset[int],
    sampling: Sampling,
    on_text: Callable[[str], bool],
    eom_id: int | None = None,
) -> Generation:
    """Run one generation; `on_text` gets each new piece of text and returns False to stop early."""
    if sampling.seed is not None:
        llm.set_seed(sampling.seed)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pieces: list[str] = []
    count = 0
    reason = "max_tokens"
    started = time.perf_counter()
    first_token_at = None
    tokens = llm.generate(
        prompt_ids,
        temp=sampling.temperature,
        top_p=sampling.top_p,
        top_k=0,
        min_p=0.0,
        repeat_penalty=1.0,
    )
    for token in tokens:
        if first_token_at is None:
            first_token_at = time.perf_counter()
        if token in stop:
            reason = "eom" if token == eom_id else "end_of_text"
            break
        count += 1
        text = decoder.decode(token_piece(llm, token, special=False))
        pieces.append(text)
        if text and not on_text(text):
            reason = "scope"
            break
        if count >= sampling.max_tokens:
            break
    tail = decoder.decode(b"", final=True)
    if tail and reason != "scope":
        pieces.append(tail)
        on_text(tail)
    finished = time.perf_counter()
    first_token_at = first_token_at or finished
    return Generation(
        "".join(pieces), count, reason, (first_token_at - started) * 1000, (finished - first_token_at) * 1000
    )
