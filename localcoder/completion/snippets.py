"""Context snippets: code from other files (or other places in this one) shown to the model before the prefix.

Editors send them as chunks (llama.vim's and llama.vscode's `input_extra`, `complete --context FILE`). Each
snippet becomes a comment line naming its file, then its text, tokenized on its own: the ids of a snippet
never depend on its neighbours or on the file being edited, so a resident model keeps them cached while the
user types, and a warm-up request that sends only the snippets makes the next completion cheap.

They take at most the snippets' room of the request's budget (budget.PromptBudget). When they do not all fit,
`fit` (the one snippet fitter: the context stage keeps the editor's chunks with it too) keeps the editor's chunks
first, the newest (the last) first, then the repository's snippets best rank first; what it keeps stays in the
order given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from localcoder.completion.prompts import Vocabulary
from localcoder.names import shown_name

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
    rank: int = 0  # a repository snippet's rank, 1 the best (context/); 0: an editor's chunk, kept before those


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


def fit(snippets: tuple[Snippet, ...], room: int, cost: Callable[[Snippet], int]) -> tuple[tuple[Snippet, ...], int]:
    """The snippets that fit in `room` tokens (`cost`: a snippet's tokens as the prompt shows it), and the room
    they leave. The editor's chunks are kept first, the newest (the last) first, then the ranked ones, the best
    first, until one does not fit; blank ones are left out; the kept ones stay in the order given."""
    order = sorted(range(len(snippets)), key=lambda i: (snippets[i].rank > 0, snippets[i].rank, -i))
    kept: set[int] = set()
    for index in order:
        if not snippets[index].text.strip():
            continue
        tokens = cost(snippets[index])
        if tokens > room:
            break
        kept.add(index)
        room -= tokens
    return tuple(snippet for index, snippet in enumerate(snippets) if index in kept), room


def snippet_ids(vocab: Vocabulary, snippets: tuple[Snippet, ...], budget: int) -> SnippetIds:
    """The ids of the snippets that fit in `budget` tokens (`fit`), in the order given."""
    ids: dict[Snippet, list[int]] = {}
    kept, _ = fit(snippets, budget, lambda snippet: len(ids.setdefault(snippet, vocab.tokenize(render(snippet)))))
    nonblank = sum(1 for s in snippets if s.text.strip())
    return SnippetIds([token for snippet in kept for token in ids[snippet]], len(kept), nonblank - len(kept))
