"""Context snippets: code from other files (or other places in this one) shown to the model before the prefix.

Editors send them as chunks (llama.vim's and llama.vscode's `input_extra`, `complete --context FILE`). Each
snippet becomes a comment line naming its file, then its text, tokenized on its own: the ids of a snippet
never depend on its neighbours or on the file being edited, so a resident model keeps them cached while the
user types, and a warm-up request that sends only the snippets makes the next completion cheap.

They take at most 1/SNIPPET_SHARE of the prompt budget, a fixed share so that the file's own window does not
move when the file grows. When they do not all fit, the newest (the last) are kept, in their order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from localcoder.completion.prompts import Vocabulary
from localcoder.names import shown_name

SNIPPET_SHARE = 2
_COMMENT = {
    **dict.fromkeys(("c", "h", "cc", "cpp", "hpp", "cs", "go", "java", "js", "jsx", "kt", "rs", "scala"), "//"),
    **dict.fromkeys(("swift", "ts", "tsx", "php", "dart", "zig"), "//"),
    **dict.fromkeys(("lua", "sql", "hs", "elm"), "--"),
    **dict.fromkeys(("vim",), '"'),
}


@dataclass(frozen=True)
class Snippet:
    text: str
    filename: str = ""


@dataclass
class SnippetIds:
    ids: list[int]
    used: int
    left_out: int


def render(snippet: Snippet) -> str:
    text = snippet.text if snippet.text.endswith("\n") else snippet.text + "\n"
    if not snippet.filename:
        return text + "\n"
    comment = _COMMENT.get(PurePosixPath(snippet.filename).suffix.lstrip(".").lower(), "#")
    return f"{comment} {shown_name(snippet.filename)}\n{text}\n"  # a name never ends its comment line


def snippet_ids(vocab: Vocabulary, snippets: tuple[Snippet, ...], budget: int) -> SnippetIds:
    """The ids of the newest snippets that fit in `budget` tokens, in the order given."""
    kept: list[list[int]] = []
    room = budget
    for snippet in reversed(snippets):
        if not snippet.text.strip():
            continue
        ids = vocab.tokenize(render(snippet))
        if len(ids) > room:
            break
        kept.append(ids)
        room -= len(ids)
    nonblank = sum(1 for s in snippets if s.text.strip())
    return SnippetIds([token for ids in reversed(kept) for token in ids], len(kept), nonblank - len(kept))
