"""What every tree-sitter language shares: imports -> files -> definitions -> candidates ranked by use near the cursor.

A language says how its imports bind names (`imports`: a local name -> a file and the name in it, or the file as a
whole), which files' names need no import (`scope`: Go's package, Java's package), and how a file re-exports
(`reexports`). The ranking is Python's: every name used near the cursor (400 lines above it, 200 below) that
resolves scores 1 / (1 + distance) on or above the cursor's line and half that below, and USE_FLAT more (a name used
often is likely used again, however far); an imported name used nowhere yet scores as if on the cursor's line (it is
about to be). When the cursor's line is blank, what the line will call is unknown, so modules imported whole
(`import * as x`, a Go package, a Rust module, a header) and the file's own package offer their outline: what
another file can reach, ordered by how many words of its name occur near the cursor (words that a quarter of the
outline's names share, brotli's `BROTLI_`, do not count), each entry of an outline of N > 50 entries weighed by
sqrt(50 / N). The best four definitions may grow their bodies; the rest, and every outline entry, show their
signature lines only, so that about three times as many fit in a budget. gather() first cuts every head to a small
share of the budget (32 tokens of 1,024, its path line included) and grows heads downwards only, so a head starts
where that cut shows the line that writes the definition's name: the signature, with the doc comment above it only
when both fit HEAD_CHARS (Go's and Rust's docs are above the signature: a doc that filled the cut hid it, and
recall@1024 on the tuning repositories of `make bench-context-langs` fell to 38% on regex-syntax and 60% on go-cmp;
starting at the signature, 98% and 95%); C's `typedef struct {...} T;` names T on its closing line, so its head
starts at the lines right above that one (brotli 48% -> 78%), and `T *` above `f(...)` names f below its type
(92% -> 95%).

Warm calls read nothing that did not change: summaries (with the text they came from), package listings and
path checks are kept per file or folder version (`Repository.stamped`), and the buffer is reparsed
incrementally; a warm call costs 1-47 ms on the benchmark's repositories on a quiet machine.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tree_sitter import Tree

from localcoder.context.languages.definitions import Definition, parse, parse_buffer, top_level
from localcoder.context.repository import Repository
from localcoder.context.resolver import Deadline, Found, around_cursor

MAX_REEXPORT_DEPTH = 6
SCAN_LINES_BELOW = 2000  # a huge buffer is read this far below the cursor (resolver.around_cursor)
USES_ABOVE, USES_BELOW = 400, 200  # uses farther from the cursor weigh under 1/400: not worth reading (below: 100
# missed rxjs's `Subscription` in a types file, imported and used only further down by the declarations after it)
NEAR_LINES = 15  # the lines around the cursor whose words rank an outline
MANIFEST_BYTES = 1 << 16
MAX_CANDIDATES = 64  # more than a prompt's budget can show, even as one-line outline entries
FULL_HEADS = 4  # the best definitions may grow their bodies (and show a short doc comment); the rest compact
COMPACT_LINES = 3
MAX_DOC_LINES = 6  # of a long doc comment, the lines right above the signature at most
HEAD_CHARS = 40  # what gather()'s first cut of a head (32 tokens with its path line) surely shows: the lines above
# the signature (or above a C typedef's name) that fit in it with that line come first (80 lost 26 points on
# regex-syntax, 56 six; 40 and 0 scored the same on the tuning repositories)
OUTLINE_WEIGHT = 0.3  # an outline entry against a name used on the cursor's line
OUTLINE_ENTRIES = 50  # an outline of N entries, more than this, weighs each by sqrt(OUTLINE_ENTRIES / N): the more a
# file offers, the less likely any one entry is the one (brotli's platform.h, 120 entries, crowded out constants.h's
# and the buffer's own header's names: 85% -> 90%; 25-60 scored 88-90%, 100 85%; no change on the other tuning repos)
COMMON_SHARE, MIN_COMMON_NAMES = 4, 8  # a word in over 1/4 of an outline's names (of 8 or more) ranks none of them
USE_FLAT = 0.01  # each use counts this much besides 1 / (1 + distance): a name used often is likely again
# (on the tuning repositories: brotli 80% -> 85%, axios 88% -> 90%, go-cmp 95% -> 98%; 0.005 and 0.03 did less)
SCOPE_WEIGHT = 0.2  # the own package's outline: larger and less specific than an imported module's
WINDOWS_WHEN_LEFT = 0.75  # gather() adds the tree's identifier windows when the definitions left 3/4 of the budget
# (at 1/2, 35 of lodash's 40 cases ranked the windows of its 1,000 files: 26 ms a warm call instead of 6 ms)
_CHAIN = re.compile(r"(?<![\w$:])(?<![^.]\.)[A-Za-z_$][\w$]*(?:(?:\.|::)[A-Za-z_$][\w$]*)*")  # `...x`: a use
_HEAD = re.compile(r"[\w$]+")
_SEPARATOR = re.compile(r"\.|::")
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


@dataclass(frozen=True)
class Imported:
    """What a local name stands for: a name inside a file, or (name None) the file or package as a whole."""

    file: Path  # resolved, inside the repository
    name: str | None
    statement: str  # the import as written, for `why`
    files: tuple[Path, ...] = ()  # a package spread over several files (Go): all of them, `file` first
    alone: str | None = None  # what the module's name used alone stands for (CommonJS: its `module.exports`)


@dataclass
class Summary:
    """One file's top-level definitions, and the names it re-exports from other files."""

    definitions: dict[str, Definition]
    order: list[Definition]
    exports: dict[str, Imported] = field(default_factory=dict)
    stars: list[Path] = field(default_factory=list)
    text: str = ""  # the text it was made from (so a warm call shows a definition without reading its file again)
    modules: dict[str, str] = field(default_factory=dict)  # Rust: `mod m;` declared here -> its #[path] ("": none)


