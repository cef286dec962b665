"""From an editor's document and cursor to a CompletionRequest, and from the result to LSP items.

One target per request: where the item's range starts and ends in the document, and the text the model
sees. With `selectedCompletionInfo` (the editor's completion popup has an entry selected) the model sees
the document as if that entry were accepted, and the item starts with it, as the spec asks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lsprotocol import types

from localcoder.completion.request import CompletionRequest
from localcoder.context.repository import MARKERS, find_root
from localcoder.lsp.documents import position_at
from localcoder.lsp.options import LspOptions
from localcoder.source import SourceBuffer, dominant_newline, normalize_newlines

SORT_FIRST = "0000"  # sortText that puts the completion above the editor's other entries


@dataclass(frozen=True)
class Target:
    start: int  # where the item's range starts in the document (code points)
    end: int  # where it ends: the cursor, or the end of the cursor's line when `tail` is non-blank
    lead: str  # the selected completion entry, put before the model's text
    tail: str  # the rest of the line that the range covers, put after it
    text: str  # the document as the model sees it
    offset: int  # the cursor in `text`


def target_at(text: str, start: int, end: int | None = None, selected: str = "") -> Target:
    """The target for a cursor at `start`, or for the entry `selected` replacing text[start:end]."""
    end = start if end is None else end
    line_end = len(text)
    for newline in ("\r", "\n"):
        found = text.find(newline, end)
        if 0 <= found < line_end:
            line_end = found
    tail = text[end:line_end]
    covered = line_end if tail.strip() else end
    return Target(
        start,
        covered,
        selected,
        tail if tail.strip() else "",
        text[:start] + selected + text[end:],
        start + len(selected),
    )


def path_of(uri: str) -> str:
    """The file path of a file: URI (what the prompt names and the language is guessed from), else the URI."""
    parts = urlsplit(uri)
    return unquote(parts.path) if parts.scheme == "file" else uri


def context_root(path: str, roots: list[Path]) -> str | None:
    """The folder the context stage searches for a document at `path`: the innermost workspace folder holding it,
    unless a repository (git, or a project file) sits inside that folder around the file, which wins as it does
    for `complete`. None (the stage finds the root from the path) for a file outside every workspace folder."""
    edited = Path(path).absolute()
    holding = [root for root in roots if edited.is_relative_to(root)]
    if not holding:
        return None
    workspace = max(holding, key=lambda root: len(root.parts))
    found = find_root(edited)
    marked = (found / ".git").exists() or any((found / marker).is_file() for marker in MARKERS)
    return None if marked and found.is_relative_to(workspace) else str(workspace)


def build_request(
    target: Target,
    path: str,
    language: str | None,
    options: LspOptions,
    open_documents: dict[str, str] | None = None,
    roots: list[Path] | None = None,
) -> CompletionRequest:
    """The checked CompletionRequest at the target's cursor; the core wants "\\n" newlines and 1-based lines.

    The core's context stage adds code from the repository (`localcoder.context`): the open documents (path -> the
    text the editor sent, not the file on disk) rank first, and the workspace folders (`roots`) are searched."""
    prefix = normalize_newlines(target.text[: target.offset])
    text = prefix + normalize_newlines(target.text[target.offset :])
    buffer = SourceBuffer(path, text, "utf-8", False, dominant_newline(target.text))
    line = prefix.count("\n") + 1
    col = len(prefix) - prefix.rfind("\n")
    return CompletionRequest.build(
        buffer,
        line,
        col,
        sampling=options.sampling,
        scope=options.scope,
        layout=options.prompt_layout,
        language=language,
        context_budget=options.context_budget,
        open_documents=tuple((open_documents or {}).items()),
        context_root=context_root(path, roots or []),
    )


def _insert_text(target: Target, completion: str, newline: str) -> str:
    return target.lead + completion.replace("\n", newline) + target.tail


def _range(text: str, target: Target, encoding: str) -> types.Range:
    start, end = position_at(text, target.start, encoding), position_at(text, target.end, encoding)
    return types.Range(types.Position(start.line, start.character), types.Position(end.line, end.character))


def inline_items(text: str, target: Target, completion: str, encoding: str) -> list[types.InlineCompletionItem]:
    """textDocument/inlineCompletion's items: the completion as ghost text from the cursor."""
    if not completion:
        return []
    insert = _insert_text(target, completion, dominant_newline(text))
    return [types.InlineCompletionItem(insert_text=insert, range=_range(text, target, encoding))]


def word_start(text: str, offset: int) -> int:
    """Where the identifier that ends at `offset` starts (`offset` itself after a space or a dot)."""
    start = offset
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    return start


def completion_items(text: str, target: Target, completion: str, encoding: str) -> types.CompletionList:
    """textDocument/completion's fallback: one plain-text item, labelled by its first line, sorted first.

    Its edit starts where the word being typed starts and writes that word again before the completion: clients
    that complete words (Emacs's eglot, Neovim's omnifunc) take the word before the cursor as what the item
    must start with, and replace it; VS Code filters by the text between the range's start and the cursor."""
    if not completion:
        return types.CompletionList(is_incomplete=True, items=[])
    start = word_start(text, target.start)
    insert = text[start : target.start] + _insert_text(target, completion, dominant_newline(text))
    label = completion.strip().split("\n", 1)[0].strip() or completion.strip() or completion
    edit_range = _range(text, replace(target, start=start), encoding)
    item = types.CompletionItem(
        label=label,
        kind=types.CompletionItemKind.Text,
        detail="localcoder",
        sort_text=SORT_FIRST,
        filter_text=insert.splitlines()[0] if insert.strip() else insert,
        preselect=True,
        insert_text=insert,
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(range=edit_range, new_text=insert),
    )
    # Incomplete: the next keystroke asks again rather than filtering this answer.
    return types.CompletionList(is_incomplete=True, items=[item])
