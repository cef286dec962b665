"""The one infill pipeline: what to fill -> prompt ids -> a cache slot -> n generations through a cut.

`complete`, every HTTP endpoint (localcoder's /infill, llama-server's /infill, Ollama's /api/generate,
OpenAI's /v1/completions) and `eval` call `run`: `prepare` and then `fill` (or `warm_up`). What differs between
model families (the prompt's parts, the stop ids, the end-of-middle id) is the prompt format's data
(prompts.FORMATS); how the window is split between prompt, snippets and generation is the request's
budget.PromptBudget, decided once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ggufkit.llamacpp import token_piece
from localcoder.completion.backends import run_job
from localcoder.completion.budget import PromptBudget
from localcoder.completion.generate import Generation, Job, Sampling, TextCut
from localcoder.completion.model import LoadedModel
from localcoder.completion.prompts import (
    FORMATS,
    PROMPT_LAYOUTS,
    Prompt,
    build_prompt,
    check_layout,
    end_of_middle_id,
    stop_ids,
)
from localcoder.completion.snippets import Snippet, snippet_ids

TextSink = Callable[[int, str], None]


@dataclass(frozen=True)
class InfillInput:
    """The text around the gap, and what else the model should see."""

    prefix: str
    suffix: str = ""
    snippets: tuple[Snippet, ...] = ()
    layout: str = "stable"  # a key of prompts.PROMPT_LAYOUTS
    infill: bool = True  # False: left to right from the prefix, whatever the model can do

    def __post_init__(self) -> None:
        check_layout(self.layout)


@dataclass
class Filled:
    """One alternative: its text after the cut, and how generation went."""

    text: str
    run: Generation
    cut: bool  # the cut (scope, stop string, indentation, deadline) ended it

    @property
    def stop_reason(self) -> str:
        return "scope" if self.cut else self.run.stop_reason


@dataclass
class FillResult:
    prompt: Prompt
    slot: int
    alternatives: list[Filled]
    typed_through: bool = False  # answered from an earlier suggestion the user typed into (typing_through.py)

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt.ids)

    @property
    def cached_tokens(self) -> int:
        return self.alternatives[0].run.cached_tokens if self.alternatives else 0

    @property
    def read_tokens(self) -> int:
        """Prompt tokens evaluated for the first alternative (the later ones find the whole prompt cached)."""
        return self.prompt_tokens - self.cached_tokens

    @property
    def generated_tokens(self) -> int:
        return sum(filled.run.tokens for filled in self.alternatives)


def prepare(model: LoadedModel, request: InfillInput, budget: PromptBudget) -> Prompt:
    """The prompt's token ids: snippets first (in the budget's room for them), then the format around the gap."""
    fmt = model.format if request.infill and model.format.infill else FORMATS["left-to-right"]
    lead = snippet_ids(model.vocab, request.snippets, budget.snippets) if request.snippets else None
    stable_lines = PROMPT_LAYOUTS[request.layout]
    window = budget.window
    prompt = build_prompt(fmt, model.vocab, request.prefix, request.suffix, window, stable_lines, lead and lead.ids)
    prompt.lead = tuple(lead.ids) if lead is not None else ()
    if lead is not None and lead.left_out:
        prompt.notes.append(f"left out {lead.left_out} context snippet(s) that did not fit their token budget")
    return prompt


def run(
    model: LoadedModel,
    request: InfillInput,
    sampling: Sampling,
    make_cut: Callable[[], TextCut],
    n: int = 1,
    on_text: TextSink | None = None,
    cancelled: Callable[[], bool] | None = None,
    budget: PromptBudget | None = None,
) -> FillResult:
    """`prepare` then `fill` (`n` 0: `warm_up`, llama-server's n_predict 0): the one call for a request's text.
    `budget` is the request's, where the caller decided it already (the pipeline); else the model's default for
    `sampling.max_tokens`."""
    prompt = prepare(model, request, budget or model.budget(sampling.max_tokens))
    if n == 0:
        return warm_up(model, prompt, cancelled)
    return fill(model, prompt, sampling, make_cut, n, on_text, cancelled)


def fill(
    model: LoadedModel,
    prompt: Prompt,
    sampling: Sampling,
    make_cut: Callable[[], TextCut],
    n: int = 1,
    on_text: TextSink | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> FillResult:
    """`n` alternatives (alternative i seeded seed + i); `on_text(i, text)` streams what each cut lets out.

    A request that types into the last suggestion given is answered with its rest, without reading the prompt
    (typing_through.py: `model.suggestions`). `cancelled()` is asked while the prompt is read (between batches
    and inside them) and after every token; when it says yes, GenerationCancelled is raised and the model is
    left ready for the next request, the prompt batches read so far cached.
    """
    stop = stop_ids(prompt.format, model.vocab)
    eom = end_of_middle_id(prompt.format, model.vocab)
    token_text = lambda token: token_piece(model.llm, token, special=False).decode("utf-8", "replace")  # noqa: E731

    def generate(ids: list[int], budget: Sampling, cut: TextCut, show: Callable[[str], None] | None) -> Generation:
        return run_job(model.backend, Job(model.llm, ids, budget, stop, eom, cancelled), cut, show)

    def go_on(ids: list[int], budget: Sampling, cut: TextCut, show: Callable[[str], None] | None) -> Generation:
        model.cache.select(ids)  # a suggestion typed through goes on from the KV state it left
        return generate(ids, budget, cut, show)

    if n == 1:
        show = (lambda text: on_text(0, text)) if on_text else None
        typed = model.suggestions.answer(prompt, sampling, make_cut, show, cancelled, go_on, token_text)
        if typed is not None:
            typed.run.cached_tokens = len(prompt.ids)
            return FillResult(prompt, model.cache.live, [Filled(typed.text, typed.run, typed.cut)], typed_through=True)
    slot = model.cache.select(prompt.ids).slot
    alternatives = []
    for index in range(n):
        cut = make_cut()
        shown = (lambda text, index=index: on_text(index, text)) if on_text else None
        generation = generate(prompt.ids, sampling.offset_seed(index), cut, shown)
        alternatives.append(Filled(cut.text, generation, cut.stopped))  # type: ignore[attr-defined]
    if n == 1:
        first = alternatives[0]
        model.suggestions.keep(prompt, sampling, first.text, first.run, first.cut, token_text)
    return FillResult(prompt, slot, alternatives)


def warm_up(model: LoadedModel, prompt: Prompt, cancelled: Callable[[], bool] | None = None) -> FillResult:
    """Read the prompt into a cache slot and generate nothing (n_predict 0 in llama-server's terms)."""
    slot = model.cache.select(prompt.ids).slot
    return FillResult(prompt, slot, [Filled("", model.backend.warm(model.llm, prompt.ids, cancelled), False)])
