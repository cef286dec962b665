"""The context stage of a completion: a CompletionRequest and the model's window -> the snippets its prompt shows.

`complete()` calls `request_context` for every front end (the CLI, serve's POST /infill, the language server), so
they all see the same context. The budget is shared with the prefix and suffix: by default 1/DEFAULT_SHARE of the
prompt's tokens, never more than the snippets' share (completion.snippets.SNIPPET_SHARE), which the trimming of
the code around the cursor leaves to them.

Its time is bounded too: the request's `context_seconds` (a few seconds for the CLI; for serve and the language
server a few hundred ms, or LOCALCODER_CONTEXT_MS; completion.request), and the request's `cancelled` (a client that
hung up, a newer keystroke) ends it early, so a hostile or huge repository never decides how long a keystroke waits
or holds the model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from localcoder.completion.request import CompletionRequest
from localcoder.completion.snippets import SNIPPET_SHARE
from localcoder.context.gather import Counter, RepoContext, gather
from localcoder.context.resolver import Deadline
from localcoder.source import STDIN_NAME

DEFAULT_SHARE = 3
DEFAULT_WINDOW = 2048  # CodeGen2.5's, for `localcoder context` without a model
DEFAULT_MAX_TOKENS = 128  # complete's default --max-tokens
NOT_FILES = (STDIN_NAME, "<request>", "-", "")


def context_budget(prompt_tokens: int, asked: int | None) -> int:
    """Tokens for repository context in a prompt of `prompt_tokens`: `asked`, else the default share; capped."""
    cap = prompt_tokens // SNIPPET_SHARE
    return min(cap, prompt_tokens // DEFAULT_SHARE if asked is None else asked)


def default_budget() -> int:
    return context_budget(DEFAULT_WINDOW - DEFAULT_MAX_TOKENS, None)


def request_context(
    request: CompletionRequest, counter: Counter, prompt_tokens: int, cancelled: Callable[[], bool] | None = None
) -> RepoContext | None:
    """The request's repository context, or None when it has none (turned off, or no file to place it in); what
    was found by the request's deadline, or by the time `cancelled()` said yes."""
    path = request.buffer.path
    if request.repo_context == 0 or path in NOT_FILES or not Path(path).absolute().parent.is_dir():
        return None
    budget = context_budget(prompt_tokens, request.repo_context)
    return gather(
        path,
        request.buffer.text,
        request.cursor.offset,
        budget=budget,
        counter=counter,
        open_documents=dict(request.open_documents),
        root=request.context_root,
        extra=request.snippets,
        deadline=Deadline.after(request.context_deadline_seconds, cancelled),
    )
