"""The prompt's token budget, decided once per request: how the model's window is split between the prompt and
generation, how much of the prompt the snippets may take, and how much of that the repository context stage may
spend. The pipeline builds one `PromptBudget` and hands the same one to the context stage and to `infill.prepare`,
so the two never compute it apart.

Snippets take at most 1/SNIPPET_SHARE of the prompt: a fixed share, so the file's own window does not move when
the file grows. Repository context takes what the request asks (`context_budget`: 0 none), else 1/CONTEXT_SHARE of
the prompt, never more than the snippets' room (it is shown as snippets).
"""

from __future__ import annotations

from dataclasses import dataclass

SNIPPET_SHARE = 2
CONTEXT_SHARE = 3


@dataclass(frozen=True)
class PromptBudget:
    window: int  # tokens the prompt may take: the model's window less what generation may add
    snippets: int  # of which the snippets (the editor's chunks and the repository context) may take this many
    context: int  # of which the repository context stage may spend this many

    @classmethod
    def of(cls, n_ctx: int, max_tokens: int, context_budget: int | None = None) -> PromptBudget:
        """The budget of a request generating up to `max_tokens` in a window of `n_ctx`; `context_budget` is the
        tokens of repository context asked for (None: the default share)."""
        window = n_ctx - max_tokens
        snippets = window // SNIPPET_SHARE
        context = window // CONTEXT_SHARE if context_budget is None else context_budget
        return cls(window, snippets, min(snippets, context))