@dataclass
class Request:
    """One call's view of the repository: open documents win over the disk; every read goes through `allowed`."""

    repository: Repository
    edited: Path  # resolved
    overlay: dict[Path, str]
    deadline: Deadline
    summaries: dict[Path, Summary | None] = field(default_factory=dict)  # this call's, so a file is stat'ed once
    texts: dict[Path, str | None] = field(default_factory=dict)
    known: dict[Any, Any] = field(default_factory=dict)  # what a language works out once per call (Rust's crates)

    def text(self, file: Path) -> str | None:
        if file not in self.texts:
            if file in self.overlay and self.repository.allowed(file) is not None:
                self.texts[file] = self.overlay[file]
            else:
                self.texts[file] = self.repository.read(file)
        return self.texts[file]

    def manifest(self, file: Path) -> str | None:
        """A build manifest's text (go.mod, Cargo.toml), read even where it says it is generated (Cargo writes that
        into every published crate's Cargo.toml), but only when the context may read it."""
        try:
            stat = os.stat(file)
        except OSError:
            return None
        when = (stat.st_size, stat.st_mtime_ns)
        return self.repository.stamped("manifest", str(file), when, lambda: self._read(file))

    def _read(self, file: Path) -> str | None:
        real = self.repository.allowed(file)
        if real is None:
            return None
        try:
            with real.open("rb") as handle:
                return handle.read(MANIFEST_BYTES).decode("utf-8", "replace")
        except OSError:
            return None

    def allowed(self, file: Path) -> Path | None:
        """`Repository.allowed`, remembered until the file's folder changes: resolving imports asks about the same
        few hundred paths on every keystroke, and a full check resolves every link on the way (about 0.3 ms). Only
        decisions use this; every read checks again."""
        try:
            when = os.stat(file.parent).st_mtime_ns
        except OSError:
            return None
        return self.repository.stamped("allowed", str(file), (when, 0), lambda: self.repository.allowed(file))

    def exists(self, file: Path) -> Path | None:
        """The resolved file when it is one the context may read (and not the buffer's own), else None."""
        real = self.allowed(file)
        return real if real is not None and real != self.edited else None


