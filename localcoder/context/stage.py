"""The context stage of a completion: a CompletionRequest and the model's window -> the snippets its prompt shows.

`complete()` (localcoder/pipeline.py) calls `request_context` for every front end (the CLI, serve's POST /infill, the
language server), so they all see the same context. It spends the request's `PromptBudget.context`
(completion/budget.py: the pipeline decides it once, with the share of the prompt the snippets take), which the
trimming of the code around the cursor leaves to them.

Its time is bounded too: the request's `context_seconds` (a few seconds for the CLI; for serve and the language
server a few hundred ms, or LOCALCODER_CONTEXT_MS; completion.request), and the request's `cancelled` (a client that
hung up, a newer keystroke) ends it early, so a hostile or huge repository never decides how long a keystroke waits
or holds the model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from localcoder.completion.budget import PromptBudget
from localcoder.completion.request import CompletionRequest
from localcoder.context.gather import Counter, RepoContext, gather
from localcoder.context.resolver import Deadline
from localcoder.source import STDIN_NAME

DEFAULT_WINDOW = 2048  # CodeGen2.5's, for `localcoder context` without a model
DEFAULT_MAX_TOKENS = 128  # complete's default --max-tokens
NOT_FILES = (STDIN_NAME, "<request>", "-", "")


def default_budget() -> int:
    """The context budget of `localcoder context` without a model: a CodeGen2.5 window's default share."""
    return PromptBudget.of(DEFAULT_WINDOW, DEFAULT_MAX_TOKENS).context


def request_context(
    request: CompletionRequest, counter: Counter, budget: PromptBudget, cancelled: Callable[[], bool] | None = None
) -> RepoContext | None:
    """The request's repository context, or None when it has none (turned off, or no file to place it in); what
    was found by the request's deadline, or by the time `cancelled()` said yes."""
    path = request.buffer.path
    if request.context_budget == 0 or path in NOT_FILES or not Path(path).absolute().parent.is_dir():
        return None
    return gather(
        path,
        request.buffer.text,
        request.cursor.offset,
        budget=budget.context,
        counter=counter,
        open_documents=dict(request.open_documents),
        root=request.context_root,
        extra=request.snippets,
        deadline=Deadline.after(request.context_deadline_seconds, cancelled),
    )
