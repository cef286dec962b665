"""Typing through a suggestion: the user types what was just suggested, and gets the rest without the model.

An editor asks again at every keystroke. When the text before the new cursor is the text before an earlier
request's cursor plus the start of the suggestion given for it (and everything else the prompt holds is the
same: format, context snippets, the text after the cursor, sampling), the answer is the rest of that
suggestion, at once. Where the suggestion ended at its token budget rather than at <eom> or a cut, the
generation goes on from the KV state it left (old prompt + generated tokens), so typing through a long
suggestion reads nothing and samples only the new tokens. Continue (its GeneratorReuseManager) and
llama.vim (its cache) answer the same way on the client side.

This module is its one owner: `Suggestions`, the store of the last few suggestions given (one per loaded model,
`LoadedModel.suggestions`; the latest match wins), answers a request that types into one (`answer`) and keeps
each new one (`keep`); infill.fill asks it first and tells it what it generated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from localcoder.completion.generate import Generation, Sampling, TextCut, finish_cut, through_cut
from localcoder.completion.prompts import Prompt

KEPT_SUGGESTIONS = 8
Show = Callable[[str], None]  # streams what a cut lets out
TokenText = Callable[[int], str]  # a generated token's text
GoOn = Callable[[list[int], Sampling, TextCut, Show | None], Generation]  # continue these ids through the cut


@dataclass(frozen=True)
class Suggestion:
    context: tuple[Any, ...]  # what must be equal besides the text before the cursor
    before: str  # the text before the cursor it was made for
    text: str  # what the client was given (after the cut)
    prompt_ids: tuple[int, ...]
    generated: tuple[int, ...]  # the tokens behind `text`, in-process generations only
    ends: tuple[int, ...]  # len(text) after each generated token
    continuable: bool  # it ended at the token budget, not at <eom> or a cut
    stop_reason: str

    def tokens_after(self, chars: int) -> int:
        """How many generated tokens make up the text after its first `chars` characters."""
        return sum(1 for end in self.ends if end > chars) if self.ends else 0


class Suggestions:
    """The last suggestions given for one loaded model, and what is done with them."""

    def __init__(self) -> None:
        self._kept: list[Suggestion] = []
        self._lock = threading.Lock()  # an engine-backed server remembers from several requests at once

    def remember(self, suggestion: Suggestion, replacing: Suggestion | None = None) -> None:
        with self._lock:
            kept = [s for s in self._kept if s is not replacing and s.before != suggestion.before]
            self._kept = [*kept, suggestion][-KEPT_SUGGESTIONS:]

    def find(self, context: tuple[Any, ...], before: str) -> tuple[Suggestion, str] | None:
        """The latest suggestion `before` types into, and the typed text (never empty)."""
        for old in reversed(self._kept):
            if old.context != context or len(before) <= len(old.before) or not before.startswith(old.before):
                continue
            typed = before[len(old.before) :]
            if old.text.startswith(typed):
                return old, typed
        return None

    def answer(
        self,
        prompt: Prompt,
        sampling: Sampling,
        make_cut: Callable[[], TextCut],
        on_text: Show | None,
        cancelled: Callable[[], bool] | None,
        go_on: GoOn,
        token_text: Callable[[int], str],
    ) -> TypedThrough | None:
        """The answer to a request that types into a suggestion kept here (None when it types into none): the
        rest of it, through a new cut; where it was cut short by its budget, `go_on` continues it, and the longer
        suggestion replaces it."""
        found = self.find(context_of(prompt, sampling), before_cursor(prompt))
        if found is None:
            return None
        old, typed = found
        cut = make_cut()
        answer, longer = type_through(
            old, typed, sampling, cut, on_text, cancelled, lambda ids, budget: go_on(ids, budget, cut, on_text),
            token_text,
        )  # fmt: skip
        if longer is not None:
            self.remember(longer, replacing=old)
        return answer

    def keep(
        self, prompt: Prompt, sampling: Sampling, text: str, run: Generation, cut: bool, token_text: TokenText
    ) -> None:
        """Remember what a request was given, to answer the requests that type into it."""
        self.remember(suggestion_of(prompt, sampling, text, run, cut, token_text))


def context_of(prompt: Prompt, sampling: Sampling) -> tuple[Any, ...]:
    return (prompt.format.name, prompt.lead, prompt.suffix, sampling.temperature, sampling.top_p, sampling.top_k)


def before_cursor(prompt: Prompt) -> str:
    return prompt.prefix + prompt.written


def text_ends(ids: list[int] | tuple[int, ...], token_text: Callable[[int], str], start: int = 0) -> tuple[int, ...]:
    """The text's length after each token, counted from `start`."""
    ends, length = [], start
    for token in ids:
        length += len(token_text(token))
        ends.append(length)
    return tuple(ends)


