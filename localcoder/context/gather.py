"""gather(): the snippets of other files a completion at a cursor should see, within a token budget.

Ranked candidates: what the language's resolver offers (definitions the names near the cursor import from the
repository, and outlines of modules used as `m.N`; see python.py), then windows of other files that resemble the
code before the cursor (identifier Jaccard; every language). Open documents rank first and their text wins over
the disk. The budget buys breadth first: every candidate's signature and docstring (HEAD_LINES at most, an outline
OUTLINE_SHARE of the budget at most), best first, then bodies for the best BODY_CANDIDATES, each capped at
BODY_SHARE of the budget: one exception class used to take 484 of 1,024 tokens while the definition the line
needed was left out. Nothing the buffer (or an editor's chunk) already shows is shown again. Each snippet carries
its `rank` (1 = the best); the snippets are emitted in path and line order, not in rank order, so that moving a
rank does not move bytes in the prompt: the KV cache keeps them across keystrokes.
Everything runs under the request's `Deadline` (listing, indexing, ranking stop at it and say so in the notes);
what was found by then is the answer.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from localcoder.completion.snippets import Snippet, fit, render
from localcoder.context.index import stamp
from localcoder.context.repository import Repository, find_root, repository_at
from localcoder.context.resolver import Deadline, resolver_for
from localcoder.context.windows import (
    WINDOW_LINES,
    Prepared,
    file_lines,
    keywords_of,
    line_sets,
    prepare,
    query_of,
    windows,
)
from localcoder.context.windows import ranked as ranked_windows

Counter = Callable[[str], int]
Progress = Callable[[int, int], None]  # files indexed so far, files to index
HEAD_LINES = 12  # a signature and the start of its docstring; the rest waits for the body pass
BODY_CANDIDATES = 4  # definitions whose bodies may grow while budget is left
BODY_SHARE = 4  # a body grows to 1/BODY_SHARE of the budget at most
HEAD_SHARE = 32  # a head first takes 1/HEAD_SHARE of the budget at most (the signature's first line always)...
MIN_HEAD_TOKENS = 32
DOC_SHARE = 16  # ...and, once every head is in, grows to its whole signature and docstring, 1/DOC_SHARE at most
OUTLINE_SHARE = 3  # a module's outline first takes 1/OUTLINE_SHARE of the budget at most...
OUTLINE_GROWN_SHARE = 2  # ...and, once every head is in, grows to 1/OUTLINE_GROWN_SHARE before bodies grow
MIN_WINDOW_TOKENS = 48
MAX_WINDOW_FILES = 20_000
INDEX_SECONDS = 3  # a first index of a huge tree is built over several calls, each waiting this long at most
PROGRESS_AFTER = 200  # files to index before a progress callback is worth it


@dataclass(frozen=True)
class ContextSnippet:
    path: str  # relative to the root, with /
    start_line: int  # 1-based, inclusive
    end_line: int
    tokens: int  # of the snippet as the prompt shows it (its path comment included)
    why: str
    text: str
    rank: int = 0  # 1 is the best; the prompt's order is by path and line, not by rank
    kind: str = "definition"  # "outline" (a module's names and signatures) or "window"

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("path", "start_line", "end_line", "tokens", "why", "rank", "kind")}


@dataclass(frozen=True)
class RepoContext:
    root: str
    budget: int
    snippets: tuple[ContextSnippet, ...] = ()
    extra: tuple[Snippet, ...] = ()  # the editor's own chunks, kept after the repository's
    notes: tuple[str, ...] = ()

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.snippets)

    def to_snippets(self) -> tuple[Snippet, ...]:
        """What the prompt shows before the prefix: the repository's snippets in a stable order, then the editor's."""
        return tuple(Snippet(s.text, s.path, s.rank) for s in self.snippets) + self.extra

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "budget": self.budget, "snippets": [s.to_dict() for s in self.snippets]}


@dataclass
class _Candidate:
    score: float
    path: Path
    relative: str
    lines: list[str]  # the whole file's lines
    start: int
    head_end: int
    end: int
    why: str
    kind: str = "definition"
    shown: tuple[tuple[int, int], ...] = ()  # an outline's line ranges


@functools.cache
def bundled_counter() -> Counter:
    """Token counts from the CodeGen tokenizer shipped with localcoder (GPT-2 plus the whitespace runs)."""
    from ggufkit.vocab.codegen25 import codegen25_tokenizer

    tokenizer = codegen25_tokenizer()
    return functools.lru_cache(maxsize=8192)(lambda text: len(tokenizer.encode_ordinary(text)))


def gather(
    path: str | Path,
    text: str,
    offset: int,
    *,
    budget: int,
    counter: Counter | None = None,
    open_documents: Mapping[str, str] | None = None,
    root: str | Path | None = None,
    extra: tuple[Snippet, ...] = (),
    progress: Progress | None = None,
    deadline: Deadline | None = None,
) -> RepoContext:
    """The context for a cursor at `offset` in `text` (the buffer as the editor has it; `path` need not exist)."""
    count = counter or bundled_counter()
    edited = Path(path).absolute()
    repository = repository_at(Path(root) if root is not None else find_root(edited))
    overlay = {_real(p): t for p, t in (open_documents or {}).items() if _real(p) != _real(edited)}
    kept_extra, room = fit(extra, budget, lambda snippet: count(render(snippet)))  # the newest kept first
    notes: list[str] = []  # per call: a resident server gathers for several requests at once

    deadline = deadline or Deadline.never()
    repository.tracked(deadline)  # git's answer for this request, waited for through half the time left (git.py)
    resolver = resolver_for(edited)
    candidates: list[_Candidate] = []
    if resolver is not None:
        found = resolver.candidates(repository, edited, text, offset, overlay, deadline)
        lines: dict[int, list[str]] = {}  # one split per file text, however many definitions it holds
        names = {path: repository.relative(path) for path in {f.path for f in found}}
        candidates = [
            _Candidate(f.score, f.path, names[f.path], _split(lines, f.text), f.start_line, f.head_end,
                       f.end_line, f.why, f.kind, f.shown)
            for f in found
        ]  # fmt: skip
    heads = _choose_heads(candidates, room, count, tuple(s.text for s in kept_extra), budget)
    chosen = _grow(heads, room - sum(s.tokens for _, s in heads), count, budget)
    room -= sum(c.tokens for c in chosen)  # what the editor's chunks and the definitions leave
    if room >= MIN_WINDOW_TOKENS:
        # a language that resolves its imports needs no windows of the whole tree, unless it asks for some: the
        # tree-sitter languages do when their definitions left 3/4 of the budget (what they cannot follow)
        indexed: tuple[str, ...] = (edited.suffix,) if resolver is None else ()
        windows_for = getattr(resolver, "windows_for", None)
        if windows_for is not None and not deadline.expired():
            indexed = windows_for(edited, budget, room)
        chosen += _windows(
            repository, edited, text, offset, overlay, chosen, room, count, progress, notes, indexed, deadline
        )
    if deadline.expired():
        notes.append("repository context stopped at its deadline")
    chosen = [replace(s, rank=rank) for rank, s in enumerate(chosen, 1)]
    chosen.sort(key=lambda s: (s.path, s.start_line))
    return RepoContext(str(repository.root), budget, tuple(chosen), kept_extra, tuple(notes))


def _snippet(candidate: _Candidate, end: int, count: Counter) -> ContextSnippet:
    text = "\n".join(candidate.lines[candidate.start - 1 : end])
    tokens = count(render(Snippet(text, candidate.relative)))
    return ContextSnippet(candidate.relative, candidate.start, end, tokens, candidate.why, text, kind=candidate.kind)


def _outline(candidate: _Candidate, entries: list[tuple[int, int]], count: Counter) -> ContextSnippet:
    """The outline's first `entries` (those to keep first), shown in file order."""
    entries = sorted(entries)
    text = "\n".join("\n".join(candidate.lines[start - 1 : end]) for start, end in entries)
    tokens = count(render(Snippet(text, candidate.relative)))
    start, end = entries[0][0], entries[-1][1]
    return ContextSnippet(candidate.relative, start, end, tokens, candidate.why, text, kind="outline")


