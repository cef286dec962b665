"""Sample tokens from a loaded model until a stop token, the token budget, or the caller says stop.

Text is decoded incrementally from each token's exact bytes (see
ggufkit.llamacpp), so a multi-byte character split across tokens is printed
only when it is complete.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ggufkit.llamacpp import token_piece
from localcoder.completion.prompt_cache import common_prefix
from localcoder.completion.prompt_read import GenerationCancelled, read_tokens

__all__ = ["GenerationCancelled", "Generation", "Sampling", "TextCut", "generate", "generate_cut", "read_prompt"]

MAX_TEMPERATURE = 2.0  # as OpenAI's API: beyond it sampling is noise
SEED_MIN, SEED_MAX = -(2**31), 2**31 - 1  # llama.cpp's seed is 32 bits


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.2  # 0: greedy
    top_p: float = 0.95
    max_tokens: int = 128
    seed: int | None = None
    top_k: int = 0  # 0: off

    def offset_seed(self, offset: int) -> Sampling:
        """The same sampling seeded seed + offset (alternative, sample or retry number); no seed stays none."""
        return self if self.seed is None else replace(self, seed=self.seed + offset)


class TextCut(Protocol):
    """Where a completion ends besides the model's stop tokens: a scope truncator, stop strings."""

    @property
    def stopped(self) -> bool: ...

    def feed(self, chunk: str) -> str: ...

    def finish(self) -> str: ...


@dataclass
class Generation:
    text: str
    tokens: int
    stop_reason: str  # "eom" | "end_of_text" | "scope" | "max_tokens"
    prompt_ms: float
    generate_ms: float
    cached_tokens: int = 0  # prompt tokens whose KV state was already in the context
    ids: list[int] = field(default_factory=list)  # the tokens generated, stop token left out (in-process only)


def cached_prefix(llm: Any, prompt_ids: list[int]) -> int:
    """How many leading prompt tokens llama-cpp-python will take from the KV cache instead of evaluating."""
    common = common_prefix(llm.input_ids[: llm.n_tokens], prompt_ids)
    if common == len(prompt_ids) == llm.n_tokens and not llm._requires_eval:
        return common
    return max(common - 1, 0) if common == len(prompt_ids) else common  # it re-reads one token for fresh logits


def read_prompt(llm: Any, prompt_ids: list[int], cancelled: Callable[[], bool] | None = None) -> Generation:
    """Read the prompt into the KV cache and generate nothing (an editor's warm-up); a held longer sequence stays."""
    started = time.perf_counter()
    read = read_tokens(llm, prompt_ids, cancelled)
    return Generation("", 0, "warm_up", (time.perf_counter() - started) * 1000, 0.0, len(prompt_ids) - read)


def generate(
    llm: Any,
    prompt_ids: list[int],
    stop: frozenset[int],
    sampling: Sampling,
    on_text: Callable[[str], bool],
    eom_id: int | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Generation:
    """Run one generation; `on_text` gets each new piece of text and returns False to stop early.

    All of the prompt but its last token is read first through prompt_read (asking `cancelled()` between
    batches and inside them: GenerationCancelled); llama-cpp-python's generate then reads the last token for
    the first logits and finds the rest cached."""
    if sampling.seed is not None:
        llm.set_seed(sampling.seed)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pieces: list[str] = []
    generated: list[int] = []
    count = 0
    reason = "max_tokens"
    cached = cached_prefix(llm, prompt_ids)
    started = time.perf_counter()
    first_token_at = None
    read_tokens(llm, prompt_ids[:-1], cancelled)
    tokens = llm.generate(
        prompt_ids,
        temp=sampling.temperature,
        top_p=sampling.top_p,
        top_k=sampling.top_k,
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
        generated.append(token)
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
        "".join(pieces),
        count,
        reason,
        (first_token_at - started) * 1000,
        (finished - first_token_at) * 1000,
        cached,
        generated,
    )


def generate_cut(
    llm: Any,
    prompt_ids: list[int],
    stop: frozenset[int],
    sampling: Sampling,
    cut: TextCut,
    eom_id: int | None = None,
    on_text: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Generation:
    """One generation whose text goes through `cut`: `on_text` gets only what `cut` lets out, generation ends
    once `cut` has stopped, and `cancelled()` is asked while the prompt is read and after every token
    (GenerationCancelled when it says yes).
    """
    run = generate(llm, prompt_ids, stop, sampling, through_cut(cut, on_text, cancelled), eom_id, cancelled)
    finish_cut(cut, on_text)
    return run


def through_cut(
    cut: TextCut, on_text: Callable[[str], None] | None, cancelled: Callable[[], bool] | None = None
) -> Callable[[str], bool]:
    """What a generation loop calls with each new piece of text (here, on an engine, or from a chat template):
    GenerationCancelled when `cancelled()` says so, else the piece goes through `cut` and what the cut lets out
    to `on_text`; False once the cut has stopped the completion."""

    def feed(text: str) -> bool:
        if cancelled is not None and cancelled():
            raise GenerationCancelled
        safe = cut.feed(text)
        if safe and on_text:
            on_text(safe)
        return not cut.stopped

    return feed


def finish_cut(cut: TextCut, on_text: Callable[[str], None] | None) -> None:
    """Generation has ended: whatever the cut still held back goes to `on_text`."""
    rest = cut.finish()
    if rest and on_text:
        on_text(rest)
