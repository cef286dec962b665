"""gather(): the snippets of other files a completion at a cursor should see, within a token budget.

Ranked candidates: definitions the names near the cursor import from the repository (Python; imports resolved,
an imported name not yet used anywhere ranks as if used on the cursor's line: it is about to be), then windows of
other files that resemble the code before the cursor (identifier Jaccard; every language). Open documents rank
first and their text wins over the disk. Each definition is first shown as its signature and docstring; bodies
are added for the best ones while budget is left. The chosen snippets are emitted in path and line order, not in
rank order, so that moving a rank does not move bytes in the prompt: the KV cache keeps them across keystrokes.
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

from localcoder.completion.snippets import Snippet, render
from localcoder.context.index import stamp
from localcoder.context.repository import Repository, find_root, repository_at
from localcoder.context.resolver import Deadline, resolver_for
from localcoder.context.windows import WINDOW_LINES, Prepared, line_sets, prepare, query_of, windows
from localcoder.context.windows import ranked as ranked_windows

Counter = Callable[[str], int]
Progress = Callable[[int, int], None]  # files indexed so far, files to index
HEAD_LINES = 12  # a signature and the start of its docstring; the rest waits for the body pass
BODY_CANDIDATES = 4  # definitions whose bodies may grow while budget is left
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
    rank: int = 0  # 0 is the best; the prompt's order is by path and line, not by rank

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("path", "start_line", "end_line", "tokens", "why")}


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
        return tuple(Snippet(s.text, s.path) for s in self.snippets) + self.extra

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


@functools.cache
def bundled_counter() -> Counter:
    """Token counts from the CodeGen tokenizer shipped with localcoder (GPT-2 plus the whitespace runs)."""
    from convert.vocab.codegen25 import codegen25_tokenizer

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
    kept_extra, room = _fit_extra(extra, budget, count)
    notes: list[str] = []  # per call: a resident server gathers for several requests at once

    deadline = deadline or Deadline.never()
    repository.tracked(deadline)  # git's answer for this request, waited for through half the time left (git.py)
    resolver = resolver_for(edited)
    candidates: list[_Candidate] = []
    if resolver is not None:
        found = resolver.candidates(repository, edited, text, offset, overlay, deadline)
        texts = {f.path: f.text for f in found}
        files = {path: (repository.relative(path), text.split("\n")) for path, text in texts.items()}  # each once
        candidates = [
            _Candidate(f.score, f.path, *files[f.path], f.start_line, f.head_end, f.end_line, f.why) for f in found
        ]
    heads = _choose_heads(candidates, room, count, kept_extra)
    chosen = _grow_bodies(heads, room - sum(s.tokens for _, s in heads), count)
    room -= sum(c.tokens for c in chosen)  # what the editor's chunks and the definitions leave
    if room >= MIN_WINDOW_TOKENS:
        indexed = resolver is None  # a language that resolves its imports needs no windows of the whole tree
        chosen += _windows(
            repository, edited, text, offset, overlay, chosen, room, count, progress, notes, indexed, deadline
        )
    if deadline.expired():
        notes.append("repository context stopped at its deadline")
    chosen = [replace(s, rank=rank) for rank, s in enumerate(chosen)]
    chosen.sort(key=lambda s: (s.path, s.start_line))
    return RepoContext(str(repository.root), budget, tuple(chosen), kept_extra, tuple(notes))


def _fit_extra(extra: tuple[Snippet, ...], budget: int, count: Counter) -> tuple[tuple[Snippet, ...], int]:
    """The editor's chunks that fit (the newest, the last, kept first), and the room they leave."""
    kept: list[Snippet] = []
    room = budget
    for snippet in reversed(extra):
        if not snippet.text.strip():
            continue
        tokens = count(render(snippet))
        if tokens > room:
            break
        kept.append(snippet)
        room -= tokens
    return tuple(reversed(kept)), room


def _snippet(candidate: _Candidate, end: int, count: Counter) -> ContextSnippet:
    text = "\n".join(candidate.lines[candidate.start - 1 : end])
    tokens = count(render(Snippet(text, candidate.relative)))
    return ContextSnippet(candidate.relative, candidate.start, end, tokens, candidate.why, text)