def suggestion_of(
    prompt: Prompt, sampling: Sampling, text: str, run: Generation, cut: bool, token_text: Callable[[int], str]
) -> Suggestion:
    continuable = run.stop_reason == "max_tokens" and not cut and bool(run.ids) and len(run.ids) == run.tokens
    return Suggestion(
        context_of(prompt, sampling),
        before_cursor(prompt),
        text,
        tuple(prompt.ids),
        tuple(run.ids),
        text_ends(run.ids, token_text),
        continuable,
        run.stop_reason,
    )


@dataclass
class TypedThrough:
    text: str
    run: Generation
    cut: bool
    continued: bool


def type_through(
    old: Suggestion,
    typed: str,
    sampling: Sampling,
    cut: TextCut,
    on_text: Callable[[str], None] | None,
    cancelled: Callable[[], bool] | None,
    go_on: Callable[[list[int], Sampling], Generation],
    token_text: Callable[[int], str],
) -> tuple[TypedThrough, Suggestion | None]:
    """The rest of `old` after `typed`, through `cut`; then, where `old` was cut short by its token budget and
    this request's budget has room, `go_on(ids, sampling)` continues from the ids it left. Returns the answer
    and the longer suggestion to keep (None when nothing was generated)."""
    started = time.perf_counter()
    rest = old.text[len(typed) :]
    rest_tokens = old.tokens_after(len(typed))
    shortened = rest_tokens > sampling.max_tokens and bool(old.ends)
    if shortened:  # a smaller budget than the suggestion had: as many of its tokens as this one allows
        rest = old.text[len(typed) : old.ends[len(old.ends) - rest_tokens + sampling.max_tokens - 1]]
        rest_tokens = sampling.max_tokens
    going = through_cut(cut, on_text, cancelled)(rest) if rest else True
    budget = sampling.max_tokens - rest_tokens
    if not (going and old.continuable and budget > 0):
        finish_cut(cut, on_text)
        reason = "scope" if cut.stopped else "max_tokens" if shortened else old.stop_reason
        run = Generation(rest, rest_tokens, reason, 0.0, (time.perf_counter() - started) * 1000)
        return TypedThrough(cut.text, run, cut.stopped, False), None  # type: ignore[attr-defined]
    more = go_on([*old.prompt_ids, *old.generated], replace(sampling, max_tokens=budget))
    run = Generation(rest + more.text, rest_tokens + more.tokens, more.stop_reason, more.prompt_ms, more.generate_ms)
    text = old.text + more.text
    ends = old.ends + text_ends(more.ids, token_text, old.ends[-1] if old.ends else 0)
    longer = replace(
        old,
        text=text,
        generated=old.generated + tuple(more.ids),
        ends=ends,
        continuable=more.stop_reason == "max_tokens" and not cut.stopped and len(more.ids) == more.tokens,
        stop_reason=more.stop_reason,
    )
    return TypedThrough(cut.text, run, cut.stopped, True), longer  # type: ignore[attr-defined]
