"""Sample tokens from a loaded model until a stop token, the token budget, or the caller says stop.

Text is decoded incrementally from each token's exact bytes (see
ggufkit.llamacpp), so a multi-byte character split across tokens is printed
only when it is complete.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ggufkit.llamacpp import token_piece
from localcoder.completion.prompt_cache import common_prefix
from localcoder.completion.prompt_read import GenerationCancelled, read_tokens

__all__ = [
    "AskCut", "GenerationCancelled", "Generation", "Job", "Piece", "Sampling", "TextCut", "drive", "generate",
    "read_prompt",
]  # fmt: skip

MAX_TEMPERATURE = 2.0  # as OpenAI's API: beyond it sampling is noise
SEED_MIN, SEED_MAX = -(2**31), 2**31 - 1  # llama.cpp's seed is 32 bits
MAX_TOP_K = 10**6
# What each sampling setting may be, inclusive: every front end that reads one from a user (serve's bodies,
# the language server's settings, chat's /set, the CLI's options) checks it against these.
SAMPLING_BOUNDS: dict[str, tuple[float, float]] = {
    "temperature": (0.0, MAX_TEMPERATURE),
    "top_p": (0.0, 1.0),
    "seed": (SEED_MIN, SEED_MAX),
    "top_k": (0, MAX_TOP_K),
}


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


@dataclass(frozen=True)
class Piece:
    """What a backend yields: the text one step added ("" while a character's bytes are incomplete, or for a step
    that only marks the first token's time) and how many generated tokens it counts."""

    text: str
    tokens: int = 1


@dataclass
class Job:
    """One generation asked of a backend (`Backend.pieces`): the prompt ids to continue (or, for a chat turn, the
    messages for the model's chat template), how to sample, the ids that stop it, and who may cancel it. The
    backend fills in the rest as it goes; `drive` applies the cut, the cancellation and the timing."""

    llm: Any
    prompt_ids: list[int]
    sampling: Sampling
    stop: frozenset[int] = frozenset()
    eom_id: int | None = None
    cancelled: Callable[[], bool] | None = None
    messages: list[dict[str, str]] | None = None  # a chat turn instead of prompt ids
    finish: str | None = None  # set by the backend: "eom" | "end_of_text" | "max_tokens"; by drive: "scope"
    cached_tokens: int = 0  # set by the backend: prompt tokens whose KV state was already in the context
    ids: list[int] = field(default_factory=list)  # set by the backend: the tokens generated (in-process only)


def drive(pieces: Iterator[Piece], job: Job, cut: TextCut, on_text: Callable[[str], None] | None = None) -> Generation:
    """The one generation loop above every backend: each piece's text goes through `cut` (and what the cut lets
    out to `on_text`), `job.cancelled()` is asked with each piece of text (GenerationCancelled), the generation
    ends once the cut has stopped (the backend's iterator is closed: an engine's connection with it), and the
    prompt and generation times are measured here."""
    feed = through_cut(cut, on_text, job.cancelled)
    texts: list[str] = []
    tokens = 0
    started = time.perf_counter()
    first = None
    try:
        for piece in pieces:
            first = first or time.perf_counter()
            tokens += piece.tokens
            if piece.text:
                texts.append(piece.text)
                if not feed(piece.text):
                    job.finish = "scope"
                    break
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()
    finish_cut(cut, on_text)
    finished = time.perf_counter()
    first = first or finished
    reason = job.finish or "max_tokens"
    return Generation(
        "".join(texts), tokens, reason, (first - started) * 1000, (finished - first) * 1000, job.cached_tokens, job.ids
    )


def local_pieces(job: Job) -> Iterator[Piece]:
    """In-process generation with llama.cpp: a piece per token, until a stop id or the token budget.

    All of the prompt but its last token is read first through prompt_read (asking `cancelled()` between
    batches and inside them: GenerationCancelled); llama-cpp-python's generate then reads the last token for
    the first logits and finds the rest cached."""
    llm, sampling = job.llm, job.sampling
    if sampling.seed is not None:
        llm.set_seed(sampling.seed)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    job.cached_tokens = cached_prefix(llm, job.prompt_ids)
    read_tokens(llm, job.prompt_ids[:-1], job.cancelled)
    tokens = llm.generate(
        job.prompt_ids,
        temp=sampling.temperature,
        top_p=sampling.top_p,
        top_k=sampling.top_k,
        min_p=0.0,
        repeat_penalty=1.0,
    )
    for token in tokens:
        if token in job.stop:
            job.finish = "eom" if token == job.eom_id else "end_of_text"
            yield Piece("", 0)  # the first token's time, when the first is the stop
            return
        job.ids.append(token)
        yield Piece(decoder.decode(token_piece(llm, token, special=False)))
        if len(job.ids) >= sampling.max_tokens:
            break
    tail = decoder.decode(b"", final=True)
    if tail:
        yield Piece(tail, 0)


def local_chat_pieces(job: Job) -> Iterator[Piece]:
    """A chat turn in process, with the GGUF's chat template (llama-cpp-python's create_chat_completion)."""
    stream = job.llm.create_chat_completion(
        messages=job.messages,
        temperature=job.sampling.temperature,
        top_p=job.sampling.top_p,
        max_tokens=job.sampling.max_tokens,
        seed=job.sampling.seed,
        stream=True,
    )
    job.finish = "eom"
    for chunk in stream:
        choice = chunk["choices"][0]
        text = choice.get("delta", {}).get("content") or ""
        if choice.get("finish_reason") == "length":
            job.finish = "max_tokens"
        if text:
            yield Piece(text)


def generate(
    llm: Any,
    prompt_ids: list[int],
    stop: frozenset[int],
    sampling: Sampling,
    on_text: Callable[[str], bool],
    eom_id: int | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Generation:
    """Run one in-process generation; `on_text` gets each new piece of text and returns False to stop early."""
    job = Job(llm, prompt_ids, sampling, stop, eom_id, cancelled)
    return drive(local_pieces(job), job, AskCut(on_text))


class AskCut:
    """A cut that keeps nothing back and stops when a callback, given each piece of text, answers False."""

    def __init__(self, on_text: Callable[[str], bool]) -> None:
        self.on_text, self.stopped = on_text, False

    def feed(self, chunk: str) -> str:
        self.stopped = not self.on_text(chunk)
        return ""

    def finish(self) -> str:
        return ""


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