class TreeSitterLanguage:
    """A `Resolver` on tree-sitter; subclasses resolve their language's imports."""

    suffixes: tuple[str, ...] = ()
    name = ""
    import_nodes: frozenset[str] = frozenset()  # statements whose names are not uses
    scope_why = "same package"  # what makes `scope`'s names visible
    scope_public = False  # whether only a scope file's public names are visible (Rust's globs) or all (a package)
    window_families: tuple[tuple[str, ...], ...] = ()  # suffixes whose files resemble each other (C's .c and .h)

    def grammar(self, path: Path) -> str:
        return self.name

    def windows_for(self, edited: Path, budget: int, left: int) -> tuple[str, ...]:
        """The suffixes whose identifier windows gather() ranks after these definitions: none while they fill a
        quarter of the budget or more; else the edited file's family, for what the imports do not say (a global, a
        macro's name, a path the resolver cannot follow), as for a language without a resolver."""
        if left < budget * WINDOWS_WHEN_LEFT or not edited.suffix:
            return ()
        return next((f for f in self.window_families if edited.suffix in f), (edited.suffix,))

    # --- what each language says ---------------------------------------------------------------------------------

    def imports(self, request: Request, tree: Tree, text: str) -> dict[str, Imported]:
        raise NotImplementedError

    def scope(self, request: Request, tree: Tree) -> list[Path]:
        """Files whose top-level names the buffer sees without importing them."""
        return []

    def scope_weight(self, request: Request, file: Path) -> float:
        """How strongly a blank line may want a scope file's outline (C: less for a header included by a header)."""
        return SCOPE_WEIGHT

    def reexports(self, request: Request, file: Path, tree: Tree, summary: Summary) -> None:
        """Fill `summary.exports` and `summary.stars` (the default: a file re-exports nothing)."""

    def member(self, request: Request, target: Imported, rest: list[str]) -> tuple[Path, Definition] | None:
        """`x.N` where x is a module: N in it (Rust walks submodules; Go looks in every file of the package)."""
        for file in target.files or (target.file,):
            found = self.lookup(request, file, rest[0])
            if found is not None:
                return found
        return None

    def whole(self, request: Request, target: Imported) -> tuple[Path, Definition] | None:
        """A module's name used alone (`new Foo()` after `const Foo = require('./foo')`): what it stands for."""
        return self.lookup(request, target.file, target.alone) if target.alone else None

    # --- shared --------------------------------------------------------------------------------------------------

    def summary(self, request: Request, file: Path) -> Summary | None:
        """A file's summary, kept per version of it (size and mtime: one stat on a warm call, no read)."""
        if file in request.summaries:
            return request.summaries[file]
        summary = None
        if file in request.overlay:
            text = request.text(file)
            summary = self._summarize(request, file, text) if text is not None else None
        else:
            try:
                stat = os.stat(file)
            except OSError:
                stat = None
            if stat is not None:
                when = (stat.st_size, stat.st_mtime_ns)
                make = lambda: self._summarize_file(request, file)  # noqa: E731
                summary = request.repository.stamped(f"summary-{self.grammar(file)}", str(file), when, make)
        request.summaries[file] = summary
        return summary

    def _summarize_file(self, request: Request, file: Path) -> Summary | None:
        text = request.text(file)  # through Repository.read: allowed, not binary or huge
        return self._summarize(request, file, text) if text is not None else None

    def _summarize(self, request: Request, file: Path, text: str) -> Summary:
        tree = parse(self.grammar(file), text)
        if tree is None:
            return Summary({}, [], text=text)
        order = top_level(self.grammar(file), tree)
        definitions: dict[str, Definition] = {}
        for found in order:
            definitions.setdefault(found.name, found)
        summary = Summary(definitions, order, text=text)
        request.summaries[file] = summary  # a re-export that leads back here sees what is known so far, no loop
        self.reexports(request, file, tree, summary)
        return summary

    def lookup(self, request: Request, file: Path, name: str, depth: int = 0) -> tuple[Path, Definition] | None:
        """`name` defined in `file`, or re-exported by it (through at most MAX_REEXPORT_DEPTH files)."""
        summary = self.summary(request, file)
        if summary is None or depth > MAX_REEXPORT_DEPTH or request.deadline.expired():
            return None
        if name in summary.definitions:
            return file, summary.definitions[name]
        target = summary.exports.get(name)
        if target is not None:
            if target.name is None:
                return None
            return self.lookup(request, target.file, target.name, depth + 1)
        for star in summary.stars:
            found = self.lookup(request, star, name, depth + 1)
            if found is not None:
                return found
        return None

    def candidates(
        self,
        repository: Repository,
        edited: Path,
        text: str,
        offset: int,
        overlay: dict[Path, str],
        deadline: Deadline,
    ) -> list[Found]:
        request = Request(repository, Path(os.path.realpath(edited)), overlay, deadline)
        text, offset = around_cursor(text, offset, SCAN_LINES_BELOW)
        tree = parse_buffer(str(request.edited), self.grammar(edited), text)
        if tree is None:
            return []
        lines = text.split("\n")
        cursor_line = text.count("\n", 0, offset) + 1
        imports = self.imports(request, tree, text)
        own = {d.name for d in top_level(self.grammar(edited), tree)}
        skipped = {row for node in tree.root_node.named_children if node.type in self.import_nodes
                   for row in range(node.start_point.row + 1, node.end_point.row + 2)}  # fmt: skip
        scores: dict[tuple[Path, int], float] = {}
        found: dict[tuple[Path, int], tuple[Definition, str]] = {}

        def add(hit: tuple[Path, Definition] | None, weight: float, why: str) -> None:
            if hit is None:
                return
            where = (hit[0], hit[1].start_line)
            scores[where] = scores.get(where, 0.0) + weight
            found.setdefault(where, (hit[1], why))

        modules: dict[str, float] = {}  # a module imported whole -> its nearest use's weight
        scope_files = self.scope(request, tree)
        scope = self._scope_names(request, scope_files, own)
        resolved: dict[tuple[str, ...], tuple[Path, Definition] | None] = {}
        used = [line for number, line in enumerate(lines, 1) if number not in skipped]
        seen: set[str] = set(_HEAD.findall("\n".join(used)))
        first = max(cursor_line - USES_ABOVE, 1)
        for number, line in enumerate(lines[first - 1 : cursor_line + USES_BELOW], first):
            if number in skipped or deadline.expired():
                continue
            distance = number - cursor_line
            weight = 1.0 / (1 + abs(distance)) if distance <= 0 else 0.5 / (1 + distance)
            weight += USE_FLAT
            for match in _CHAIN.finditer(line):
                written = match.group()
                head = _HEAD.match(written).group()  # type: ignore[union-attr]
                target = imports.get(head)
                if target is None and head not in scope and written.rsplit(".", 1)[-1].rsplit(":", 1)[-1] not in scope:
                    continue
                chain = _SEPARATOR.split(written)
                key = tuple(chain) if target is not None else (head, chain[-1])
                if key not in resolved:
                    resolved[key] = self._resolve(request, chain, target, scope)
                if target is not None and target.name is None:
                    modules[head] = max(modules.get(head, 0.0), weight)
                add(resolved[key], weight, f"{'.'.join(key)}: {target.statement if target else self.scope_why}")
        for name, target in imports.items():  # imported, used nowhere yet: about to be
            if name not in seen and not deadline.expired():
                hit = self._resolve(request, [name], target, {})
                add(hit, 1.0, f"{name}: {target.statement}")
        if not lines[cursor_line - 1].strip():
            near = _words(" ".join(lines[max(cursor_line - NEAR_LINES, 0) : cursor_line + NEAR_LINES]))
            for name, target in imports.items():
                if target.name is None:
                    weight = OUTLINE_WEIGHT * modules.get(name, 1.0)
                    for file in target.files or (target.file,):
                        why = f"outline of {name}: {target.statement}"
                        self._outline(request, file, weight, near, why, add, public=True)
            for file in scope_files:
                weight = self.scope_weight(request, file)
                self._outline(request, file, weight, near, f"outline ({self.scope_why})", add, self.scope_public)
        for where in scores:  # once per definition (it was once per use): an open document, the user's work
            scores[where] += 1.0 if where[0] in overlay else 0.0
        names = {path: _relative(repository, path) for path in {path for path, _line in scores}}
        order = sorted(scores, key=lambda where: (-scores[where], names[where[0]], where[1]))
        ranked = []
        split: dict[Path, list[str]] = {}
        for rank, where in enumerate(order[:MAX_CANDIDATES]):
            definition, why = found[where]
            summary = request.summaries.get(where[0])
            source = summary.text if summary is not None else request.text(where[0])
            if source is None:
                continue
            file_lines = split.setdefault(where[0], source.split("\n"))
            start = definition.signature
            if rank < FULL_HEADS and not why.startswith("outline"):  # the doc lines that fit the first cut
                doc = max(definition.start_line, definition.signature - MAX_DOC_LINES)
                start = _fit_above(file_lines, definition.signature, doc, HEAD_CHARS)
                head_end, end = definition.head_end, definition.end_line
            else:  # the signature alone, without the doc above it, so that many fit
                head_end = end = max(start, min(definition.head_end, start + COMPACT_LINES - 1))
            if definition.name_line:  # `typedef struct {...} T;`, `T *` above `f(...)`: reach the name
                head_end, end = max(head_end, definition.name_line), max(end, definition.name_line)
                start = _fit_above(file_lines, definition.name_line, start, HEAD_CHARS)  # a long one: its last lines
            prefix = "" if why.startswith("outline") else "definition of "
            ranked.append(Found(scores[where], where[0], source, start, head_end, end, prefix + why))
        return ranked

    def _scope_names(self, request: Request, files: list[Path], own: set[str]) -> dict[str, Path]:
        """Each name the scope's files define or re-export (the first file wins), less those the buffer defines."""
        names: dict[str, Path] = {}
        for file in files:
            summary = self.summary(request, file)
            if summary is None or request.deadline.expired():
                continue
            for name in (*summary.definitions, *summary.exports):
                if name not in own:
                    names.setdefault(name, file)
        return names

    def _resolve(
        self, request: Request, chain: list[str], target: Imported | None, scope: dict[str, Path]
    ) -> tuple[Path, Definition] | None:
        if target is None:
            file = scope.get(chain[0])
            return self.lookup(request, file, chain[0]) if file is not None else None
        if target.name is not None:
            hit = self.lookup(request, target.file, target.name)
            module = self.reexported_module(request, target) if hit is None and len(chain) > 1 else None
            return self.member(request, module, chain[1:]) if module is not None else hit
        return self.member(request, target, chain[1:]) if len(chain) > 1 else self.whole(request, target)

    def reexported_module(self, request: Request, target: Imported, depth: int = 0) -> Imported | None:
        """A name that a file re-exports as a module (`export * as ns from`), followed to that module."""
        summary = self.summary(request, target.file)
        found = summary.exports.get(target.name or "") if summary is not None else None
        if found is None or depth > MAX_REEXPORT_DEPTH:
            return None
        return found if found.name is None else self.reexported_module(request, found, depth + 1)

    def _outline(  # noqa: ANN001
        self, request: Request, file: Path, weight: float, near: frozenset[str], why: str, add, public: bool, depth=0
    ) -> None:
        """Each definition of a file, ranked by the words of its name found near the cursor; `public`: only what
        another file can reach (exported, `pub`, capitalised), and what the file re-exports."""
        summary = self.summary(request, file)
        if summary is None or request.deadline.expired() or depth > 1:
            return
        starts = set()  # `typedef struct S {...} T;` defines S and T on one head: outlined once
        hits = [(file, d) for d in summary.order if (d.exported or not public) and not _seen(starts, d.start_line)]
        if public:
            hits += [hit for name in summary.exports if (hit := self.lookup(request, file, name)) is not None]
        common = _common_words([hit[1].name for hit in hits])
        each = weight * min(1.0, (OUTLINE_ENTRIES / len(hits)) ** 0.5) if hits else weight
        for hit in hits:
            words = _words(hit[1].name) - common
            share = len(words & near) / len(words) if words else 0.0
            add(hit, each * (0.25 + share), why)
        for star in summary.stars if public else ():
            self._outline(request, star, weight, near, why, add, public, depth + 1)


