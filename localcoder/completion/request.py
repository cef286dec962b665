"""CompletionRequest: what every front end asks of the completion core, checked once, when it is built.

`complete`, the server's own /infill (and its client), the language server, `bench` and the demo build one with
`CompletionRequest.build` and hand it to `localcoder.pipeline.complete`, which runs the repository
context stage on it (`localcoder.context`: the budget, the open documents and the root it carries). Everything
that can be wrong with a request (a scope or layout that does not exist, a cursor past the end, too many
alternatives) is a one-line LocalcoderError from `build`, before a model is loaded or leased.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePath

from localcoder.completion.generate import Sampling
from localcoder.completion.prompts import check_layout
from localcoder.completion.snippets import Snippet
from localcoder.completion.truncate import CursorContext, Scope, check_scope, default_scope
from localcoder.errors import LocalcoderError
from localcoder.source import Cursor, SourceBuffer, locate

MAX_ALTERNATIVES = 16
# How long the repository context stage may take (localcoder.context.stage): a resident process (serve, the language
# server) answers keystrokes, so a few hundred ms (LOCALCODER_CONTEXT_MS changes it: a slow disk, a loaded machine);
# a one-shot CLI call a few seconds (it indexes a cold tree).
RESIDENT_CONTEXT_SECONDS = 0.3
ONE_SHOT_CONTEXT_SECONDS = 3.0
CONTEXT_MS_VARIABLE = "LOCALCODER_CONTEXT_MS"

# File suffixes to the language names editors use (LSP's languageId); None where a path says nothing.
LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".jsx": "javascriptreact",
    ".ts": "typescript",
    ".tsx": "typescriptreact",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".hpp": "cpp",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".rb": "ruby",
    ".sh": "shellscript",
    ".lua": "lua",
    ".php": "php",
}


def language_of(path: str) -> str | None:
    return LANGUAGES.get(PurePath(path).suffix.lower())


@dataclass(frozen=True)
class CompletionRequest:
    """A document, a cursor in it, and how to complete there. Build it with `build`, which checks it."""

    buffer: SourceBuffer  # the document: its text ("\n" newlines) and path
    cursor: Cursor
    scope: Scope  # resolved: `build` picks block or line from the cursor when none is asked for
    sampling: Sampling = Sampling()
    n: int = 1  # alternatives; alternative i is seeded seed + i
    layout: str = "stable"  # a key of prompts.PROMPT_LAYOUTS
    snippets: tuple[Snippet, ...] = ()  # other files' code, shown before the document; newest last
    language: str | None = None
    context_budget: int | None = None  # tokens of repository context (budget.PromptBudget); None: the default; 0: none
    open_documents: tuple[tuple[str, str], ...] = ()  # (path, text) of other open buffers: context ranks them first
    context_root: str | None = None  # the repository the context stage searches; None: found from the path
    context_seconds: float | None = None  # the context stage's deadline; None: a resident process's (see above)

    @classmethod
    def build(
        cls,
        buffer: SourceBuffer,
        line: int,
        col: int | None = None,
        *,
        sampling: Sampling = Sampling(),
        scope: str | None = None,
        n: int = 1,
        layout: str = "stable",
        snippets: tuple[Snippet, ...] = (),
        language: str | None = None,
        context_budget: int | None = None,
        open_documents: tuple[tuple[str, str], ...] = (),
        context_root: str | None = None,
        context_seconds: float | None = None,
    ) -> CompletionRequest:
        """The checked request for the cursor at `line`:`col` (1-based; no col: the end of the line's text)."""
        if scope is not None:
            check_scope(scope)
        check_layout(layout)
        if not 1 <= n <= MAX_ALTERNATIVES:
            raise LocalcoderError(f"n must be 1 to {MAX_ALTERNATIVES} alternatives, not {n}")
        if sampling.max_tokens < 1:
            raise LocalcoderError(f"max_tokens must be at least 1, not {sampling.max_tokens}")
        if context_budget is not None and context_budget < 0:
            raise LocalcoderError(f"the context budget must be 0 tokens (none) or more, not {context_budget}")
        cursor = locate(buffer, line, col)
        text, offset = buffer.text, cursor.offset
        line_end = text.find("\n", offset)
        # The default scope looks only at the cursor's own line: no copy of the rest of a large file.
        cursor_line = CursorContext(_line_before(text, offset), text[offset : len(text) if line_end < 0 else line_end])
        return cls(
            buffer=buffer,
            cursor=cursor,
            scope=scope or default_scope(cursor_line),  # type: ignore[arg-type]
            sampling=sampling,
            n=n,
            layout=layout,
            snippets=tuple(snippets),
            language=language or language_of(buffer.path),
            context_budget=context_budget,
            open_documents=tuple(open_documents),
            context_root=context_root,
            context_seconds=context_seconds,
        )

    @property
    def context_deadline_seconds(self) -> float:
        """The context stage's time: the request's own, else LOCALCODER_CONTEXT_MS, else a resident process's."""
        if self.context_seconds is not None:
            return self.context_seconds
        asked = os.environ.get(CONTEXT_MS_VARIABLE, "").strip()
        try:
            return max(0.0, float(asked) / 1000) if asked else RESIDENT_CONTEXT_SECONDS
        except ValueError:
            return RESIDENT_CONTEXT_SECONDS

    @property
    def prefix(self) -> str:
        return self.buffer.text[: self.cursor.offset]

    @property
    def suffix(self) -> str:
        return self.buffer.text[self.cursor.offset :]

    @property
    def line_before(self) -> str:
        """The cursor's line up to the cursor (what the scope rules measure indentation from)."""
        return _line_before(self.buffer.text, self.cursor.offset)


def _line_before(text: str, offset: int) -> str:
    return text[text.rfind("\n", 0, offset) + 1 : offset]
