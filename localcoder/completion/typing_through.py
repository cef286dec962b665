"""Typing through a suggestion: the user types what was just suggested, and gets the rest without the model.

An editor asks again at every keystroke. When the text before the new cursor is the text before an earlier
request's cursor plus the start of the suggestion given for it (and everything else the prompt holds is the
same: format, context snippets, the text after the cursor, sampling), the answer is the rest of that
suggestion, at once. Where the suggestion ended at its token budget rather than at <eom> or a cut, the
generation goes on from the KV state it left (old prompt + generated tokens), so typing through a long
suggestion reads nothing and samples only the new tokens. Continue (its GeneratorReuseManager) and
llama.vim (its cache) answer the same way on the client side.

The last few suggestions are kept per loaded model (prompt_cache.Suggestions); the latest match wins.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from localcoder.completion.generate import Generation, Sampling, TextCut, finish_cut, through_cut
from localcoder.completion.prompt_cache import Suggestion
from localcoder.completion.prompts import Prompt


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