def _fit_above(lines: list[str], line: int, highest: int, chars: int) -> int:
    """The first line of the longest run of lines ending at `line` (1-based), starting at `highest` at most, that
    holds `chars` characters at most (`line` itself whatever its length)."""
    start, used = line, len(lines[line - 1]) if line <= len(lines) else 0
    while start > highest and start - 2 < len(lines) and used + len(lines[start - 2]) + 1 <= chars:
        start -= 1
        used += len(lines[start - 1]) + 1
    return start


def _seen(seen: set[int], line: int) -> bool:
    if line in seen:
        return True
    seen.add(line)
    return False


def _relative(repository: Repository, path: Path) -> str:
    try:
        return path.relative_to(repository.real_root).as_posix()  # resolved already: no need to resolve again
    except ValueError:
        return repository.relative(path)


def _common_words(names: list[str]) -> frozenset[str]:
    """The words in more than COMMON_SHARE of an outline's names (`brotli` of BROTLI_BOOL, BROTLI_INLINE, ...):
    they say nothing about which entry the cursor wants."""
    if len(names) < MIN_COMMON_NAMES:
        return frozenset()
    counts: dict[str, int] = {}
    for name in names:
        for word in _words(name):
            counts[word] = counts.get(word, 0) + 1
    return frozenset(w for w, n in counts.items() if n * COMMON_SHARE > len(names))


@functools.lru_cache(maxsize=16384)
def _words(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORDS.findall(text) if len(w) > 1)


__all__ = ["Imported", "Request", "Summary", "TreeSitterLanguage"]