def _largest(candidate: _Candidate, low: int, high: int, room: int, count: Counter) -> ContextSnippet | None:
    """The snippet ending as late as possible in [low, high] that fits `room` tokens (None if even `low` does not)."""
    best = None
    while low <= high:
        middle = (low + high) // 2
        snippet = _snippet(candidate, middle, count)
        if snippet.tokens <= room:
            best, low = snippet, middle + 1
        else:
            high = middle - 1
    return best


def _choose_heads(
    candidates: list[_Candidate], room: int, count: Counter, extra: tuple[Snippet, ...]
) -> list[tuple[_Candidate, ContextSnippet]]:
    """Each candidate's signature and docstring (its first HEAD_LINES lines at most), best first, while they fit."""
    chosen: list[tuple[_Candidate, ContextSnippet]] = []
    shown = [s.text for s in extra]
    for candidate in candidates:
        head_end = min(candidate.head_end, candidate.start + HEAD_LINES - 1, len(candidate.lines))
        first = "\n".join(candidate.lines[candidate.start - 1 : head_end])
        taken = [s for _, s in chosen]
        if any(first in text for text in shown) or _overlaps(taken, candidate.relative, candidate.start, head_end):
            continue
        snippet = _largest(candidate, candidate.start, head_end, room, count)
        if snippet is None:
            continue
        chosen.append((candidate, snippet))
        room -= snippet.tokens
    return chosen


def _grow_bodies(chosen: list[tuple[_Candidate, ContextSnippet]], room: int, count: Counter) -> list[ContextSnippet]:
    """The best BODY_CANDIDATES definitions grow towards their last line while budget is left."""
    grown = []
    for rank, (candidate, snippet) in enumerate(chosen):
        if rank < BODY_CANDIDATES and room > 0 and snippet.end_line < candidate.end:
            end = min(candidate.end, len(candidate.lines))
            longer = _largest(candidate, snippet.end_line, end, room + snippet.tokens, count)
            if longer is not None and longer.end_line > snippet.end_line:
                room -= longer.tokens - snippet.tokens
                snippet = longer
        grown.append(snippet)
    return grown


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
    indexed: bool,
    deadline: Deadline,
) -> list[ContextSnippet]:
    query = query_of(text, offset)
    if not query:
        return []
    ranked = []
    for file, source in sorted(overlay.items()):
        ranked += [(w.score + 1.0, file, w) for w in windows(line_sets(source), query)]
    if indexed and edited.suffix:
        skip = {_real(edited), *overlay}
        for file, prepared in _indexed(repository, (edited.suffix,), skip, progress, notes, deadline):
            ranked += [(w.score, file, w) for w in ranked_windows(prepared, query)]
            if deadline.expired():
                break
    ranked.sort(key=lambda r: (-r[0], str(r[1]), r[2].start_line))
    found: list[ContextSnippet] = []
    for score, file, window in ranked:
        if deadline.expired():
            break
        if window.end_line - window.start_line < min(8, WINDOW_LINES):
            continue  # too short to show: known before the file is read
        relative = repository.relative(file) if file not in overlay else _overlay_name(repository, file)
        if score <= 0 or _overlaps(chosen + found, relative, window.start_line, window.end_line):
            continue
        source = overlay[file] if file in overlay else repository.read(file)
        if source is None:
            continue
        candidate = _Candidate(score, file, relative, source.split("\n"), window.start_line, 0, 0, "")
        similarity = score - 1.0 if file in overlay else score  # open documents were ranked one point up
        candidate.why = f"resembles the code before the cursor (identifier Jaccard {similarity:.2f})"
        snippet = _largest(candidate, window.start_line, window.end_line, room, count)
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


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(path))


def _overlay_name(repository: Repository, file: Path) -> str:
    return repository.relative(file) if repository.inside(file) else file.name


def _overlaps(chosen: list[ContextSnippet], relative: str, start: int, end: int) -> bool:
    return any(s.path == relative and s.start_line <= end and start <= s.end_line for s in chosen)


__all__ = ["ContextSnippet", "RepoContext", "bundled_counter", "gather"]