def _largest(make: Callable[[int], ContextSnippet], low: int, high: int, room: int) -> ContextSnippet | None:
    """The largest `make(n)` for n in [low, high] that fits `room` tokens (None if even `make(low)` does not)."""
    best = None
    while low <= high:
        middle = (low + high) // 2
        snippet = make(middle)
        if snippet.tokens <= room:
            best, low = snippet, middle + 1
        else:
            high = middle - 1
    return best


def _choose_heads(
    candidates: list[_Candidate], room: int, count: Counter, shown: tuple[str, ...], budget: int
) -> list[tuple[_Candidate, ContextSnippet]]:
    """Each candidate's head (its signature, the start of its docstring), or an outline's first entries, best
    first, while they fit; nothing `shown` (the editor's chunks) already holds. A definition ranked below its
    module's outline is left to the outline (its signature is one of the outline's entries, which grow later)."""
    chosen: list[tuple[_Candidate, ContextSnippet]] = []
    taken: list[ContextSnippet] = []  # definitions: what an outline need not repeat, nor a definition overlap
    outlined: list[ContextSnippet] = []  # every entry of the outlines chosen so far
    for candidate in candidates:
        if candidate.kind == "outline":
            entries = [
                (start, min(end, len(candidate.lines)))
                for start, end in candidate.shown
                if start <= len(candidate.lines) and not _overlaps(taken, candidate.relative, start, end)
            ]
            candidate.shown = tuple(entries)
            make = lambda n, c=candidate: _outline(c, list(c.shown[:n]), count)  # noqa: E731
            snippet = _largest(make, 1, len(entries), min(room, budget // OUTLINE_SHARE)) if entries else None
            if snippet is not None:
                outlined += [replace(snippet, start_line=s, end_line=e) for s, e in entries]
        else:
            head_end = _head_end(candidate)
            first = "\n".join(candidate.lines[candidate.start - 1 : head_end])
            if _overlaps(taken + outlined, candidate.relative, candidate.start, head_end) or any(
                first in t for t in shown
            ):
                continue
            make = lambda end, c=candidate: _snippet(c, end, count)  # noqa: E731
            snippet = _largest(make, candidate.start, head_end, min(room, max(budget // HEAD_SHARE, MIN_HEAD_TOKENS)))
            snippet = snippet or _largest(make, candidate.start, candidate.start, room)
            if snippet is not None:
                taken.append(snippet)
        if snippet is None:
            continue
        chosen.append((candidate, snippet))
        room -= snippet.tokens
    return chosen


def _grow(
    chosen: list[tuple[_Candidate, ContextSnippet]], room: int, count: Counter, budget: int
) -> list[ContextSnippet]:
    """While budget is left, in rank order: outlines grow (to OUTLINE_GROWN_SHARE of the budget each), then heads
    to their whole signature and docstring (DOC_SHARE each), then the best BODY_CANDIDATES definitions towards
    their last line (BODY_SHARE each)."""
    grown = list(chosen)
    every = len(grown)
    passes = [("outline", every, OUTLINE_GROWN_SHARE), ("doc", every, DOC_SHARE), ("body", BODY_CANDIDATES, BODY_SHARE)]
    for kind, most, share in passes:
        done = 0
        for place, (candidate, snippet) in enumerate(grown):
            if room <= 0 or done >= most or candidate.kind != ("outline" if kind == "outline" else "definition"):
                continue
            done += 1
            if kind == "outline":
                make = lambda n, c=candidate: _outline(c, list(c.shown[:n]), count)  # noqa: E731
                low, high = 1, len(candidate.shown)
            else:
                make = lambda end, c=candidate: _snippet(c, end, count)  # noqa: E731
                last = _head_end(candidate) if kind == "doc" else min(candidate.end, len(candidate.lines))
                low, high = snippet.end_line, last
            fits = min(room + snippet.tokens, max(budget // share, snippet.tokens))
            longer = _largest(make, low, high, fits) if low < high or kind == "outline" else None
            if longer is not None and longer.end_line > snippet.end_line:
                room -= longer.tokens - snippet.tokens
                grown[place] = (candidate, longer)
    return [snippet for _, snippet in grown]


def _head_end(candidate: _Candidate) -> int:
    return min(candidate.head_end, candidate.start + HEAD_LINES - 1, len(candidate.lines))


def _windows(
    repository: Repository,
    edited: Path,
    text: str,
    offset: int,
    overlay: dict[Path, str],
    chosen: list[ContextSnippet],
    room: int,
    count: Counter,
    progress: Progress | None,
    notes: list[str],
    indexed: tuple[str, ...],  # the suffixes whose files' windows are ranked besides the open documents'
    deadline: Deadline,
) -> list[ContextSnippet]:
    keywords = keywords_of(edited.suffix)
    query = query_of(text, offset, keywords=keywords)
    if not query:
        return []
    ranked = []
    for file, source in sorted(overlay.items()):
        ranked += [(w.score + 1.0, file, w) for w in windows(line_sets(source), query, keywords=keywords)]
    if indexed and edited.suffix:
        skip = {_real(edited), *overlay}
        for file, prepared in _indexed(repository, indexed, skip, progress, notes, deadline):
            ranked += [(w.score, file, w) for w in ranked_windows(prepared, query, keywords)]
            if deadline.expired():
                break
    ranked.sort(key=lambda r: (-r[0], str(r[1]), r[2].start_line))
    found: list[ContextSnippet] = []
    definitions = [s for s in chosen if s.kind != "outline"]  # an outline's lines are few, however far apart
    for score, file, window in ranked:
        if deadline.expired():
            break
        if window.end_line - window.start_line < min(8, WINDOW_LINES):
            continue  # too short to show: known before the file is read
        relative = repository.relative(file) if file not in overlay else _overlay_name(repository, file)
        if score <= 0 or _overlaps(definitions + found, relative, window.start_line, window.end_line):
            continue
        source = overlay[file] if file in overlay else repository.read(file)
        if source is None:
            continue
        lines = file_lines(source)
        if window.start_line > len(lines):
            continue
        candidate = _Candidate(score, file, relative, lines, window.start_line, 0, 0, "", "window")
        similarity = score - 1.0 if file in overlay else score  # open documents were ranked one point up
        candidate.why = f"resembles the code before the cursor (identifier Jaccard {similarity:.2f})"
        make = lambda end, c=candidate: _snippet(c, end, count)  # noqa: E731
        snippet = _largest(make, window.start_line, min(window.end_line, len(lines)), room)
        if snippet is None or snippet.end_line - snippet.start_line < min(8, WINDOW_LINES):
            continue
        found.append(snippet)
        room -= snippet.tokens
        if room < MIN_WINDOW_TOKENS:
            break
    return found


def _indexed(
    repository: Repository,
    suffixes: tuple[str, ...],
    skip: set[Path],
    progress: Progress | None,
    notes: list[str],
    deadline: Deadline,
) -> Iterator[tuple[Path, Prepared]]:
    """Each allowed file's windows, from the on-disk index where the file has not changed since it was indexed.
    New files are indexed for INDEX_SECONDS at most, and never past the deadline: a huge tree is indexed over
    several calls. The index is saved before the first window is offered."""
    index = repository.index()
    listed, listing_notes = repository.listed(suffixes, MAX_WINDOW_FILES, deadline)
    notes += listing_notes
    files = []
    for file, relative in listed:
        if deadline.expired():
            break
        if file not in skip:
            files.append((file, relative, stamp(file)))
    missing = [f for f in files if f[2] is not None and not index.has(f[1], *f[2])]
    started = time.monotonic()
    until = started + min(INDEX_SECONDS, max(deadline.left(), 0.0) / 2)  # half of what is left: ranking needs time too
    for done, (file, relative, when) in enumerate(missing, 1):
        source = repository.read(file, keep=False)
        index.put(relative, *when, line_sets(source) if source is not None else [])  # type: ignore[misc]
        if progress is not None and len(missing) >= PROGRESS_AFTER:
            progress(done, len(missing))
        if (time.monotonic() > until or deadline.expired()) and done < len(missing):
            seconds = time.monotonic() - started
            notes.append(f"indexed {done} of {len(missing)} new files in {seconds:.0f} s; more next time")
            break
    index.save()
    for file, relative, when in files:
        if when is None or not index.has(relative, *when):
            continue
        make = lambda relative=relative, when=when: prepare(index.get(relative, *when) or [])  # noqa: E731
        prepared = repository.stamped("windows", relative, when, make)
        if prepared:
            yield file, prepared


def _split(done: dict[int, list[str]], text: str) -> list[str]:
    if id(text) not in done:
        done[id(text)] = file_lines(text)
    return done[id(text)]


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(path))


def _overlay_name(repository: Repository, file: Path) -> str:
    return repository.relative(file) if repository.inside(file) else file.name


def _overlaps(chosen: list[ContextSnippet], relative: str, start: int, end: int) -> bool:
    return any(s.path == relative and s.start_line <= end and start <= s.end_line for s in chosen)


__all__ = ["ContextSnippet", "RepoContext", "bundled_counter", "gather"]
